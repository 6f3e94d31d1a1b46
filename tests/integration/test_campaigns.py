"""Campaign mechanics on both databases: welcome gift, launch bonus, anniversaries, surprises."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from treu.activities.model import PurchaseIn
from treu.activities.service import ActivityResult, record_purchase
from treu.campaigns.service import award_anniversary
from treu.clock import FixedClock
from treu.jobs.nightly import run_nightly
from treu.ledger.service import get_balances, member_history
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import Tenant, apply_programme
from treu.rewards.service import list_vouchers
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")


def document(stock: int | None = None, **campaigns: Any) -> dict[str, Any]:
    return {
        "key": "laden",
        "name": "Laden",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "rewards": [
            {
                "key": "croissant",
                "name": "Croissant",
                "kind": "free_product",
                "sku": "C",
                "stock": stock,
            },
            {"key": "kuchen", "name": "Kuchen", "kind": "free_product", "sku": "K"},
        ],
        "campaigns": campaigns,
    }


class Laden:
    def __init__(
        self,
        new_uow: NewUow,
        clock: FixedClock,
        tenant: Tenant,
        stock: int | None = None,
        **campaigns: Any,
    ):
        self.new_uow, self.clock, self.tenant = new_uow, clock, tenant
        clock.set(datetime(2026, 3, 1, 9, tzinfo=BERLIN))
        with new_uow() as uow:
            self.programme_id = apply_programme(
                uow, tenant_id=tenant.id, document=document(stock, **campaigns)
            ).programme_id
        self.bons = 0

    def enrol(self, email: str, at: datetime) -> str:
        self.clock.set(at)
        with self.new_uow() as uow:
            return enrol_member(
                uow,
                programme_id=self.programme_id,
                identifiers_={IdentifierKind.EMAIL: email},
                source="web",
            ).id

    def buy(self, member: str, at: datetime) -> ActivityResult:
        self.bons += 1
        self.clock.set(at)
        purchase = PurchaseIn(
            external_id=f"bon-{self.bons}", currency="EUR", total="5.00", occurred_at=at
        )
        with self.new_uow() as uow:
            return record_purchase(
                uow, programme_id=self.programme_id, member=member, purchase=purchase
            )

    def vouchers(self, member: str) -> list[str]:
        with self.new_uow() as uow:
            return [
                v.reward_name
                for v in list_vouchers(uow, tenant_id=self.tenant.id, member_id=member)
            ]

    def points(self, member: str) -> int:
        with self.new_uow() as uow:
            return get_balances(uow, tenant_id=self.tenant.id, member_id=member).available

    def verified(self) -> bool:
        with self.new_uow() as uow:
            return verify_ledger(uow, tenant_id=self.tenant.id).ok


def test_a_new_member_gets_the_welcome_croissant_and_points_with_a_reason(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(
        new_uow, clock, tenant, welcome={"reward": "croissant", "points": 50, "name": "Willkommen"}
    )

    mia = laden.enrol("mia@example.de", datetime(2026, 3, 2, 8, tzinfo=BERLIN))

    assert laden.vouchers(mia) == ["Croissant"]
    assert laden.points(mia) == 50
    with new_uow() as uow:
        [entry] = member_history(uow, tenant_id=tenant.id, member_id=mia)
    assert (entry.points, entry.reason) == (50, "Willkommen: 50 points")
    assert laden.verified()


def test_the_launch_bonus_goes_only_to_members_who_join_in_its_window(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(
        new_uow,
        clock,
        tenant,
        launch_bonus={"from": "2026-03-01", "until": "2026-03-31", "points": 100},
    )

    early = laden.enrol("early@example.de", datetime(2026, 3, 31, 23, 30, tzinfo=BERLIN))
    late = laden.enrol("late@example.de", datetime(2026, 4, 1, 0, 30, tzinfo=BERLIN))

    assert (laden.points(early), laden.points(late)) == (100, 0)


def test_every_third_visit_brings_a_surprise(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(new_uow, clock, tenant, surprise={"every": 3, "per": "visit", "reward": "kuchen"})
    ben = laden.enrol("ben@example.de", datetime(2026, 3, 2, 8, tzinfo=BERLIN))

    results = [laden.buy(ben, datetime(2026, 3, 2, 9 + i, tzinfo=BERLIN)) for i in range(7)]

    surprised = [i + 1 for i, r in enumerate(results) if r.effects]
    assert surprised == [3, 6]
    assert results[2].effects[0].explanation.startswith("Surprise for the 3rd visit: voucher")
    assert laden.vouchers(ben) == ["Kuchen", "Kuchen"]


def test_visit_weeks_count_once_per_iso_week_in_programme_time(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(new_uow, clock, tenant, surprise={"every": 2, "reward": "kuchen"})
    ben = laden.enrol("ben@example.de", datetime(2026, 3, 2, 8, tzinfo=BERLIN))

    laden.buy(ben, datetime(2026, 3, 2, 9, tzinfo=BERLIN))  # week 10
    laden.buy(ben, datetime(2026, 3, 8, 23, 30, tzinfo=BERLIN))  # Sunday night: still week 10
    second_week = laden.buy(ben, datetime(2026, 3, 9, 0, 30, tzinfo=BERLIN))  # week 11

    assert [e.kind for e in second_week.effects] == ["voucher.issued"]
    assert laden.vouchers(ben) == ["Kuchen"]


def test_a_random_surprise_is_reproducible_and_stays_within_its_budget(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(
        new_uow,
        clock,
        tenant,
        random_surprise={"probability": "1", "budget": 2, "reward": "kuchen"},
    )
    ben = laden.enrol("ben@example.de", datetime(2026, 3, 2, 8, tzinfo=BERLIN))

    for i in range(4):
        laden.buy(ben, datetime(2026, 3, 2, 9 + i, tzinfo=BERLIN))

    assert laden.vouchers(ben) == ["Kuchen", "Kuchen"]


def test_the_enrolment_anniversary_gives_points_once_a_year(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(new_uow, clock, tenant, anniversary={"points": 25})
    mia = laden.enrol("mia@example.de", datetime(2026, 3, 2, 8, tzinfo=BERLIN))
    laden.enrol("max@example.de", datetime(2026, 3, 3, 8, tzinfo=BERLIN))

    clock.set(datetime(2027, 3, 2, 3, tzinfo=BERLIN))
    first = run_nightly(new_uow, day=date(2027, 3, 2), programme_id=laden.programme_id)
    with new_uow() as uow:  # a crash after the step, before job_runs: the step runs again
        assert (
            award_anniversary(
                uow, programme_id=laden.programme_id, member_id=mia, day=date(2027, 3, 2)
            )
            == []
        )
    clock.set(datetime(2028, 3, 2, 3, tzinfo=BERLIN))
    run_nightly(new_uow, day=date(2028, 3, 2), programme_id=laden.programme_id)

    assert next(r for r in first if r.step == "enrolment_anniversaries").processed == 1
    assert laden.points(mia) == 50
    with new_uow() as uow:
        reasons = [h.reason for h in member_history(uow, tenant_id=tenant.id, member_id=mia)]
    assert reasons == ["1 year with us: 25 points", "2 years with us: 25 points"]
    assert laden.verified()


def test_an_out_of_stock_welcome_gift_does_not_stop_anyone_joining(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(new_uow, clock, tenant, stock=0, welcome={"reward": "croissant", "points": 10})

    mia = laden.enrol("mia@example.de", datetime(2026, 3, 2, 8, tzinfo=BERLIN))

    assert laden.vouchers(mia) == []
    assert laden.points(mia) == 10
