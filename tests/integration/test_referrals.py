"""Referrals against both databases: a friend enrols with a code, the first qualifying purchase
rewards both; unknown codes are refused; look-alike sign-ups wait for a review; limits hold."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from treu.activities.model import PurchaseIn, ReturnIn
from treu.activities.service import ActivityResult, record_purchase, record_return
from treu.api.app import create_app
from treu.auth.model import Scope
from treu.auth.service import create_api_key
from treu.clock import FixedClock
from treu.errors import ErrorCode, TreuError
from treu.jobs.nightly import run_nightly
from treu.ledger.service import get_balances
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.outbox.service import list_events
from treu.programmes.service import Tenant, apply_programme
from treu.referrals.model import ReferralStatus
from treu.referrals.service import (
    approve_referral,
    list_referrals,
    referral_card,
    reject_referral,
)
from treu.rewards.service import list_vouchers
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")


def _document(**referral: Any) -> dict[str, Any]:
    return {
        "key": "friends",
        "name": "Friends",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "rules": [{"key": "base", "name": "1/€", "effect": {"type": "per_amount", "points": 1}}],
        "rewards": [{"key": "welcome", "name": "5 € off", "kind": "fixed_discount", "value": "5"}],
        "referral": {
            "referrer_reward": {"points": 500},
            "friend_reward": {"reward": "welcome"},
            "min_purchase": "20.00",
            "link_base": "https://shop.example/r/",
            **referral,
        },
    }


@pytest.fixture
def programme_id(new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> str:
    clock.set(datetime(2026, 3, 2, 10, tzinfo=BERLIN))
    with new_uow() as uow:
        return apply_programme(uow, tenant_id=tenant.id, document=_document()).programme_id


def _enrol(
    new_uow: NewUow,
    programme_id: str,
    email: str,
    code: str | None = None,
    address: str | None = None,
) -> str:
    with new_uow() as uow:
        return enrol_member(
            uow,
            programme_id=programme_id,
            identifiers_={IdentifierKind.EMAIL: email},
            referral_code=code,
            client_address=address,
        ).id


def _code(new_uow: NewUow, tenant: Tenant, member_id: str) -> str:
    with new_uow() as uow:
        return referral_card(uow, tenant_id=tenant.id, member_id=member_id).code


def _buy(
    new_uow: NewUow, programme_id: str, member_id: str, total: str, ref: str
) -> ActivityResult:
    with new_uow() as uow:
        return record_purchase(
            uow,
            programme_id=programme_id,
            member=member_id,
            purchase=PurchaseIn(external_id=ref, currency="EUR", total=total),
        )


def _points(new_uow: NewUow, tenant: Tenant, member_id: str) -> int:
    with new_uow() as uow:
        return get_balances(uow, tenant_id=tenant.id, member_id=member_id).available


def test_a_friends_first_qualifying_purchase_rewards_both(
    new_uow: NewUow, programme_id: str, tenant: Tenant
) -> None:
    ana = _enrol(new_uow, programme_id, "ana@example.org", address="10.0.0.1")
    with new_uow() as uow:
        card = referral_card(uow, tenant_id=tenant.id, member_id=ana)
    assert len(card.code) == 8
    assert card.link == f"https://shop.example/r/{card.code}"
    ben = _enrol(new_uow, programme_id, "ben@example.org", card.code.lower(), "10.0.0.2")
    # 12.00 is below the 20.00 that qualifies: nothing yet
    small = _buy(new_uow, programme_id, ben, "12.00", "o-1")
    assert [e.kind for e in small.effects] == []
    bought = _buy(new_uow, programme_id, ben, "30.00", "o-2")
    assert [e.kind for e in bought.effects] == ["voucher.issued", "referral.converted"]
    assert _points(new_uow, tenant, ana) == 500
    with new_uow() as uow:
        assert [v.reward_key for v in list_vouchers(uow, tenant_id=tenant.id, member_id=ben)] == [
            "welcome"
        ]
        (referral,) = referral_card(uow, tenant_id=tenant.id, member_id=ana).referrals
        assert (referral.friend_id, referral.status) == (ben, ReferralStatus.CONVERTED)
        events = [e["type"] for e in list_events(uow, tenant_id=tenant.id)]
        assert events.count("referral.created") == 1
        assert events.count("referral.converted") == 1
        report = verify_ledger(uow, tenant_id=tenant.id)
        assert report.ok, report.problems
    # a second purchase converts nothing again
    assert _buy(new_uow, programme_id, ben, "40.00", "o-3").effects == []
    assert _points(new_uow, tenant, ana) == 500


def test_an_unknown_code_refuses_the_enrolment(new_uow: NewUow, programme_id: str) -> None:
    with pytest.raises(TreuError) as refused:
        _enrol(new_uow, programme_id, "ben@example.org", "NOPE2345")
    assert refused.value.code is ErrorCode.REFERRAL_CODE_NOT_FOUND
    # nothing changed: the e-mail address is still free
    _enrol(new_uow, programme_id, "ben@example.org")


@pytest.mark.parametrize(
    ("email", "address", "reason"),
    [
        ("a.na+second@gmail.com", "10.0.0.2", "same_email"),  # Ana's own mailbox, written anew
        ("ben@example.org", "10.0.0.1", "same_address"),  # from Ana's device
    ],
)
def test_a_look_alike_signup_is_held_until_staff_decide(
    new_uow: NewUow, programme_id: str, tenant: Tenant, email: str, address: str, reason: str
) -> None:
    ana = _enrol(new_uow, programme_id, "ana@gmail.com", address="10.0.0.1")
    friend = _enrol(new_uow, programme_id, email, _code(new_uow, tenant, ana), address)
    bought = _buy(new_uow, programme_id, friend, "30.00", "o-1")
    assert [e.kind for e in bought.effects] == ["referral.qualified"]
    assert _points(new_uow, tenant, ana) == 0
    with new_uow() as uow:
        (held,) = list_referrals(uow, programme_id=programme_id, status=ReferralStatus.HELD)
        assert held.reasons == [reason]
    with new_uow() as uow:
        view, effects = approve_referral(
            uow, tenant_id=tenant.id, referral_id=held.id, actor="staff:lee"
        )
    assert view.status is ReferralStatus.CONVERTED
    assert "referral.converted" in [e.kind for e in effects]
    assert _points(new_uow, tenant, ana) == 500
    with pytest.raises(TreuError) as again, new_uow() as uow:
        reject_referral(uow, tenant_id=tenant.id, referral_id=held.id, actor="staff:lee")
    assert again.value.code is ErrorCode.REFERRAL_NOT_HELD


def test_a_rejected_referral_rewards_nobody(
    new_uow: NewUow, programme_id: str, tenant: Tenant
) -> None:
    ana = _enrol(new_uow, programme_id, "ana@example.org", address="10.0.0.1")
    ben = _enrol(new_uow, programme_id, "ben@example.org", _code(new_uow, tenant, ana), "10.0.0.1")
    with new_uow() as uow:
        (held,) = list_referrals(uow, programme_id=programme_id, status=ReferralStatus.HELD)
        reject_referral(uow, tenant_id=tenant.id, referral_id=held.id, actor="staff:lee")
    assert _buy(new_uow, programme_id, ben, "30.00", "o-1").effects == []
    assert _points(new_uow, tenant, ana) == 0


def test_many_friends_from_one_address_and_rings_are_held(
    new_uow: NewUow, programme_id: str, tenant: Tenant
) -> None:
    ana = _enrol(new_uow, programme_id, "ana@example.org", address="10.0.0.1")
    code = _code(new_uow, tenant, ana)
    _enrol(new_uow, programme_id, "ben@example.org", code, "10.0.0.9")
    _enrol(new_uow, programme_id, "cy@example.org", code, "10.0.0.9")  # Ana's 2nd from .9
    # Ben (referred by Ana) refers someone from Ana's address: the ring closes
    ben = next(r.friend_id for r in list_referrals_of(new_uow, programme_id))
    _enrol(new_uow, programme_id, "dee@example.org", _code(new_uow, tenant, ben), "10.0.0.1")
    with new_uow() as uow:
        reasons = [r.reasons for r in list_referrals(uow, programme_id=programme_id)]
    assert reasons == [[], ["many_referrals_from_one_address"], ["referral_ring"]]


def list_referrals_of(new_uow: NewUow, programme_id: str) -> list[Any]:
    with new_uow() as uow:
        return list_referrals(uow, programme_id=programme_id)


def test_the_referrer_is_rewarded_at_most_the_monthly_limit(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    with new_uow() as uow:
        document = _document(per_referrer_per_month=2)
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document).programme_id
    ana = _enrol(new_uow, programme_id, "ana@example.org", address="10.0.0.1")
    code = _code(new_uow, tenant, ana)
    for i in range(3):
        friend = _enrol(new_uow, programme_id, f"f{i}@example.org", code, f"10.1.0.{i}")
        _buy(new_uow, programme_id, friend, "25.00", f"o-{i}")
    assert _points(new_uow, tenant, ana) == 1000
    clock.set(datetime(2026, 4, 1, 9, tzinfo=BERLIN))  # a new month
    friend = _enrol(new_uow, programme_id, "april@example.org", code, "10.2.0.1")
    _buy(new_uow, programme_id, friend, "25.00", "o-april")
    assert _points(new_uow, tenant, ana) == 1500


def test_a_code_in_a_programme_without_referrals_is_unknown(
    new_uow: NewUow, tenant: Tenant
) -> None:
    document = _document()
    del document["referral"]
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document).programme_id
    with pytest.raises(TreuError) as refused:
        _enrol(new_uow, programme_id, "ben@example.org", "ABCD2345")
    assert refused.value.code is ErrorCode.REFERRAL_CODE_NOT_FOUND


def test_with_a_return_window_the_nightly_run_confirms_the_conversion(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(datetime(2026, 3, 2, 10, tzinfo=BERLIN))
    with new_uow() as uow:
        document = _document(confirm_after_days=30)
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document).programme_id
    ana = _enrol(new_uow, programme_id, "ana@example.org", address="10.0.0.1")
    ben = _enrol(new_uow, programme_id, "ben@example.org", _code(new_uow, tenant, ana), "10.0.0.2")
    bought = _buy(new_uow, programme_id, ben, "30.00", "o-1")  # 2 March
    assert [e.kind for e in bought.effects] == ["referral.qualified"]
    clock.set(datetime(2026, 4, 1, 9, tzinfo=BERLIN))
    run_nightly(new_uow, day=date(2026, 4, 1), programme_id=programme_id)  # 30 days: too soon
    assert _points(new_uow, tenant, ana) == 0
    clock.set(datetime(2026, 4, 2, 9, tzinfo=BERLIN))
    run_nightly(new_uow, day=date(2026, 4, 2), programme_id=programme_id)
    run_nightly(new_uow, day=date(2026, 4, 2), programme_id=programme_id)  # once per date
    assert _points(new_uow, tenant, ana) == 500
    with new_uow() as uow:
        (referral,) = list_referrals(uow, programme_id=programme_id)
        assert referral.status is ReferralStatus.CONVERTED
        assert [v.reward_key for v in list_vouchers(uow, tenant_id=tenant.id, member_id=ben)] == [
            "welcome"
        ]


def test_a_qualifying_purchase_returned_within_the_window_does_not_count(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(datetime(2026, 3, 2, 10, tzinfo=BERLIN))
    with new_uow() as uow:
        document = _document(confirm_after_days=14)
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document).programme_id
    ana = _enrol(new_uow, programme_id, "ana@example.org", address="10.0.0.1")
    ben = _enrol(new_uow, programme_id, "ben@example.org", _code(new_uow, tenant, ana), "10.0.0.2")
    _buy(new_uow, programme_id, ben, "30.00", "o-1")
    with new_uow() as uow:
        returned = record_return(
            uow,
            programme_id=programme_id,
            ret=ReturnIn(external_id="r-1", purchase_external_id="o-1", amount="15.00"),
        )
    assert [e.kind for e in returned.effects] == ["referral.unqualified"]
    clock.set(datetime(2026, 3, 20, 9, tzinfo=BERLIN))
    run_nightly(new_uow, day=date(2026, 3, 20), programme_id=programme_id)
    assert _points(new_uow, tenant, ana) == 0
    with new_uow() as uow:
        (referral,) = list_referrals(uow, programme_id=programme_id)
        assert referral.status is ReferralStatus.PENDING
    # the next qualifying purchase starts the window again
    assert [e.kind for e in _buy(new_uow, programme_id, ben, "25.00", "o-2").effects] == [
        "referral.qualified"
    ]


def test_referrals_over_http(
    engine: Engine, clock: FixedClock, tenant: Tenant, programme_id: str
) -> None:
    """The shop enrols a friend with a code and the customer's address; staff clear the queue."""
    with UnitOfWork(engine, clock) as uow:
        shop = create_api_key(uow, tenant_id=tenant.id, scope=Scope.INTEGRATION, name="shop").token
        admin = create_api_key(uow, tenant_id=tenant.id, scope=Scope.ADMIN, name="owner").token
    members = "/v1/programmes/friends/members"
    with TestClient(create_app(engine, clock)) as client:

        def call(method: str, url: str, token: str, body: Any = None) -> Any:
            response = client.request(
                method, url, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            return response.status_code, response.json()

        _, ana = call("POST", members, shop, {"identifiers": {"email": "ana@example.org"}})
        _, card = call("GET", f"/v1/members/{ana['id']}/referral", shop)
        assert card["link"] == f"https://shop.example/r/{card['code']}"
        unknown = {"identifiers": {"email": "x@example.org"}, "referral_code": "NOPE2345"}
        assert call("POST", members, shop, unknown)[1]["code"] == "referral_code_not_found"
        friend = {
            "identifiers": {"email": "ben@example.org"},
            "referral_code": card["code"],
            "client_address": "203.0.113.7",
        }
        assert call("POST", members, shop, friend)[0] == 201
        look_alike = {**friend, "identifiers": {"email": "cy@example.org"}}
        assert call("POST", members, shop, look_alike)[0] == 201
        queue = "/v1/programmes/friends/referrals?status=held"
        assert call("GET", queue, shop)[0] == 403  # reviewing is for staff
        status, held = call("GET", queue, admin)
        assert [r["reasons"] for r in held] == [["many_referrals_from_one_address"]]
        status, rejected = call("POST", f"/v1/referrals/{held[0]['id']}/reject", admin)
        assert (status, rejected["status"], rejected["decided_by"]) == (
            200,
            "rejected",
            f"api:{admin_key_id(admin)}",
        )
        status, again = call("POST", f"/v1/referrals/{held[0]['id']}/approve", admin)
        assert (status, again["code"]) == (409, "referral_not_held")
        _, card = call("GET", f"/v1/members/{ana['id']}/referral", shop)
        assert [r["status"] for r in card["referrals"]] == ["pending", "rejected"]


def admin_key_id(token: str) -> str:
    return "key_" + token.removeprefix("treu_sk_")[:26]
