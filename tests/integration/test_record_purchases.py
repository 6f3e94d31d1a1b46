"""Many purchases in one transaction (bulk import) behave like the same purchases one by one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from treu.activities.model import LineIn, PurchaseIn
from treu.activities.service import ActivityResult, record_purchase, record_purchases
from treu.clock import FixedClock
from treu.errors import ErrorCode, TreuError
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.members.service import get_member, set_blocked
from treu.outbox.service import list_events
from treu.programmes.service import Tenant, apply_programme
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]

DOCUMENT: dict[str, Any] = {
    "key": "bulk",
    "name": "Bulk",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "stores": [{"key": "berlin", "name": "Berlin"}],
    "rules": [
        {
            "key": "base",
            "name": "1 per euro",
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        },
        {
            "key": "welcome",
            "name": "First purchase",
            "when": {"first_purchase": True},
            "effect": {"type": "bonus", "points": 50},
        },
        {
            "key": "coffee",
            "name": "Coffee, 5 a day at most",
            "when": {"include": {"categories": ["coffee"]}},
            "effect": {"type": "fixed", "points": 3},
            "caps": {"per_member": {"day": 5}},
        },
    ],
}


def purchase(external_id: str, *prices: str, category: str = "coffee") -> PurchaseIn:
    lines = [LineIn(category=category, unit_price=price) for price in prices]
    return PurchaseIn(external_id=external_id, currency="EUR", store="berlin", lines=lines)


def setup(new_uow: NewUow, tenant: Tenant) -> tuple[str, list[str]]:
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id
    ids = []
    for name in ("ana", "bo"):
        with new_uow() as uow:
            ids.append(
                enrol_member(
                    uow,
                    programme_id=programme_id,
                    identifiers_={IdentifierKind.EMAIL: f"{name}@example.org"},
                ).id
            )
    return programme_id, ids


def summary(results: list[ActivityResult]) -> list[tuple[str, int, list[str], bool]]:
    return [(r.external_id, r.points, [a.rule_key for a in r.awards], r.replayed) for r in results]


def test_a_batch_earns_exactly_what_the_same_purchases_earn_one_by_one(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    items: list[tuple[str | None, PurchaseIn]] = [
        ("email:ana@example.org", purchase("p-1", "2.50")),
        ("email:ANA@example.org", purchase("p-2", "4.00", "3.10")),  # the same member
        ("email:bo@example.org", purchase("p-3", "12.00", category="cake")),
        (None, purchase("p-4", "9.99")),  # a guest
        ("email:ana@example.org", purchase("p-5", "1.00")),  # the coffee cap bites
        ("email:ana@example.org", purchase("p-1", "2.50")),  # sent twice: a replay
    ]
    one_by_one = []
    programme_id, _ = setup(new_uow, tenant)
    for member, item in items:
        with new_uow() as uow:
            one_by_one.append(
                record_purchase(uow, programme_id=programme_id, purchase=item, member=member)
            )

    # the same purchases, in a second programme of the tenant, as one batch
    with new_uow() as uow:
        other = apply_programme(
            uow, tenant_id=tenant.id, document={**DOCUMENT, "key": "bulk-2"}
        ).programme_id
    for name in ("ana", "bo"):
        with new_uow() as uow:
            enrol_member(
                uow, programme_id=other, identifiers_={IdentifierKind.EMAIL: f"{name}@example.org"}
            )
    with new_uow() as uow:
        batch = record_purchases(uow, programme_id=other, items=items)

    assert summary(batch) == summary(one_by_one)
    assert [r.points for r in batch] == [55, 9, 62, 0, 1, 55]  # welcome once, coffee capped
    assert batch[5].activity_id == batch[0].activity_id
    with new_uow() as uow:
        assert verify_ledger(uow, tenant_id=tenant.id).ok
        recorded = list_events(uow, tenant_id=tenant.id, type="activity.recorded")
    assert len(recorded) == 10  # five purchases each way, the replays announce nothing


def test_a_batch_replays_purchases_recorded_before(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    programme_id, (ana, _) = setup(new_uow, tenant)
    with new_uow() as uow:
        first = record_purchase(
            uow, programme_id=programme_id, purchase=purchase("p-1", "8.00"), member=ana
        )
    with new_uow() as uow:
        results = record_purchases(
            uow,
            programme_id=programme_id,
            items=[(ana, purchase("p-1", "8.00")), (ana, purchase("p-2", "8.00"))],
        )
    assert results[0].replayed
    assert results[0].activity_id == first.activity_id
    assert (results[1].replayed, results[1].points) == (False, 10)  # 8 + the 2 coffee left


@pytest.mark.parametrize(
    ("reference", "code"),
    [
        ("email:nobody@example.org", ErrorCode.MEMBER_NOT_FOUND),
        ("email:not-an-address", ErrorCode.INVALID_IDENTIFIER),
        ("mbr_01J0000000000000000000000", ErrorCode.MEMBER_NOT_FOUND),
        ("blocked", ErrorCode.MEMBER_BLOCKED),
    ],
)
def test_a_rejected_purchase_rolls_the_whole_batch_back_and_names_the_item(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant, reference: str, code: ErrorCode
) -> None:
    programme_id, (ana, bo) = setup(new_uow, tenant)
    if reference == "blocked":
        with new_uow() as uow:
            set_blocked(uow, tenant_id=tenant.id, member_id=bo, blocked=True)
        reference = bo
    items: list[tuple[str | None, PurchaseIn]] = [
        (ana, purchase("p-1", "5.00")),
        (reference, purchase("p-2", "5.00")),
    ]
    with pytest.raises(TreuError) as caught, new_uow() as uow:
        record_purchases(uow, programme_id=programme_id, items=items)
    assert caught.value.code is code
    assert "record_purchases: item 1, external id 'p-2'" in (caught.value.__notes__ or [])
    with new_uow() as uow:  # nothing was written: p-1 is new
        again = record_purchases(uow, programme_id=programme_id, items=items[:1])
    assert not again[0].replayed


def test_last_activity_is_stored_as_the_instant_whatever_the_offset(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    programme_id, (ana, _) = setup(new_uow, tenant)
    at = clock.now().astimezone(timezone(timedelta(hours=-3))) - timedelta(hours=1)
    item = purchase("p-1", "5.00").model_copy(update={"occurred_at": at})
    with new_uow() as uow:
        record_purchase(uow, programme_id=programme_id, purchase=item, member=ana)
    with new_uow() as uow:
        member = get_member(uow, ana, tenant_id=tenant.id)
    assert member.first_purchase_at == at
    assert member.last_activity_at == at
    assert isinstance(member.last_activity_at, datetime)
