"""Membership plans and the status machine: a pure function of reported payments and time."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from treu.errors import InvalidInput
from treu.memberships.model import (
    Facts,
    PlanDef,
    Status,
    implied_rules,
    paid_until,
    period_for,
    status_at,
)
from treu.programmes.model import parse_document

LA = ZoneInfo("America/Los_Angeles")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=LA)


def plan(**changes: Any) -> PlanDef:
    data: dict[str, Any] = {"key": "plus", "name": "Plus", "billing": "monthly", "fee": "9.99"}
    return PlanDef.model_validate({**data, **changes})


def paid(p: PlanDef, *times: datetime) -> Facts:
    periods = []
    for t in times:
        periods.append(period_for(p, t, paid_until(tuple(periods)), LA))
    return Facts(tuple(periods))


def test_a_monthly_payment_covers_until_midnight_of_the_same_day_next_month() -> None:
    monthly = plan()
    facts = paid(monthly, at(2026, 1, 31, 15))
    assert facts.periods[0].end == at(2026, 2, 28)  # clamped to the month's last day
    assert status_at(monthly, facts, at(2026, 2, 27, 23, 59)) is Status.ACTIVE
    assert status_at(monthly, facts, at(2026, 2, 28)) is Status.EXPIRED


def test_an_early_renewal_extends_the_period_instead_of_overlapping_it() -> None:
    monthly = plan()
    facts = paid(monthly, at(2026, 1, 10, 9), at(2026, 2, 5, 9))
    assert [p.end for p in facts.periods] == [at(2026, 2, 10), at(2026, 3, 10)]


def test_grace_days_keep_the_perks_as_past_due_then_expire() -> None:
    monthly = plan(grace_days=3)
    facts = paid(monthly, at(2026, 1, 10, 9))
    assert status_at(monthly, facts, at(2026, 2, 11)) is Status.PAST_DUE
    assert status_at(monthly, facts, at(2026, 2, 13)) is Status.EXPIRED


def test_a_failed_renewal_makes_the_membership_past_due_until_paid() -> None:
    monthly = plan(grace_days=5)
    facts = paid(monthly, at(2026, 1, 10, 9))
    failed = Facts(facts.periods, failed_at=at(2026, 2, 9, 8))
    assert status_at(monthly, failed, at(2026, 2, 9, 9)) is Status.PAST_DUE
    renewed = paid(monthly, at(2026, 1, 10, 9), at(2026, 2, 9, 10))
    repaired = Facts(renewed.periods, failed_at=at(2026, 2, 9, 8))
    assert status_at(monthly, repaired, at(2026, 2, 9, 11)) is Status.ACTIVE


def test_a_cancelled_membership_runs_to_the_end_of_its_paid_period() -> None:
    yearly = plan(billing="yearly", fee="99.00")
    facts = paid(yearly, at(2026, 3, 1, 12))
    cancelled = Facts(facts.periods, cancelled_at=at(2026, 6, 1))
    assert status_at(yearly, cancelled, at(2026, 5, 31)) is Status.ACTIVE
    assert status_at(yearly, cancelled, at(2026, 6, 2)) is Status.CANCELLED
    assert status_at(yearly, cancelled, at(2027, 3, 1)) is Status.EXPIRED
    assert Status.CANCELLED.has_perks
    assert not Status.EXPIRED.has_perks


def test_a_lifetime_membership_never_runs_out_but_ends_when_cancelled() -> None:
    lifetime = plan(billing="lifetime", fee="20.00")
    facts = paid(lifetime, at(2026, 1, 5, 10))
    assert facts.periods[0].end is None
    assert status_at(lifetime, facts, at(2026, 1, 5, 9)) is None  # before the payment
    assert status_at(lifetime, facts, at(2076, 1, 1)) is Status.ACTIVE
    ended = Facts(facts.periods, cancelled_at=at(2030, 1, 1))
    assert status_at(lifetime, ended, at(2030, 1, 2)) is Status.EXPIRED


def test_perks_read_as_the_till_shows_them() -> None:
    rich = plan(
        perks={
            "earn_multiplier": "2",
            "discounts": [{"percent": "10", "categories": ["Classes"]}],
            "free_shipping": True,
            "dividend": {"percent": "10", "exclude_categories": ["Gift cards"]},
        }
    )
    assert rich.perks.labels() == [
        "10 % on Classes",
        "free shipping",
        "x2 points",
        "10 % dividend",
    ]
    assert rich.perks.dividend is not None
    assert rich.perks.dividend.paid_on.in_year(2027).isoformat() == "2027-03-15"


def test_an_earn_multiplier_becomes_a_rule_only_members_match() -> None:
    (rule,) = implied_rules([plan(perks={"earn_multiplier": "1.5"}), plan(key="basic")])
    assert (rule.key, rule.when.memberships) == ("membership-plus", ["plus"])
    assert rule.effect.type == "multiplier"
    assert rule.effect.factor == Decimal("1.5")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"billing": "weekly"}, "billing"),
        ({"fee": "-1"}, "fee"),
        ({"billing": "lifetime", "grace_days": 3}, "never runs out"),
        ({"perks": {"discounts": [{"percent": "10", "categories": []}]}}, "categories"),
    ],
)
def test_a_plan_that_makes_no_sense_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        plan(**changes)


def test_status_is_none_without_any_payment() -> None:
    assert status_at(plan(), Facts(()), at(2026, 1, 1) + timedelta(days=1)) is None


def test_a_rule_for_members_of_a_plan_the_programme_does_not_offer_is_refused() -> None:
    document: dict[str, Any] = {
        "key": "club",
        "name": "Club",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "memberships": [{"key": "plus", "name": "Plus", "billing": "monthly", "fee": "4.99"}],
        "rules": [
            {
                "key": "gold-only",
                "name": "Gold members",
                "when": {"memberships": ["gold"]},
                "effect": {"type": "bonus", "points": 5},
            }
        ],
    }
    with pytest.raises(InvalidInput) as refused:
        parse_document(document)
    assert refused.value.details["errors"][0] == {
        "path": "rules.0.when.memberships",
        "message": "unknown membership plan 'gold'",
    }
