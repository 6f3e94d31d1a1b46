"""A member's data rights: export everything, erase the person, keep the ledger whole."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from treu.activities.model import LineIn, PurchaseIn
from treu.activities.service import record_purchase
from treu.clock import FixedClock
from treu.donations.service import donate_points
from treu.errors import ErrorCode, TreuError
from treu.jobs.nightly import run_nightly
from treu.ledger.service import get_balances, hold_points
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import Channel, IdentifierKind, MemberStatus
from treu.members.service import find_member, get_member
from treu.memberships.service import report_payment
from treu.outbox.service import list_events
from treu.privacy.service import EXPORT_FORMAT, erase_member, export_member
from treu.programmes.service import Tenant, apply_programme
from treu.rewards.service import redeem_reward
from treu.storage.uow import UnitOfWork
from treu.wallet.service import credit_wallet

NewUow = Callable[[], UnitOfWork]

DOCUMENT: dict[str, Any] = {
    "key": "boutique",
    "name": "Boutique",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "pending": {"mode": "after_days", "days": 14},
    "rules": [
        {
            "key": "base",
            "name": "1 per euro",
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        }
    ],
    "rewards": [{"key": "bag", "name": "Tote bag", "kind": "custom", "cost": 30}],
}


@pytest.fixture
def zoe(new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> tuple[str, str]:
    """Zoë: 100 available points, 40 pending, a voucher and a hold of 10 at checkout."""
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id
    with new_uow() as uow:
        member_id = enrol_member(
            uow,
            programme_id=programme_id,
            identifiers_={IdentifierKind.EMAIL: "zoe@example.org", IdentifierKind.CARD: "Z100"},
            name="Zoë Brandt",
            attributes={"size": "M"},
            consents_={Channel.EMAIL: True},
            source="signup-form",
        ).id

    def buy(external_id: str, price: str) -> None:
        purchase = PurchaseIn(
            external_id=external_id, currency="EUR", lines=[LineIn(unit_price=price)]
        )
        with new_uow() as uow:
            record_purchase(uow, programme_id=programme_id, member=member_id, purchase=purchase)

    buy("o-1", "130.00")
    clock.advance(timedelta(days=15))
    run_nightly(new_uow, day=clock.now().date(), programme_id=programme_id)
    buy("o-2", "40.00")
    with new_uow() as uow:
        redeem_reward(
            uow, tenant_id=tenant.id, member_id=member_id, reward_key="bag", idempotency_key="b-1"
        )
    with new_uow() as uow:
        hold_points(uow, tenant_id=tenant.id, member_id=member_id, points=10, idempotency_key="h-1")
    return programme_id, member_id


def test_an_export_holds_everything_about_the_member_as_json(
    new_uow: NewUow, tenant: Tenant, zoe: tuple[str, str]
) -> None:
    _, member_id = zoe
    with new_uow() as uow:
        export = export_member(uow, tenant_id=tenant.id, member_id=member_id)
    document = json.loads(json.dumps(export))  # plain JSON, nothing that needs a custom encoder
    assert document["format"] == EXPORT_FORMAT
    assert document["member"]["name"] == "Zoë Brandt"
    assert document["member"]["identifiers"] == {"email": "zoe@example.org", "card": "Z100"}
    assert [(c["channel"], c["granted"], c["source"]) for c in document["consents"]] == [
        ("email", True, "signup-form")
    ]
    assert (document["balances"]["available"], document["balances"]["pending"]) == (90, 40)
    assert [a["external_id"] for a in document["activities"]] == ["o-1", "o-2"]
    assert [v["reward_key"] for v in document["vouchers"]] == ["bag"]
    assert len(document["history"]) >= 4
    assert len(document["lots"]) == 2


def test_erasure_forgets_the_person_gives_up_the_points_and_keeps_the_ledger_whole(
    new_uow: NewUow, tenant: Tenant, zoe: tuple[str, str]
) -> None:
    programme_id, member_id = zoe
    with new_uow() as uow:
        given_up = erase_member(uow, tenant_id=tenant.id, member_id=member_id, actor="dpo")
    # every point she had: 90 available, 10 held, 40 pending
    assert given_up == 140
    with new_uow() as uow:
        member = get_member(uow, member_id, tenant_id=tenant.id)
        balances = get_balances(uow, tenant_id=tenant.id, member_id=member_id)
        report = verify_ledger(uow, tenant_id=tenant.id)
        events = list_events(uow, tenant_id=tenant.id, type="member.erased")
    assert member.status is MemberStatus.ERASED
    assert (member.name, member.birthday, member.attributes, member.identifiers) == (
        None,
        None,
        {},
        {},
    )
    assert (balances.available, balances.pending, balances.held) == (0, 0, 0)
    assert report.ok, report.problems
    assert [e["payload"]["points_given_up"] for e in events] == [140]
    # she cannot be found any more, and her e-mail address is free for a new sign-up
    with new_uow() as uow, pytest.raises(TreuError) as gone:
        find_member(uow, programme_id=programme_id, reference="email:zoe@example.org")
    assert gone.value.code is ErrorCode.MEMBER_NOT_FOUND
    with new_uow() as uow:
        enrol_member(
            uow, programme_id=programme_id, identifiers_={IdentifierKind.EMAIL: "zoe@example.org"}
        )
    # and erasing again changes nothing
    with new_uow() as uow:
        assert erase_member(uow, tenant_id=tenant.id, member_id=member_id, actor="dpo") == 0


MECHANICS: dict[str, Any] = {
    **DOCUMENT,
    "key": "kaffeebar",
    "pending": {"mode": "immediate"},
    "stamp_cards": [
        {
            "key": "karte",
            "name": "Kaffeekarte",
            "stamps_needed": 10,
            "earn": {"type": "per_unit", "items": {"categories": ["Kaffee"]}},
            "reward": "gratis",
        }
    ],
    "rewards": [
        {"key": "gratis", "name": "Gratis Kaffee", "kind": "free_product", "sku": "K"},
        {
            "key": "spende",
            "name": "Spende",
            "kind": "donation",
            "charity": "tafel",
            "points_per_step": 10,
            "amount_per_step": "1.00",
        },
    ],
    "charities": [{"key": "tafel", "name": "Tafel"}],
    "memberships": [{"key": "plus", "name": "Plus", "billing": "lifetime", "fee": "5.00"}],
}


def test_an_export_holds_the_stamps_wallet_membership_and_donations_too(
    new_uow: NewUow, tenant: Tenant
) -> None:
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=MECHANICS).programme_id
    with new_uow() as uow:
        member_id = enrol_member(
            uow, programme_id=programme_id, identifiers_={IdentifierKind.EMAIL: "ida@example.org"}
        ).id
    coffees = PurchaseIn(
        external_id="o-1",
        currency="EUR",
        lines=[LineIn(category="Kaffee", quantity=3, unit_price="8.00")],
    )
    with new_uow() as uow:
        record_purchase(uow, programme_id=programme_id, member=member_id, purchase=coffees)
    with new_uow() as uow:
        report_payment(
            uow,
            tenant_id=tenant.id,
            member_id=member_id,
            plan_key="plus",
            amount=Decimal("5.00"),
            currency="EUR",
            external_id="psp-1",
        )
    with new_uow() as uow:
        credit_wallet(
            uow,
            tenant_id=tenant.id,
            member_id=member_id,
            amount=Decimal("2.50"),
            kind="goodwill",
            reason="Kaffee verschüttet",
            idempotency_key="g-1",
        )
    with new_uow() as uow:
        donate_points(
            uow,
            tenant_id=tenant.id,
            member_id=member_id,
            charity="tafel",
            points=20,
            idempotency_key="d-1",
        )
    with new_uow() as uow:
        document = json.loads(
            json.dumps(export_member(uow, tenant_id=tenant.id, member_id=member_id))
        )
    assert [(c["card_key"], c["stamps"]) for c in document["stamp_cards"]] == [("karte", 3)]
    assert [(m["plan"], m["status"]) for m in document["memberships"]] == [("plus", "active")]
    assert document["wallet"]["available"] == "2.50"
    assert [(d["charity"], d["points"], d["amount_minor"]) for d in document["donations"]] == [
        ("tafel", 20, 200)
    ]
    assert document["balances"]["available"] == 24 - 20
    assert {h["unit"] for h in document["history"]} == {"points", "stamps", "wallet"}
