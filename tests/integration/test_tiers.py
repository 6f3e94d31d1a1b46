"""Tier policies as worked examples on both databases: grace days, one step down at most,
upgrades that wait for the next period, rolling 12 months, visits, membership years, warnings,
overrides and the nightly run's idempotency.

The programme: Bronze from 0, Silber from 200.00 EUR, Gold from 400.00 EUR (Berlin time).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from treu.activities.model import LineIn, PurchaseIn, ReturnIn, ReturnLineIn
from treu.activities.service import record_purchase, record_return
from treu.clock import FixedClock
from treu.errors import ErrorCode, TreuError
from treu.jobs.nightly import run_nightly
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.outbox.service import list_events
from treu.programmes.service import Tenant, apply_programme, load_programme
from treu.storage.uow import UnitOfWork
from treu.tiers import service as tiers
from treu.tiers.model import Window

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")


def document(**tier_settings: Any) -> dict[str, Any]:
    return {
        "key": "club",
        "name": "Club",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "rules": [
            {
                "key": "base",
                "name": "1 Punkt je Euro",
                "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
            }
        ],
        "tiers": {
            "levels": [
                {"key": "bronze", "name": "Bronze", "threshold": 0},
                {"key": "silber", "name": "Silber", "threshold": "200.00"},
                {
                    "key": "gold",
                    "name": "Gold",
                    "threshold": "400.00",
                    "earn_multiplier": "2",
                    "perks": ["free_shipping"],
                },
            ],
            **tier_settings,
        },
    }


class Club:
    def __init__(self, new_uow: NewUow, clock: FixedClock, tenant: Tenant, **settings: Any):
        self.new_uow, self.clock, self.tenant = new_uow, clock, tenant
        with new_uow() as uow:
            self.programme_id = apply_programme(
                uow, tenant_id=tenant.id, document=document(**settings)
            ).programme_id

    def on(self, year: int, month: int, day: int, hour: int) -> None:
        self.clock.set(datetime(year, month, day, hour, tzinfo=BERLIN))

    def enrol(self, email: str) -> str:
        with self.new_uow() as uow:
            return enrol_member(
                uow, programme_id=self.programme_id, identifiers_={IdentifierKind.EMAIL: email}
            ).id

    def buy(self, member: str, external_id: str, price: str) -> Any:
        with self.new_uow() as uow:
            return record_purchase(
                uow,
                programme_id=self.programme_id,
                member=member,
                purchase=PurchaseIn(
                    external_id=external_id,
                    currency="EUR",
                    lines=[LineIn(sku="X", unit_price=price)],
                ),
            )

    def give_back(self, purchase: str) -> Any:
        with self.new_uow() as uow:
            return record_return(
                uow,
                programme_id=self.programme_id,
                ret=ReturnIn(
                    external_id=f"return-{purchase}",
                    purchase_external_id=purchase,
                    lines=[ReturnLineIn(line=0, quantity=1)],
                ),
            )

    def nightly(self, day: date) -> int:
        """The nightly run for ``day``, at 01:00 that day; the tier changes it made."""
        self.on(day.year, day.month, day.day, 1)
        results = run_nightly(self.new_uow, day=day, programme_id=self.programme_id)
        return sum(r.processed for r in results if r.step == "reevaluate_tiers")

    def tier(self, member: str) -> str:
        with self.new_uow() as uow:
            found = tiers.current_tier(uow, self.programme(uow), member)
        assert found is not None
        return found.key

    def history(self, member: str) -> list[tuple[str | None, str, str]]:
        with self.new_uow() as uow:
            return [(c.from_tier, c.to_tier, c.reason) for c in tiers.tier_history_of(uow, member)]

    def programme(self, uow: UnitOfWork) -> Any:
        return load_programme(uow, self.programme_id)


def test_a_grace_period_delays_the_downgrade_after_the_year_end(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant, downgrade={"grace_days": 30})
    club.on(2026, 3, 1, 12)
    mia = club.enrol("mia@example.org")
    club.buy(mia, "o1", "450.00")
    assert club.tier(mia) == "gold"

    assert club.nightly(date(2027, 1, 1)) == 0  # 2026 earned Gold for 2027
    assert club.nightly(date(2028, 1, 1)) == 0  # 2027 earned nothing: 30 days' grace
    assert club.nightly(date(2028, 1, 30)) == 0
    assert club.tier(mia) == "gold"
    assert club.nightly(date(2028, 1, 31)) == 1
    assert club.tier(mia) == "bronze"
    assert club.history(mia) == [("bronze", "gold", "upgrade"), ("gold", "bronze", "downgrade")]


def test_never_more_than_one_step_down_per_period_end(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant, downgrade={"max_steps_down": 1})
    club.on(2026, 3, 1, 12)
    mia = club.enrol("mia@example.org")
    club.buy(mia, "o1", "450.00")

    club.nightly(date(2027, 1, 1))
    assert club.tier(mia) == "gold"  # what 2026 earned
    club.nightly(date(2028, 1, 1))
    assert club.tier(mia) == "silber"  # 2027 earned nothing: one step down
    club.nightly(date(2029, 1, 1))
    assert club.tier(mia) == "bronze"


def test_an_upgrade_waits_for_the_next_period_when_so_configured(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant, upgrade="next_period")
    club.on(2026, 3, 1, 12)
    mia = club.enrol("mia@example.org")
    assert club.buy(mia, "o1", "450.00").effects == []
    assert club.tier(mia) == "bronze"

    assert club.nightly(date(2027, 1, 1)) == 1
    assert club.tier(mia) == "gold"
    # Gold's multiplier from then on
    club.on(2027, 1, 5, 12)
    assert club.buy(mia, "o2", "10.00").points == 20


def test_a_rolling_year_drops_a_purchase_twelve_months_later(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant, period="rolling_12_months")
    club.on(2026, 3, 10, 12)
    mia = club.enrol("mia@example.org")
    [upgrade] = club.buy(mia, "o1", "300.00").effects
    assert upgrade.explanation == (
        "Silber reached: 300.00 EUR spent in the last 12 months (threshold 200.00)"
    )

    assert club.nightly(date(2027, 3, 10)) == 0
    assert club.tier(mia) == "silber"
    assert club.nightly(date(2027, 3, 11)) == 1
    assert club.tier(mia) == "bronze"


def test_visits_count_purchases_not_returned_in_full(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(
        new_uow,
        clock,
        tenant,
        metric="visits",
        levels=[
            {"key": "bronze", "name": "Bronze", "threshold": 0},
            {"key": "stammgast", "name": "Stammgast", "threshold": 3},
        ],
    )
    club.on(2026, 3, 1, 12)
    mia = club.enrol("mia@example.org")
    club.buy(mia, "o1", "5.00")
    club.buy(mia, "o2", "5.00")
    [upgrade] = club.buy(mia, "o3", "5.00").effects
    assert upgrade.explanation == "Stammgast reached: 3 visits in 2026 (threshold 3)"

    club.give_back("o3")  # two visits left: she stays a Stammgast until the year ends
    assert club.tier(mia) == "stammgast"
    club.nightly(date(2027, 1, 1))
    assert club.tier(mia) == "bronze"


def test_a_membership_year_runs_from_the_enrolment_anniversary(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant, period="anniversary")
    club.on(2026, 3, 15, 12)
    mia = club.enrol("mia@example.org")
    club.buy(mia, "o1", "250.00")
    assert club.tier(mia) == "silber"

    assert club.nightly(date(2027, 1, 1)) == 0
    assert club.nightly(date(2027, 3, 15)) == 0  # 250.00 in her first membership year
    assert club.tier(mia) == "silber"
    assert club.nightly(date(2028, 3, 15)) == 1  # nothing in her second
    assert club.tier(mia) == "bronze"


def test_the_nightly_evaluation_of_a_date_changes_nothing_the_second_time(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant)
    club.on(2026, 3, 1, 12)
    mia = club.enrol("mia@example.org")
    club.buy(mia, "o1", "450.00")
    club.on(2028, 1, 1, 1)
    day = date(2028, 1, 1)  # 2027 earned nothing

    def evaluate() -> int:
        with new_uow() as uow:
            programme = club.programme(uow)
            members = tiers.nightly_candidates(uow, programme, day)
            changes = tiers.reevaluate_tiers(uow, programme, day, members)
            uow.commit()
            return len(changes)

    assert evaluate() == 1
    assert evaluate() == 0  # not through job_runs: the member's own marker
    assert club.history(mia) == [("bronze", "gold", "upgrade"), ("gold", "bronze", "downgrade")]


def test_the_order_activities_arrive_in_does_not_change_the_year_end_tier(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant)
    club.on(2026, 2, 1, 12)
    mia, max_ = club.enrol("mia@example.org"), club.enrol("max@example.org")
    # the same year, told in another order: a big purchase returned, two smaller ones kept
    club.on(2026, 3, 1, 12)
    club.buy(mia, "m-big", "300.00")
    club.buy(max_, "x-small-1", "120.00")
    club.on(2026, 4, 1, 12)
    club.give_back("m-big")
    club.buy(max_, "x-big", "300.00")
    club.on(2026, 5, 1, 12)
    club.buy(mia, "m-small-1", "120.00")
    club.buy(mia, "m-small-2", "110.00")
    club.give_back("x-big")
    club.buy(max_, "x-small-2", "110.00")
    assert (club.tier(mia), club.tier(max_)) == ("silber", "gold")  # different paths

    club.nightly(date(2027, 1, 1))
    assert (club.tier(mia), club.tier(max_)) == ("silber", "silber")  # 230.00 each
    with new_uow() as uow:
        year = Window(date(2026, 1, 1), date(2027, 1, 1))
        results = tiers.period_results(uow, club.programme(uow), [mia, max_], year)
    # (the points differ: Max earned his last order with Gold's multiplier)
    assert {(r.spend_minor, r.visits) for r in results.values()} == {(23000, 2)}


def test_a_warning_goes_out_once_before_a_period_end_that_will_downgrade(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant, will_downgrade_warning_days=14)
    club.on(2026, 3, 1, 12)
    mia = club.enrol("mia@example.org")
    club.buy(mia, "o1", "450.00")
    club.on(2026, 3, 2, 12)
    club.give_back("o1")

    club.nightly(date(2026, 12, 17))  # 15 days before: too early
    club.nightly(date(2026, 12, 18))
    club.nightly(date(2026, 12, 19))
    with new_uow() as uow:
        warnings = list_events(uow, tenant_id=tenant.id, type="tier.will_downgrade")
    assert [(w["payload"]["member_id"], w["payload"]["to"]) for w in warnings] == [(mia, "bronze")]
    assert warnings[0]["payload"]["period_ends_on"] == "2027-01-01"


def test_a_manual_override_needs_a_reason_and_is_recorded(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant)
    club.on(2026, 3, 1, 12)
    mia = club.enrol("mia@example.org")

    def override(tier: str, reason: str) -> Any:
        with new_uow() as uow:
            return tiers.override_tier(
                uow,
                programme=club.programme(uow),
                member_id=mia,
                tier=tier,
                reason=reason,
                actor="staff:stf_anna",
            )

    for tier, reason, code in [
        ("gold", "   ", ErrorCode.REASON_REQUIRED),
        ("platin", "VIP", ErrorCode.UNKNOWN_TIER),
    ]:
        with pytest.raises(TreuError) as refused:
            override(tier, reason)
        assert refused.value.code is code
    assert club.history(mia) == []

    status = override("gold", "Influencer, on the house")
    assert (status.tier.key, status.overridden, status.override_reason) == (
        "gold",
        True,
        "Influencer, on the house",
    )
    with new_uow() as uow:
        [change] = tiers.tier_history_of(uow, mia)
    assert (change.from_tier, change.to_tier, change.reason, change.actor) == (
        "bronze",
        "gold",
        "override",
        "staff:stf_anna",
    )
    # the override holds through the year; the year end evaluates her like everyone else
    club.nightly(date(2027, 1, 1))
    assert club.tier(mia) == "bronze"
