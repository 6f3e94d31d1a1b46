"""Shop deliveries at the same time: Shopify retries a delivery it thinks timed out while the
first attempt is still running, and sends orders/paid for several orders of one customer at once.
Whatever the interleaving, every purchase is recorded once and every delivery has one receipt."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from treu.activities.tables import activities
from treu.ledger.service import get_balances
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import Tenant, apply_programme
from treu.shops.model import Delivery, Platform, Receipt, sign
from treu.shops.receiving import receive_webhook
from treu.shops.service import create_connection
from treu.shops.tables import shop_webhook_receipts
from treu.storage.uow import UnitOfWork, retrying

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shops"
SECRET = "concurrency-secret"


def setup(engine: Engine, tenant: Tenant) -> tuple[str, str]:
    document = {
        "key": f"shop-{uuid.uuid4().hex[:8]}",
        "name": "Kiezcafé online",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "rules": [
            {"key": "p", "name": "1/€", "effect": {"type": "per_amount", "points": 1, "per": "1"}}
        ],
    }
    with UnitOfWork(engine) as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document).programme_id
    with UnitOfWork(engine) as uow:
        member_id = enrol_member(
            uow,
            programme_id=programme_id,
            identifiers_={IdentifierKind.EMAIL: "mia.schneider@example.org"},
        ).id
    with UnitOfWork(engine) as uow:
        connection = create_connection(
            uow,
            tenant_id=tenant.id,
            programme_id=programme_id,
            platform=Platform.SHOPIFY,
            shop="kiezcafe.myshopify.com",
            secret=SECRET,
        ).connection
    return connection.id, member_id


def paid(order_id: int, webhook_id: str) -> Delivery:
    order = json.loads((FIXTURES / "shopify_orders_paid.json").read_text(encoding="utf-8"))
    order["id"] = order_id
    body = json.dumps(order).encode()
    return Delivery(Platform.SHOPIFY, body, sign(SECRET, body), "orders/paid", webhook_id)


def all_at_once(engine: Engine, connection_id: str, deliveries: list[Delivery]) -> list[Receipt]:
    barrier = threading.Barrier(len(deliveries))
    answers: list[Receipt] = []
    errors: list[BaseException] = []

    def send(delivery: Delivery) -> None:
        def attempt() -> Receipt:
            with UnitOfWork(engine) as uow:
                return receive_webhook(uow, connection_id=connection_id, delivery=delivery)

        barrier.wait()
        try:
            answers.append(retrying(attempt, attempts=20))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(d,)) for d in deliveries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return answers


def count(engine: Engine, query: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_one_delivery_sent_four_times_at_once_is_recorded_once(
    engine: Engine, tenant: Tenant
) -> None:
    connection_id, member_id = setup(engine, tenant)

    answers = all_at_once(engine, connection_id, [paid(1001, "whk-1")] * 4)

    assert sorted(a.replayed for a in answers) == [False, True, True, True]
    assert {a.id for a in answers} == {answers[0].id}
    assert _purchases(engine, tenant) == 1
    assert count(engine, _receipts(connection_id)) == 1
    _check(engine, tenant, member_id, 56)


def test_four_orders_of_one_customer_at_once_are_each_recorded_once(
    engine: Engine, tenant: Tenant
) -> None:
    connection_id, member_id = setup(engine, tenant)
    deliveries = [paid(2000 + i, f"whk-{i}") for i in range(4)]

    answers = all_at_once(engine, connection_id, deliveries + deliveries[:2])

    assert sorted(a.outcome.value for a in answers if not a.replayed) == ["recorded"] * 4
    assert _purchases(engine, tenant) == 4
    assert count(engine, _receipts(connection_id)) == 4
    _check(engine, tenant, member_id, 4 * 56)


def _purchases(engine: Engine, tenant: Tenant) -> int:
    return count(
        engine,
        select(func.count()).where(
            activities.c.tenant_id == tenant.id, activities.c.type == "purchase"
        ),
    )


def _receipts(connection_id: str) -> Any:
    return select(func.count()).where(shop_webhook_receipts.c.connection_id == connection_id)


def _check(engine: Engine, tenant: Tenant, member_id: str, points: int) -> None:
    with UnitOfWork(engine) as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=member_id).available == points
        report = verify_ledger(uow, tenant_id=tenant.id)
    assert report.ok, report.problems
