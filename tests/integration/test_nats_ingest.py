"""`treu consume nats`: purchases from a real NATS JetStream server (127.0.0.1:4222), recorded
exactly once even when the consumer is killed mid-stream and started again.

The consumer runs as its own process (the real command) against the test database of the
``engine`` fixture; the test publishes to a stream of its own and reads the result back through
the services.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from treu.activities.tables import activities
from treu.ingest.nats import PurchaseEvent, ReturnEvent, parse_event
from treu.ledger.service import get_balances
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.members.service import set_blocked
from treu.programmes.service import Tenant, apply_programme
from treu.storage.uow import UnitOfWork

NATS_URL = os.environ.get("TREU_TEST_NATS_URL", "nats://127.0.0.1:4222")
TREU = [sys.executable, "-m", "treu.cli.main"]
NewUow = Callable[[], UnitOfWork]

DOCUMENT = {
    "key": "ingest",
    "name": "Ingest",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "stores": [{"key": "web", "name": "Web shop", "channel": "online"}],
    "rules": [
        {"key": "base", "name": "1 per euro", "effect": {"type": "per_amount", "points": 1}},
    ],
}
MEMBERS = 5


@dataclass
class Setup:
    tenant: Tenant
    programme_id: str
    members: list[str]


@pytest.fixture
def setup(new_uow: NewUow, tenant: Tenant) -> Setup:
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id
    members = []
    for i in range(MEMBERS):
        with new_uow() as uow:
            member = enrol_member(
                uow,
                programme_id=programme_id,
                identifiers_={IdentifierKind.EMAIL: f"m{i}@example.org"},
            )
        members.append(member.id)
    return Setup(tenant, programme_id, members)


def purchase(n: int, *, member: str | None = None) -> dict[str, object]:
    return {
        "external_id": f"order-{n}",
        "member": member or f"email:m{n % MEMBERS}@example.org",
        "currency": "EUR",
        "store": "web",
        "occurred_at": "2026-01-01T10:00:00+01:00",
        "lines": [{"sku": f"SKU-{n % 7}", "quantity": 1, "unit_price": f"{1 + n % 9}.50"}],
    }


def points_of(n: int) -> int:
    return 1 + n % 9  # 1 point per whole euro of x.50


@pytest.fixture
def stream() -> Iterator[tuple[str, str]]:
    """A JetStream stream and subject of this test's own; deleted afterwards."""
    nats = pytest.importorskip("nats")  # a dependency of Treu: present
    name = f"TREU_TEST_{uuid.uuid4().hex[:10].upper()}"
    subject = f"treu.test.{name.lower()}.purchases"

    async def create() -> None:
        try:
            nc = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
        except Exception as exc:  # the suite needs the server: fail, never skip
            pytest.fail(f"NATS JetStream is not reachable at {NATS_URL}: {exc}")
        await nc.jetstream().add_stream(name=name, subjects=[subject])
        await nc.close()

    async def delete() -> None:
        nc = await nats.connect(NATS_URL)
        await nc.jetstream().delete_stream(name)
        await nc.close()

    asyncio.run(create())
    yield name, subject
    asyncio.run(delete())


def publish(subject: str, bodies: list[bytes]) -> None:
    import nats

    async def send() -> None:
        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        for body in bodies:
            await js.publish(subject, body)
        await nc.close()

    asyncio.run(send())


def consumer(
    engine: Engine, tenant: Tenant, stream: str, subject: str, *extra: str
) -> subprocess.Popen[str]:
    env = {**os.environ, "TREU_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    args = [
        *TREU,
        "consume",
        "nats",
        "--subject",
        subject,
        "--stream",
        stream,
        "--programme",
        "ingest",
        "--tenant",
        tenant.key,
        "--url",
        NATS_URL,
        "--ack-wait",
        "1",
        *extra,
    ]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def recorded(engine: Engine, programme_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(activities.c.programme_id == programme_id)
            ).scalar_one()
        )


def test_a_consumer_killed_mid_stream_records_every_purchase_exactly_once(
    engine: Engine, new_uow: NewUow, setup: Setup, stream: tuple[str, str]
) -> None:
    name, subject = stream
    total = 800
    publish(subject, [json.dumps(purchase(n)).encode() for n in range(total)])

    # the consumer is killed (no chance to clean up) while it works through the stream
    first = consumer(engine, setup.tenant, name, subject, "--batch", "10")
    deadline = time.monotonic() + 60
    while recorded(engine, setup.programme_id) < 50 and time.monotonic() < deadline:
        if first.poll() is not None:
            pytest.fail(f"the consumer stopped: {first.communicate()[0]}")
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert 0 < recorded(engine, setup.programme_id) < total

    # started again, it goes on where the acknowledgements say, and redelivered work is a replay
    second = consumer(engine, setup.tenant, name, subject, "--batch", "10", "--until-idle", "3")
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output
    assert recorded(engine, setup.programme_id) == total
    with engine.connect() as conn:
        ids = conn.execute(
            select(activities.c.external_id).where(activities.c.programme_id == setup.programme_id)
        ).scalars()
        assert sorted(ids) == sorted(f"order-{n}" for n in range(total))
    with new_uow() as uow:
        for i, member_id in enumerate(setup.members):
            expected = sum(points_of(n) for n in range(total) if n % MEMBERS == i)
            assert (
                get_balances(uow, tenant_id=setup.tenant.id, member_id=member_id).available
                == expected
            )
        assert verify_ledger(uow, tenant_id=setup.tenant.id).ok


def test_bad_messages_are_dropped_and_good_ones_in_the_same_batch_recorded(
    engine: Engine, new_uow: NewUow, setup: Setup, stream: tuple[str, str]
) -> None:
    name, subject = stream
    with new_uow() as uow:
        set_blocked(uow, tenant_id=setup.tenant.id, member_id=setup.members[4], blocked=True)
    bodies = [
        json.dumps(purchase(1)).encode(),
        b"not json {",
        json.dumps({"external_id": "x", "currency": "EUR"}).encode(),  # neither lines nor total
        json.dumps(purchase(2, member="email:nobody@example.org")).encode(),  # no such member
        json.dumps(purchase(4)).encode(),  # member 4 is blocked
        json.dumps(purchase(3)).encode(),
        json.dumps(purchase(1)).encode(),  # the same order again: a replay
        json.dumps(
            {
                "type": "return",
                "external_id": "r-1",
                "purchase_external_id": "order-3",
                "amount": "4.50",
            }
        ).encode(),
    ]
    publish(subject, bodies)
    process = consumer(engine, setup.tenant, name, subject, "--until-idle", "2")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "8 received: 3 recorded, 1 replays, 4 dropped" in output
    with new_uow() as uow:
        # order-1 (2 points) for m1; order-3 (4 points) for m3, fully returned
        assert (
            get_balances(uow, tenant_id=setup.tenant.id, member_id=setup.members[1]).available == 2
        )
        assert (
            get_balances(uow, tenant_id=setup.tenant.id, member_id=setup.members[3]).available == 0
        )
        assert verify_ledger(uow, tenant_id=setup.tenant.id).ok


def test_the_message_format() -> None:
    event = parse_event(json.dumps(purchase(7)).encode())
    assert isinstance(event, PurchaseEvent)
    assert event.member == "email:m2@example.org"
    assert event.lines[0].unit_price == Decimal("8.50")
    assert isinstance(
        parse_event(
            b'{"type": "return", "external_id": "r", "purchase_external_id": "p", "amount": "1.00"}'
        ),
        ReturnEvent,
    )
    with pytest.raises(ValueError, match="not JSON"):
        parse_event(b"\xff")
    with pytest.raises(ValueError, match="type"):
        parse_event(b'{"type": "refund"}')


def test_the_consumer_fails_loudly_without_a_server(
    engine: Engine, setup: Setup, tmp_path: Path
) -> None:
    env = {**os.environ, "TREU_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    result = subprocess.run(
        [
            *TREU,
            "consume",
            "nats",
            "--subject",
            "s",
            "--stream",
            "S",
            "-p",
            "ingest",
            "--tenant",
            setup.tenant.key,
            "--url",
            "nats://127.0.0.1:1",
            "--reconnect-attempts",
            "1",
            "--until-idle",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot reach NATS" in result.stdout
