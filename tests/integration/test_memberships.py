"""Paid memberships on both databases: payments, renewals, failures, cancellation, perks in the
rules, the nightly transitions, the dividend and the revenue report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from treu.activities.model import LineIn, PurchaseIn, ReturnIn
from treu.activities.service import record_purchase, record_return
from treu.clock import FixedClock
from treu.errors import ErrorCode, TreuError
from treu.jobs.nightly import run_nightly
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.memberships.model import Status
from treu.memberships.service import (
    MembershipView,
    cancel_membership,
    list_memberships,
    membership_report,
    report_payment,
)
from treu.outbox.service import list_events
from treu.programmes.service import Tenant, apply_programme
from treu.rewards.service import redeem_reward
from treu.storage.uow import UnitOfWork
from treu.wallet.service import get_wallet

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


DOCUMENT: dict[str, Any] = {
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
    "memberships": [
        {
            "key": "plus",
            "name": "Plus",
            "billing": "monthly",
            "fee": "4.99",
            "grace_days": 3,
            "perks": {"earn_multiplier": "2", "free_shipping": True},
        },
        {
            "key": "coop",
            "name": "Genossenschaft",
            "billing": "yearly",
            "fee": "30.00",
            "perks": {
                "dividend": {
                    "percent": "5",
                    "exclude_categories": ["Pfand"],
                    "paid_on": {"month": 2, "day": 1},
                }
            },
        },
    ],
    "rewards": [
        {
            "key": "lounge",
            "name": "Lounge-Abend",
            "kind": "experience",
            "cost": 10,
            "memberships": ["plus"],
        }
    ],
}


class Club:
    def __init__(self, new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> None:
        self.new_uow, self.clock, self.tenant = new_uow, clock, tenant
        with new_uow() as uow:
            self.programme_id = apply_programme(
                uow, tenant_id=tenant.id, document=DOCUMENT
            ).programme_id

    def enrol(self, email: str) -> str:
        with self.new_uow() as uow:
            return enrol_member(
                uow, programme_id=self.programme_id, identifiers_={IdentifierKind.EMAIL: email}
            ).id

    def pay(self, member: str, plan: str, amount: str, external_id: str, **kw: Any) -> Any:
        with self.new_uow() as uow:
            return report_payment(
                uow,
                tenant_id=self.tenant.id,
                member_id=member,
                plan_key=plan,
                amount=Decimal(amount),
                currency=kw.pop("currency", "EUR"),
                external_id=external_id,
                **kw,
            )

    def buy(self, member: str, external_id: str, when: datetime, *lines: tuple[str, str]) -> int:
        self.clock.set(when)
        items = [LineIn(sku=f"S{i}", category=c, unit_price=p) for i, (c, p) in enumerate(lines)]
        with self.new_uow() as uow:
            return record_purchase(
                uow,
                programme_id=self.programme_id,
                member=member,
                purchase=PurchaseIn(external_id=external_id, currency="EUR", lines=items),
            ).points

    def memberships(self, member: str) -> list[MembershipView]:
        with self.new_uow() as uow:
            return list_memberships(uow, tenant_id=self.tenant.id, member_id=member)

    def events(self, kind: str) -> list[dict[str, Any]]:
        with self.new_uow() as uow:
            found = list_events(uow, tenant_id=self.tenant.id, type=kind)
        return [dict(e["payload"]) for e in found]

    def nightly(self, day: date) -> None:
        self.clock.set(datetime(day.year, day.month, day.day, 2, tzinfo=BERLIN))
        run_nightly(self.new_uow, day=day, programme_id=self.programme_id)

    def wallet(self, member: str) -> Decimal:
        with self.new_uow() as uow:
            return get_wallet(uow, tenant_id=self.tenant.id, member_id=member).available


def code_of(call: Callable[[], object]) -> ErrorCode:
    with pytest.raises(TreuError) as caught:
        call()
    return caught.value.code


def test_a_member_of_plus_earns_double_and_loses_it_when_the_month_runs_out(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant)
    ana = club.enrol("ana@example.org")
    clock.set(at(2026, 3, 10, 9))
    # given Ana pays for Plus on 10 March
    view = club.pay(ana, "plus", "4.99", "stripe-1")
    assert (view.status, view.paid_until) == (Status.ACTIVE, at(2026, 4, 10))
    # then her purchases earn double while it runs
    assert club.buy(ana, "o-1", at(2026, 3, 20, 12), ("Food", "10.00")) == 20
    # and after the period and 3 grace days, single points again
    assert club.buy(ana, "o-2", at(2026, 4, 12, 12), ("Food", "10.00")) == 20  # grace: past_due
    assert club.buy(ana, "o-3", at(2026, 4, 13, 12), ("Food", "10.00")) == 10
    assert [(m.plan.key, m.status) for m in club.memberships(ana)] == [("plus", Status.EXPIRED)]
    # and the nightly run announces each transition once
    club.nightly(date(2026, 4, 11))
    club.nightly(date(2026, 4, 14))
    club.nightly(date(2026, 4, 15))
    assert [e["status"] for e in club.events("membership.past_due")] == ["past_due"]
    assert [e["plan"] for e in club.events("membership.expired")] == ["plus"]
    assert [e["plan"] for e in club.events("membership.activated")] == ["plus"]


def test_a_reward_for_plus_members_is_refused_to_others_and_after_plus_ran_out(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant)
    ana, ben = club.enrol("ana@example.org"), club.enrol("ben@example.org")
    clock.set(at(2026, 3, 10, 9))
    club.pay(ana, "plus", "4.99", "stripe-1")
    club.buy(ana, "o-1", at(2026, 3, 11, 12), ("Food", "20.00"))  # 40 points with Plus
    club.buy(ben, "o-2", at(2026, 3, 11, 12), ("Food", "40.00"))  # 40 points without

    def redeem(member: str, key: str) -> object:
        with new_uow() as uow:
            return redeem_reward(
                uow,
                tenant_id=tenant.id,
                member_id=member,
                reward_key="lounge",
                idempotency_key=key,
            )

    # Ben is no member of Plus: refused, his points stay
    assert code_of(lambda: redeem(ben, "r-1")) is ErrorCode.REWARD_NOT_ELIGIBLE
    # Ana is: the voucher is hers
    redeem(ana, "r-2")
    # and once her month and its grace days are over, she is refused too
    clock.set(at(2026, 4, 14, 12))
    assert code_of(lambda: redeem(ana, "r-3")) is ErrorCode.REWARD_NOT_ELIGIBLE
    with new_uow() as uow:
        assert verify_ledger(uow, tenant_id=tenant.id).ok


def test_a_reward_for_an_unknown_plan_is_refused_when_the_programme_is_applied(
    new_uow: NewUow, tenant: Tenant
) -> None:
    document = {**DOCUMENT, "rewards": [{**DOCUMENT["rewards"][0], "memberships": ["gold"]}]}
    with new_uow() as uow, pytest.raises(TreuError) as refused:
        apply_programme(uow, tenant_id=tenant.id, document=document)
    assert "rewards.0.memberships: unknown membership plan 'gold'" in str(refused.value)


def test_payments_are_checked_once_and_renew_from_the_end_of_the_period(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant)
    ben = club.enrol("ben@example.org")
    clock.set(at(2026, 5, 1, 9))
    assert code_of(lambda: club.pay(ben, "plus", "4.99", "x", currency="USD")) == (
        ErrorCode.CURRENCY_MISMATCH
    )
    assert code_of(lambda: club.pay(ben, "plus", "5.00", "x")) == ErrorCode.INVALID_AMOUNT
    assert code_of(lambda: club.pay(ben, "gold", "4.99", "x")) == ErrorCode.PLAN_NOT_FOUND
    club.pay(ben, "plus", "4.99", "p-1")
    # a retried report changes nothing
    assert club.pay(ben, "plus", "4.99", "p-1").replayed
    # an early renewal extends the period by a month from its end
    clock.set(at(2026, 5, 28, 9))
    renewed = club.pay(ben, "plus", "4.99", "p-2")
    assert (renewed.status, renewed.paid_until) == (Status.ACTIVE, at(2026, 7, 1))
    assert len(club.events("membership.renewed")) == 1
    # a failed renewal makes it past_due, a payment heals it
    clock.set(at(2026, 6, 28, 9))
    failed = club.pay(ben, "plus", "4.99", "p-3", outcome="failed")
    assert failed.status is Status.PAST_DUE
    assert club.pay(ben, "plus", "4.99", "p-4").status is Status.ACTIVE
    with new_uow() as uow:
        report = membership_report(
            uow, programme_id=club.programme_id, start=date(2026, 5, 1), end=date(2026, 7, 1)
        )
    plus = next(p for p in report.plans if p.plan_key == "plus")
    assert (plus.payments, plus.fees) == (3, Decimal("14.97"))  # the failure took no money


def test_a_cancelled_membership_keeps_its_perks_to_the_end_of_the_paid_year(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant)
    cem = club.enrol("cem@example.org")
    clock.set(at(2026, 1, 15, 9))
    club.pay(cem, "coop", "30.00", "c-1")
    clock.set(at(2026, 6, 1, 9))
    with new_uow() as uow:
        view = cancel_membership(uow, tenant_id=tenant.id, member_id=cem, plan_key="coop")
    assert (view.status, view.paid_until) == (Status.CANCELLED, at(2027, 1, 15))
    with new_uow() as uow:
        again = cancel_membership(uow, tenant_id=tenant.id, member_id=cem, plan_key="coop")
    assert again.replayed
    with new_uow() as uow:
        assert (
            code_of(
                lambda: cancel_membership(uow, tenant_id=tenant.id, member_id=cem, plan_key="plus")
            )
            == ErrorCode.MEMBERSHIP_NOT_FOUND
        )
    club.nightly(date(2027, 1, 16))
    assert [m.status for m in club.memberships(cem)] == [Status.EXPIRED]


def test_the_dividend_counts_only_member_purchases_net_of_returns_and_pays_once(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    club = Club(new_uow, clock, tenant)
    dora = club.enrol("dora@example.org")
    # a purchase before she joins does not count
    club.buy(dora, "before", at(2026, 1, 10, 12), ("Food", "100.00"))
    clock.set(at(2026, 1, 20, 9))
    club.pay(dora, "coop", "30.00", "d-1")
    club.buy(dora, "o-1", at(2026, 3, 1, 12), ("Food", "80.00"), ("Pfand", "5.00"))
    club.buy(dora, "o-2", at(2026, 12, 31, 23), ("Food", "40.00"))
    clock.set(at(2027, 1, 5, 12))
    with new_uow() as uow:
        record_return(
            uow,
            programme_id=club.programme_id,
            ret=ReturnIn(external_id="r-1", purchase_external_id="o-2", amount=Decimal("20.00")),
        )
    # a purchase of the new year waits for next year's dividend
    club.buy(dora, "o-3", at(2027, 1, 6, 12), ("Food", "500.00"))
    club.nightly(date(2027, 1, 31))
    assert club.wallet(dora) == Decimal("0.00")  # not before 1 February
    club.nightly(date(2027, 2, 1))
    assert club.wallet(dora) == Decimal("5.00")  # 5 % of 80.00 + 20.00
    club.nightly(date(2027, 2, 2))
    assert club.wallet(dora) == Decimal("5.00")
    assert [e["amount"] for e in club.events("membership.dividend_paid")] == ["5.00"]
    with new_uow() as uow:
        report = verify_ledger(uow, tenant_id=tenant.id)
    assert report.ok, report.problems
