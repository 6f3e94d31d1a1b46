"""Tiers, the pure part: the document section's checks and the decisions, as worked examples."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from treu.errors import ErrorCode, Rejected
from treu.rewards.model import RewardState, check_redeemable
from treu.tiers.model import (
    PeriodKind,
    PeriodResult,
    TierSettings,
    Window,
    evaluate_tier,
    finished_before,
    implied_rules,
    is_boundary,
    period_containing,
    tier_for,
    upgrade_due,
)

LEVELS = [
    {"key": "insider", "name": "Insider", "threshold": "0"},
    {"key": "enthusiast", "name": "Enthusiast", "threshold": "250.00", "earn_multiplier": "1.25"},
    {"key": "superfan", "name": "Superfan", "threshold": "450.00", "earn_multiplier": "1.5"},
]
YEAR_2026 = Window(date(2026, 1, 1), date(2027, 1, 1))


def settings(**over: Any) -> TierSettings:
    return TierSettings.model_validate({"levels": LEVELS, **over})


def spend(amount: int) -> PeriodResult:
    return PeriodResult(spend_minor=amount * 100)


def test_the_highest_tier_whose_threshold_the_result_reaches() -> None:
    hooked = settings()
    assert tier_for(hooked, spend(249), 2).key == "insider"
    assert tier_for(hooked, spend(250), 2).key == "enthusiast"
    assert tier_for(hooked, spend(480), 2).key == "superfan"


def test_an_upgrade_explains_itself_in_the_programme_currency() -> None:
    decision = upgrade_due(
        settings(), "insider", spend(260), exponent=2, currency="USD", window=YEAR_2026
    )
    assert decision is not None
    assert decision.target.key == "enthusiast"
    assert decision.explanation == "Enthusiast reached: 260.00 USD spent in 2026 (threshold 250.00)"


def test_no_upgrade_mid_period_when_upgrades_wait_for_the_next_period() -> None:
    later = settings(upgrade="next_period")
    assert (
        upgrade_due(later, "insider", spend(500), exponent=2, currency="USD", window=YEAR_2026)
        is None
    )


def test_a_lower_result_mid_period_is_never_a_downgrade() -> None:
    assert (
        upgrade_due(settings(), "superfan", spend(10), exponent=2, currency="USD", window=YEAR_2026)
        is None
    )


def test_at_the_period_end_the_finished_period_decides_up_or_down() -> None:
    hooked = settings()
    down = evaluate_tier(
        hooked, "enthusiast", spend(220), exponent=2, currency="USD", window=YEAR_2026
    )
    assert (down.target.key, down.reason) == ("insider", "downgrade")
    assert (
        down.explanation
        == "Insider from now on: 220.00 USD spent in 2026 (Enthusiast needs 250.00)"
    )
    stays = evaluate_tier(
        hooked, "superfan", spend(480), exponent=2, currency="USD", window=YEAR_2026
    )
    assert (stays.target.key, stays.reason) == ("superfan", None)


def test_never_more_than_one_step_down_when_so_configured() -> None:
    gentle = settings(downgrade={"max_steps_down": 1})
    down = evaluate_tier(gentle, "superfan", spend(0), exponent=2, currency="USD", window=YEAR_2026)
    assert (down.target.key, down.reason) == ("enthusiast", "downgrade")


def test_a_member_who_already_qualifies_in_the_new_period_is_not_taken_down() -> None:
    down = evaluate_tier(
        settings(),
        "enthusiast",
        spend(100),
        running=spend(300),
        exponent=2,
        currency="USD",
        window=YEAR_2026,
    )
    assert (down.target.key, down.reason) == ("enthusiast", None)


def test_visits_and_points_count_whole_numbers() -> None:
    visits = TierSettings.model_validate(
        {
            "metric": "visits",
            "levels": [
                {"key": "regular", "name": "Regular", "threshold": 0},
                {"key": "friend", "name": "Friend", "threshold": 10},
            ],
        }
    )
    assert tier_for(visits, PeriodResult(visits=10), 2).key == "friend"
    with pytest.raises(ValidationError, match="whole numbers"):
        TierSettings.model_validate(
            {
                "metric": "points_earned",
                "levels": [
                    {"key": "a", "name": "A", "threshold": 0},
                    {"key": "b", "name": "B", "threshold": "10.5"},
                ],
            }
        )


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ([{"key": "a", "name": "A", "threshold": 5}], "starts at 0"),
        (
            [
                {"key": "a", "name": "A", "threshold": 0},
                {"key": "b", "name": "B", "threshold": 0},
            ],
            "increase strictly",
        ),
        (
            [
                {"key": "a", "name": "A", "threshold": 0},
                {"key": "a", "name": "B", "threshold": 1},
            ],
            "used twice",
        ),
        (
            [{"key": "a", "name": "A", "threshold": 0, "earn_multiplier": "0.5"}],
            "greater than or equal to 1",
        ),
    ],
)
def test_invalid_tier_lists_are_refused_with_a_clear_message(
    levels: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        TierSettings.model_validate({"levels": levels})


def test_a_multiplier_above_one_is_a_rule_for_that_tier() -> None:
    rules = implied_rules(settings())
    assert [(r.key, r.when.tiers) for r in rules] == [
        ("tier-enthusiast", ["enthusiast"]),
        ("tier-superfan", ["superfan"]),
    ]
    assert implied_rules(None) == []


def test_periods_in_programme_time() -> None:
    enrolled = date(2024, 2, 29)
    day = date(2026, 6, 10)
    assert period_containing(PeriodKind.CALENDAR_YEAR, day, enrolled) == YEAR_2026
    assert period_containing(PeriodKind.ROLLING_12_MONTHS, day, enrolled) == Window(
        date(2025, 6, 11), date(2026, 6, 11)
    )
    # enrolled on 29 February: the membership year starts on 28 February in other years
    assert period_containing(PeriodKind.ANNIVERSARY, day, enrolled) == Window(
        date(2026, 2, 28), date(2027, 2, 28)
    )
    assert period_containing(PeriodKind.LIFETIME, day, enrolled) == Window(None, None)
    assert is_boundary(PeriodKind.CALENDAR_YEAR, date(2027, 1, 1), enrolled)
    assert not is_boundary(PeriodKind.CALENDAR_YEAR, date(2027, 1, 2), enrolled)
    assert not is_boundary(PeriodKind.LIFETIME, date(2027, 1, 1), enrolled)
    assert finished_before(PeriodKind.CALENDAR_YEAR, date(2027, 1, 1), enrolled) == YEAR_2026


SEASONAL = RewardState(
    id="rwd_01",
    key="seasonal-offer",
    name="Seasonal offer",
    cost=100,
    active=True,
    stock=None,
    per_member_limit=None,
    available_from=None,
    available_until=None,
    tiers=(),
    segments=(),
    min_tier="enthusiast",
)


@pytest.mark.parametrize(
    ("tier", "eligible"),
    [("insider", False), ("enthusiast", True), ("superfan", True), (None, False)],
)
def test_a_reward_for_a_tier_and_above(tier: str | None, eligible: bool) -> None:
    def redeem() -> None:
        check_redeemable(
            SEASONAL,
            now=datetime(2026, 6, 1, tzinfo=UTC),
            redeemed_by_member=0,
            member_tier=tier,
            member_segments=frozenset(),
            tier_order=settings().keys(),
        )

    if eligible:
        redeem()
    else:
        with pytest.raises(Rejected) as refused:
            redeem()
        assert refused.value.code is ErrorCode.REWARD_NOT_ELIGIBLE
