"""Members: every identifier finds the member, consents are kept as given, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from treu.activities.model import LineIn, PurchaseIn, ReturnIn
from treu.activities.service import record_purchase, record_return
from treu.clock import FixedClock
from treu.errors import ErrorCode, TreuError
from treu.ledger.service import get_balances
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.merge import merge_members
from treu.members.model import Channel, IdentifierKind, MemberStatus
from treu.members.service import (
    consent_history,
    find_member,
    get_member,
    record_consent,
)
from treu.programmes.service import Tenant, apply_programme
from treu.rewards.service import list_vouchers, redeem_reward
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]

DOCUMENT = {
    "key": "laden",
    "name": "Laden",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "country": "DE",
}


@pytest.fixture
def programme_id(new_uow: NewUow, tenant: Tenant) -> str:
    with new_uow() as uow:
        return apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id


def test_a_member_is_found_by_any_of_their_identifiers_however_typed(
    new_uow: NewUow, programme_id: str
) -> None:
    with new_uow() as uow:
        una = enrol_member(
            uow,
            programme_id=programme_id,
            identifiers_={
                IdentifierKind.EMAIL: "Una.Berg@Example.ORG",
                IdentifierKind.PHONE: "030 1234567",
                IdentifierKind.CARD: "4711-0815",
                IdentifierKind.EXTERNAL: "shopify-9001",
                IdentifierKind.PAYMENT: "tok_visa_4242",
            },
        )
    # the phone is stored in E.164, the payment token only as a keyed hash
    assert una.identifiers["phone"] == "+49301234567"
    assert "tok_visa_4242" not in una.identifiers["payment"]
    for reference in [
        "email:una.berg@example.org",
        "phone:+49 30 1234567",
        "phone:030/1234567",
        "card:4711-0815",
        "external:shopify-9001",
        "payment:tok_visa_4242",
        una.id,
    ]:
        with new_uow() as uow:
            assert find_member(uow, programme_id=programme_id, reference=reference).id == una.id
    with new_uow() as uow, pytest.raises(TreuError) as missing:
        find_member(uow, programme_id=programme_id, reference="payment:tok_other")
    assert missing.value.code is ErrorCode.MEMBER_NOT_FOUND


def test_an_identifier_belongs_to_one_member_of_a_programme(
    new_uow: NewUow, programme_id: str
) -> None:
    with new_uow() as uow:
        enrol_member(
            uow, programme_id=programme_id, identifiers_={IdentifierKind.PHONE: "+4930111222"}
        )
    with new_uow() as uow, pytest.raises(TreuError) as taken:
        enrol_member(
            uow, programme_id=programme_id, identifiers_={IdentifierKind.PHONE: "030 111222"}
        )
    assert taken.value.code is ErrorCode.DUPLICATE_IDENTIFIER


def test_consents_are_kept_per_channel_with_source_and_time(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant, programme_id: str
) -> None:
    signed_up = clock.now()
    with new_uow() as uow:
        vic = enrol_member(
            uow,
            programme_id=programme_id,
            identifiers_={IdentifierKind.EMAIL: "vic@example.org"},
            consents_={Channel.EMAIL: True, Channel.SMS: False},
            source="signup-form",
        )
    clock.advance(timedelta(days=30))
    with new_uow() as uow:
        record_consent(
            uow,
            tenant_id=tenant.id,
            member_id=vic.id,
            channel=Channel.EMAIL,
            granted=False,
            source="unsubscribe-link",
        )
    with new_uow() as uow:
        assert get_member(uow, vic.id, tenant_id=tenant.id).consents == {
            "email": False,
            "sms": False,
        }
        history = consent_history(uow, tenant_id=tenant.id, member_id=vic.id)
    assert [(r.channel, r.granted, r.source, r.recorded_at) for r in history] == [
        ("email", True, "signup-form", signed_up),
        ("sms", False, "signup-form", signed_up),
        ("email", False, "unsubscribe-link", signed_up + timedelta(days=30)),
    ]


def test_two_sign_ups_of_one_person_merge_into_one_balance(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    document = {
        **DOCUMENT,
        "key": "laden-merge",
        "returns": {"policy": "within_balance"},
        "rules": [
            {
                "key": "base",
                "name": "1 per euro",
                "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
            }
        ],
        "rewards": [{"key": "mug", "name": "Mug", "kind": "custom", "cost": 10}],
    }
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document).programme_id

    def enrol(kind: IdentifierKind, value: str) -> str:
        with new_uow() as uow:
            return enrol_member(uow, programme_id=programme_id, identifiers_={kind: value}).id

    def buy(member: str, external_id: str, price: str) -> None:
        purchase = PurchaseIn(
            external_id=external_id, currency="EUR", lines=[LineIn(unit_price=price)]
        )
        with new_uow() as uow:
            record_purchase(uow, programme_id=programme_id, member=member, purchase=purchase)

    # given Ada has a card from the till and, separately, an online account
    till, online = enrol(IdentifierKind.CARD, "ADA1"), enrol(IdentifierKind.EMAIL, "ada@x.org")
    buy(till, "till-1", "30.00")
    buy(online, "web-1", "50.00")
    with new_uow() as uow:
        voucher = redeem_reward(
            uow, tenant_id=tenant.id, member_id=online, reward_key="mug", idempotency_key="m-1"
        ).voucher
    # when support merges the online account into the card
    with new_uow() as uow:
        ada = merge_members(uow, tenant_id=tenant.id, keep_id=till, merge_id=online, actor="ops")
    # then one member has both identifiers, all points, the voucher and the purchases
    assert set(ada.identifiers) == {"card", "email"}
    with new_uow() as uow:
        assert find_member(uow, programme_id=programme_id, reference="email:ada@x.org").id == till
        assert get_balances(uow, tenant_id=tenant.id, member_id=till).available == 70
        assert get_balances(uow, tenant_id=tenant.id, member_id=online).available == 0
        assert [v.id for v in list_vouchers(uow, tenant_id=tenant.id, member_id=till)] == [
            voucher.id
        ]
        assert get_member(uow, online, tenant_id=tenant.id).status is MemberStatus.MERGED
    # and a return of the merged account's purchase takes the points back from the merged balance
    with new_uow() as uow:
        record_return(
            uow,
            programme_id=programme_id,
            ret=ReturnIn(external_id="r-1", purchase_external_id="web-1", amount="50.00"),
        )
    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=till).available == 20
        report = verify_ledger(uow, tenant_id=tenant.id)
    assert report.ok, report.problems
    # merging again changes nothing; merging a member into itself is refused
    with new_uow() as uow:
        assert (
            merge_members(uow, tenant_id=tenant.id, keep_id=till, merge_id=online, actor="ops").id
            == till
        )
    with new_uow() as uow, pytest.raises(TreuError) as itself:
        merge_members(uow, tenant_id=tenant.id, keep_id=till, merge_id=till, actor="ops")
    assert itself.value.code is ErrorCode.VALIDATION_ERROR
