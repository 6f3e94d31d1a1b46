"""A till that was offline sends its purchases late, with their own times.

The Kiezcafé changed its rules on 11 March (1 point per euro before, 2 after) and accepts
purchases up to 72 hours late (``offline_window_hours``). Its till lost the connection on the
evening of 10 March and came back on 12 March.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from treu.activities.model import PurchaseIn
from treu.activities.service import ActivityResult, record_purchase
from treu.activities.tables import activities
from treu.clock import FixedClock
from treu.errors import ErrorCode, Rejected
from treu.ledger.service import get_balances
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import Tenant, apply_programme
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
CLOSED = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)  # the till goes offline
NEW_RULES = datetime(2026, 3, 11, 6, 0, tzinfo=UTC)
BACK = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)  # the till is online again


def document(key: str, points_per_euro: int, window: int | None = 72) -> dict[str, Any]:
    return {
        "key": key,
        "name": "Kiezcafé",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "offline_window_hours": window,
        "stores": [{"key": "theke", "name": "Theke"}],
        "rules": [
            {
                "key": "punkte",
                "name": f"{points_per_euro} Punkte je Euro",
                "effect": {"type": "per_amount", "points": points_per_euro, "per": "1.00"},
            }
        ],
    }


class Till:
    def __init__(self, new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> None:
        self.new_uow, self.clock = new_uow, clock
        self.key = f"kiez-{uuid.uuid4().hex[:8]}"
        clock.set(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
        with new_uow() as uow:
            self.programme_id = apply_programme(
                uow, tenant_id=tenant.id, document=document(self.key, 1)
            ).programme_id
            self.mia = enrol_member(
                uow,
                programme_id=self.programme_id,
                identifiers_={IdentifierKind.CARD: "KIEZ-0001"},
            ).id
        clock.set(NEW_RULES)
        with new_uow() as uow:
            apply_programme(uow, tenant_id=tenant.id, document=document(self.key, 2))

    def send(self, receipt: str, total: str, at: datetime) -> ActivityResult:
        purchase = PurchaseIn(
            external_id=receipt, store="theke", currency="EUR", total=total, occurred_at=at
        )
        with self.new_uow() as uow:
            return record_purchase(
                uow, programme_id=self.programme_id, purchase=purchase, member="card:KIEZ-0001"
            )


@pytest.fixture
def till(new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> Till:
    return Till(new_uow, clock, tenant)


def test_late_purchases_earn_under_the_rules_of_their_own_time(
    till: Till, new_uow: NewUow, tenant: Tenant
) -> None:
    till.clock.set(BACK)

    before = till.send("bon-0815", "10.00", CLOSED + timedelta(hours=1))  # 38 hours late
    after = till.send("bon-0816", "10.00", NEW_RULES + timedelta(hours=2))

    assert (before.points, after.points) == (10, 20)
    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=till.mia).available == 30
        report = verify_ledger(uow, tenant_id=tenant.id)
    assert report.ok, report.problems


def test_a_purchase_older_than_the_window_is_refused_and_nothing_is_written(
    till: Till, new_uow: NewUow, tenant: Tenant
) -> None:
    till.clock.set(BACK + timedelta(days=2))  # 4 days after the purchase

    with pytest.raises(Rejected) as refused:
        till.send("bon-0817", "10.00", CLOSED + timedelta(hours=2))

    assert refused.value.code is ErrorCode.ACTIVITY_TOO_OLD
    assert "72 hours" in refused.value.message
    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=till.mia).available == 0
        rows = uow.conn.execute(
            activities.select().where(activities.c.programme_id == till.programme_id)
        ).all()
    assert rows == []


def test_a_purchase_sent_again_after_the_window_is_a_replay_not_a_refusal(till: Till) -> None:
    till.clock.set(BACK)
    first = till.send("bon-0818", "7.50", CLOSED + timedelta(hours=3))
    # the till did not see the answer and sends its queue again, days later
    till.clock.set(BACK + timedelta(days=5))

    again = till.send("bon-0818", "7.50", CLOSED + timedelta(hours=3))

    assert again.replayed
    assert (again.activity_id, again.points) == (first.activity_id, first.points)


def test_without_a_window_any_past_purchase_is_accepted(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    with new_uow() as uow:
        programme_id = apply_programme(
            uow, tenant_id=tenant.id, document=document(f"k-{uuid.uuid4().hex[:8]}", 1, None)
        ).programme_id
    clock.set(datetime(2026, 9, 1, tzinfo=UTC))
    purchase = PurchaseIn(
        external_id="alt-1",
        currency="EUR",
        total="5.00",
        occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
    )

    with new_uow() as uow:
        result = record_purchase(uow, programme_id=programme_id, purchase=purchase)

    assert not result.replayed
