"""Donations against both databases: points leave through the ledger, whole steps only, a retry
gives nothing twice, and the report counts money, donors and points per programme day."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from treu.activities.model import PurchaseIn
from treu.activities.service import record_purchase
from treu.api.app import create_app
from treu.auth.model import Scope
from treu.auth.service import create_api_key
from treu.clock import FixedClock
from treu.donations.service import (
    DonationTotal,
    DonationView,
    donate_points,
    donate_wallet,
    donation_report,
    list_charities,
)
from treu.errors import ErrorCode, TreuError
from treu.ledger.service import get_balances, member_history
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.members.service import set_blocked
from treu.outbox.service import list_events
from treu.programmes.service import Tenant, apply_programme
from treu.storage.uow import UnitOfWork
from treu.wallet.service import credit_wallet, get_wallet

NewUow = Callable[[], UnitOfWork]
NEW_YORK = ZoneInfo("America/New_York")
DOCUMENT: dict[str, Any] = {
    "key": "giving",
    "name": "Giving",
    "currency": "USD",
    "timezone": "America/New_York",
    "rules": [{"key": "base", "name": "1 per $", "effect": {"type": "per_amount", "points": 1}}],
    "charities": [
        {"key": "nbjc", "name": "National Black Justice Coalition"},
        {"key": "food", "name": "Food Bank", "url": "https://food.example.org", "wallet": True},
        {"key": "later", "name": "Not yet offered"},
    ],
    "rewards": [
        {
            "key": "give-nbjc",
            "name": "Give to NBJC",
            "kind": "donation",
            "charity": "nbjc",
            "points_per_step": 500,
            "amount_per_step": "10.00",
        },
        {
            "key": "give-food",
            "name": "Give to the food bank",
            "kind": "donation",
            "charity": "food",
            "points_per_step": 100,
            "amount_per_step": "1.50",
        },
    ],
}


@pytest.fixture
def programme_id(new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> str:
    clock.set(datetime(2026, 5, 4, 10, tzinfo=NEW_YORK))
    with new_uow() as uow:
        return apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id


def _member(new_uow: NewUow, programme_id: str, name: str, total: str) -> str:
    with new_uow() as uow:
        member_id = enrol_member(
            uow,
            programme_id=programme_id,
            identifiers_={IdentifierKind.EMAIL: f"{name}@example.com"},
        ).id
    with new_uow() as uow:
        purchase = PurchaseIn(external_id=f"order-{name}", currency="USD", total=total)
        record_purchase(uow, programme_id=programme_id, member=member_id, purchase=purchase)
    return member_id


def _donate(
    new_uow: NewUow, tenant: Tenant, member_id: str, charity: str, points: int, key: str
) -> DonationView:
    with new_uow() as uow:
        return donate_points(
            uow,
            tenant_id=tenant.id,
            member_id=member_id,
            charity=charity,
            points=points,
            idempotency_key=key,
        )


def _available(new_uow: NewUow, tenant: Tenant, member_id: str) -> int:
    with new_uow() as uow:
        return get_balances(uow, tenant_id=tenant.id, member_id=member_id).available


def test_the_charities_show_their_rates(new_uow: NewUow, programme_id: str) -> None:
    with new_uow() as uow:
        listed = list_charities(uow, programme_id=programme_id)
    assert [(c.key, c.points_per_step, c.amount_per_step, c.wallet) for c in listed] == [
        ("nbjc", 500, Decimal("10.00"), False),
        ("food", 100, Decimal("1.50"), True),
        ("later", None, None, False),
    ]


def test_a_donation_moves_points_to_the_donation_account_and_a_retry_changes_nothing(
    new_uow: NewUow, programme_id: str, tenant: Tenant
) -> None:
    ana = _member(new_uow, programme_id, "ana", "1250.00")
    given = _donate(new_uow, tenant, ana, "nbjc", 1000, "k1")
    again = _donate(new_uow, tenant, ana, "nbjc", 1000, "k1")
    assert (given.amount, given.points, given.replayed) == (Decimal("20.00"), 1000, False)
    assert (again.id, again.replayed) == (given.id, True)
    assert _available(new_uow, tenant, ana) == 250
    with new_uow() as uow:
        last = member_history(uow, tenant_id=tenant.id, member_id=ana)[-1]
        assert (last.kind, last.points, last.reason) == (
            "donate",
            -1000,
            "Donation of 20.00 USD to National Black Justice Coalition",
        )
        events = list_events(uow, tenant_id=tenant.id, type="donation.made")
        assert [e["payload"] for e in events] == [
            {
                "donation_id": given.id,
                "member_id": ana,
                "charity": "nbjc",
                "source": "points",
                "points": 1000,
                "amount": "20.00",
                "currency": "USD",
            }
        ]
        report = verify_ledger(uow, tenant_id=tenant.id)
        assert report.ok, report.problems


@pytest.mark.parametrize(
    ("charity", "points", "code"),
    [
        ("nbjc", 300, ErrorCode.INVALID_AMOUNT),
        ("nbjc", 1500, ErrorCode.INSUFFICIENT_POINTS),
        ("unicef", 500, ErrorCode.CHARITY_NOT_FOUND),
        ("later", 500, ErrorCode.REWARD_UNAVAILABLE),
    ],
)
def test_a_donation_that_cannot_be_made_changes_nothing(
    new_uow: NewUow, programme_id: str, tenant: Tenant, charity: str, points: int, code: ErrorCode
) -> None:
    ana = _member(new_uow, programme_id, "ana", "1250.00")
    with pytest.raises(TreuError) as refused:
        _donate(new_uow, tenant, ana, charity, points, "k1")
    assert refused.value.code is code
    assert _available(new_uow, tenant, ana) == 1250
    with new_uow() as uow:
        assert donation_report(uow, programme_id=programme_id)[1].points == 0


def test_a_key_reused_for_another_donation_is_a_conflict(
    new_uow: NewUow, programme_id: str, tenant: Tenant
) -> None:
    ana = _member(new_uow, programme_id, "ana", "1250.00")
    _donate(new_uow, tenant, ana, "nbjc", 500, "k1")
    with pytest.raises(TreuError) as refused:
        _donate(new_uow, tenant, ana, "food", 100, "k1")
    assert refused.value.code is ErrorCode.IDEMPOTENCY_KEY_REUSE
    assert _available(new_uow, tenant, ana) == 750


def test_a_blocked_member_cannot_donate(new_uow: NewUow, programme_id: str, tenant: Tenant) -> None:
    ana = _member(new_uow, programme_id, "ana", "600.00")
    with new_uow() as uow:
        set_blocked(uow, tenant_id=tenant.id, member_id=ana, blocked=True)
    with pytest.raises(TreuError) as refused:
        _donate(new_uow, tenant, ana, "nbjc", 500, "k1")
    assert refused.value.code is ErrorCode.MEMBER_BLOCKED


def test_the_report_counts_money_donors_and_points_per_programme_day(
    new_uow: NewUow, clock: FixedClock, programme_id: str, tenant: Tenant
) -> None:
    ana = _member(new_uow, programme_id, "ana", "2000.00")
    bo = _member(new_uow, programme_id, "bo", "600.00")
    # 4 May, 23:30 in New York is 5 May in UTC: it still counts for 4 May
    clock.set(datetime(2026, 5, 4, 23, 30, tzinfo=NEW_YORK))
    _donate(new_uow, tenant, ana, "nbjc", 500, "a1")
    _donate(new_uow, tenant, ana, "nbjc", 1000, "a2")
    _donate(new_uow, tenant, bo, "nbjc", 500, "b1")
    _donate(new_uow, tenant, ana, "food", 300, "a3")
    clock.set(datetime(2026, 5, 5, 9, tzinfo=NEW_YORK))
    _donate(new_uow, tenant, bo, "food", 100, "b2")
    with new_uow() as uow:
        may_4 = donation_report(
            uow,
            programme_id=programme_id,
            start=datetime(2026, 5, 4).date(),
            end=datetime(2026, 5, 5).date(),
        )
        everything = donation_report(uow, programme_id=programme_id)
    assert may_4 == [
        DonationTotal("food", "Food Bank", Decimal("4.50"), "USD", 1, 300, 1),
        DonationTotal("later", "Not yet offered", Decimal("0.00"), "USD", 0, 0, 0),
        DonationTotal(
            "nbjc", "National Black Justice Coalition", Decimal("40.00"), "USD", 2, 2000, 3
        ),
    ]
    assert everything[0] == DonationTotal("food", "Food Bank", Decimal("6.00"), "USD", 2, 400, 2)


def test_a_period_that_ends_before_it_starts_is_refused(new_uow: NewUow, programme_id: str) -> None:
    with pytest.raises(TreuError) as refused, new_uow() as uow:
        donation_report(
            uow,
            programme_id=programme_id,
            start=datetime(2026, 5, 5).date(),
            end=datetime(2026, 5, 5).date(),
        )
    assert refused.value.code is ErrorCode.VALIDATION_ERROR


def _wallet_of(new_uow: NewUow, tenant: Tenant, member_id: str, amount: str) -> None:
    with new_uow() as uow:
        credit_wallet(
            uow,
            tenant_id=tenant.id,
            member_id=member_id,
            amount=Decimal(amount),
            kind="store_credit",
            reason="refund",
            idempotency_key=f"credit-{member_id}",
        )


def test_a_purchase_round_up_is_given_from_the_wallet(
    new_uow: NewUow, programme_id: str, tenant: Tenant
) -> None:
    ana = _member(new_uow, programme_id, "ana", "10.00")
    _wallet_of(new_uow, tenant, ana, "5.00")
    with new_uow() as uow:
        given = donate_wallet(
            uow,
            tenant_id=tenant.id,
            member_id=ana,
            charity="food",
            currency="USD",
            round_up_of=Decimal("23.40"),
            idempotency_key="round-up-1",
        )
    assert (given.unit, given.points, given.amount) == ("wallet", 0, Decimal("0.60"))
    with new_uow() as uow:
        assert get_wallet(uow, tenant_id=tenant.id, member_id=ana).available == Decimal("4.40")
        food = donation_report(uow, programme_id=programme_id)[0]
        assert (food.charity, food.amount, food.donors, food.points) == (
            "food",
            Decimal("0.60"),
            1,
            0,
        )
        report = verify_ledger(uow, tenant_id=tenant.id)
        assert report.ok, report.problems
    assert _available(new_uow, tenant, ana) == 10  # points untouched: units never mix


@pytest.mark.parametrize(
    ("charity", "fields", "code"),
    [
        ("food", {"round_up_of": Decimal("23.00")}, ErrorCode.INVALID_AMOUNT),  # nothing to round
        ("food", {"amount": Decimal("6.00")}, ErrorCode.INSUFFICIENT_FUNDS),
        ("nbjc", {"amount": Decimal("1.00")}, ErrorCode.REWARD_UNAVAILABLE),  # points only
        ("food", {"amount": Decimal("1.00"), "currency": "EUR"}, ErrorCode.CURRENCY_MISMATCH),
    ],
)
def test_a_wallet_donation_that_cannot_be_made_changes_nothing(
    new_uow: NewUow,
    programme_id: str,
    tenant: Tenant,
    charity: str,
    fields: dict[str, Any],
    code: ErrorCode,
) -> None:
    ana = _member(new_uow, programme_id, "ana", "10.00")
    _wallet_of(new_uow, tenant, ana, "5.00")
    with pytest.raises(TreuError) as refused, new_uow() as uow:
        donate_wallet(
            uow,
            tenant_id=tenant.id,
            member_id=ana,
            charity=charity,
            idempotency_key="w1",
            **{"currency": "USD", **fields},
        )
    assert refused.value.code is code
    with new_uow() as uow:
        assert get_wallet(uow, tenant_id=tenant.id, member_id=ana).available == Decimal("5.00")


def test_donations_of_points_and_of_wallet_money_over_http(
    engine: Engine, clock: FixedClock, programme_id: str, tenant: Tenant, new_uow: NewUow
) -> None:
    ana = _member(new_uow, programme_id, "ana", "600.00")
    _wallet_of(new_uow, tenant, ana, "5.00")
    with UnitOfWork(engine, clock) as uow:
        token = create_api_key(uow, tenant_id=tenant.id, scope=Scope.INTEGRATION, name="app").token
    with TestClient(create_app(engine, clock)) as client:

        def donate(body: dict[str, Any]) -> Any:
            return client.post(
                f"/v1/members/{ana}/donations",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )

        points = donate({"charity": "nbjc", "points": 500})
        round_up = donate({"charity": "food", "round_up_of": "23.40", "currency": "USD"})
        neither = donate({"charity": "food"})
        both = donate({"charity": "food", "points": 100, "amount": "1.00", "currency": "USD"})
    assert (points.status_code, points.json()["source"], points.json()["amount"]) == (
        201,
        "points",
        "10.00",
    )
    assert (round_up.status_code, round_up.json()["source"], round_up.json()["amount"]) == (
        201,
        "wallet",
        "0.60",
    )
    assert [neither.status_code, both.status_code] == [422, 422]
    assert neither.json()["code"] == "validation_error"


def test_verify_finds_a_donation_that_disagrees_with_its_transfer(
    new_uow: NewUow, programme_id: str, tenant: Tenant
) -> None:
    ana = _member(new_uow, programme_id, "ana", "1250.00")
    given = _donate(new_uow, tenant, ana, "nbjc", 1000, "k1")
    with new_uow() as uow:  # an admin "fixes" the donation by hand, not the ledger
        uow.conn.execute(text("UPDATE donations SET points = 500 WHERE id = :id"), {"id": given.id})
        uow.commit()
    with new_uow() as uow:
        report = verify_ledger(uow, tenant_id=tenant.id)
    assert report.problems == {"donations_match_transfers": [given.id]}
