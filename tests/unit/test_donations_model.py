"""Donations, the pure part: whole steps only, and the programme document's donation section."""

from __future__ import annotations

from typing import Any

import pytest

from treu.donations.model import DonationRate, donation_amount, round_up_minor
from treu.errors import ErrorCode, InvalidInput
from treu.programmes.model import parse_document
from treu.rewards.model import RewardDef, RewardKind

NBJC = DonationRate("nbjc", points_per_step=500, amount_per_step_minor=1000)


def test_1000_points_at_500_a_step_give_20_dollars() -> None:
    assert donation_amount(NBJC, 1000) == 2000


@pytest.mark.parametrize("points", [300, 750, 0, -500])
def test_anything_but_whole_steps_is_refused(points: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        donation_amount(NBJC, points)
    assert refused.value.code is ErrorCode.INVALID_AMOUNT
    assert "steps of 500 points" in refused.value.message


@pytest.mark.parametrize(
    ("total", "currency", "up"), [(2340, "USD", 60), (2399, "USD", 1), (1, "EUR", 99)]
)
def test_a_round_up_makes_the_total_whole(total: int, currency: str, up: int) -> None:
    assert round_up_minor(total, currency) == up


@pytest.mark.parametrize(("total", "currency"), [(2300, "USD"), (0, "USD"), (1234, "JPY")])
def test_a_whole_total_has_nothing_to_round_up(total: int, currency: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        round_up_minor(total, currency)
    assert refused.value.code is ErrorCode.INVALID_AMOUNT


def _document(**extra: Any) -> dict[str, Any]:
    return {
        "key": "beauty",
        "name": "Beauty",
        "currency": "USD",
        "timezone": "America/New_York",
        "charities": [{"key": "nbjc", "name": "National Black Justice Coalition"}],
        **extra,
    }


def _donation(**fields: Any) -> dict[str, Any]:
    return {
        "key": "give",
        "name": "Give",
        "kind": "donation",
        "charity": "nbjc",
        "points_per_step": 500,
        "amount_per_step": "10.00",
        **fields,
    }


def test_a_donation_reward_names_its_charity_and_its_rate() -> None:
    doc = parse_document(_document(rewards=[_donation()]))
    (reward,) = doc.rewards
    assert reward.kind is RewardKind.DONATION
    assert (reward.charity, reward.points_per_step, str(reward.amount_per_step)) == (
        "nbjc",
        500,
        "10.00",
    )


@pytest.mark.parametrize(
    ("reward", "path", "message"),
    [
        (_donation(charity="unicef"), "rewards.0.charity", "unknown charity 'unicef'"),
        (_donation(cost=500), "rewards.0", "points_per_step, not a cost"),
        (_donation(points_per_step=None), "rewards.0", "needs charity, points_per_step"),
        (
            {
                "key": "ten",
                "name": "10 off",
                "kind": "fixed_discount",
                "value": "10",
                "cost": 5,
                "charity": "nbjc",
            },
            "rewards.0",
            "are for donations",
        ),
    ],
)
def test_a_donation_reward_that_cannot_work_is_refused(
    reward: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_document(_document(rewards=[reward]))
    (error, *_) = refused.value.details["errors"]
    assert error["path"] == path
    assert message in error["message"]


def test_one_rate_per_charity_and_charity_keys_unique() -> None:
    with pytest.raises(InvalidInput, match="'nbjc' already has a donation"):
        parse_document(_document(rewards=[_donation(), _donation(key="give-again")]))
    charity = {"key": "nbjc", "name": "Twice"}
    with pytest.raises(InvalidInput, match=r"charities\.1\.key"):
        parse_document(_document(charities=[charity, charity]))


def test_a_reward_definition_is_still_a_plain_reward_without_donation_fields() -> None:
    reward = RewardDef.model_validate({"key": "k", "name": "K", "kind": "custom", "cost": 5})
    assert reward.charity is None
