"""The production shape under load: PostgreSQL, four API processes, two ``treu worker``.

Two "hosts", each ``treu serve --workers 2`` on a port of its own (four stateless API processes),
and two ``treu worker`` processes, all real subprocesses on a fresh PostgreSQL schema. Threads
drive them at once with

* purchases for many members, a third of them for one hot member, from several clients;
* retries of a purchase with the same ``Idempotency-Key`` sent to the *other* host, both while
  the first attempt runs and after it answered;
* redemptions on the hot member's changing balance, and twelve redemptions racing for one
  balance that pays for three;
* sign-ups, whose welcome e-mails (automation → message → SMTP) and every event (webhooks to a
  receiver in this test) the two workers share out.

Then: no 5xx (serialization failures and deadlocks were retried), every purchase recorded once,
every replay the first response, no balance below zero, ``ledger verify`` clean, every
webhook event delivered exactly once and every welcome e-mail sent exactly once — the two
workers never did the same work twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from sqlalchemy import Engine, func, select

from db_support import drop_pg_schema, pg_schema_engine
from messaging_support import SmtpServer, free_port, smtp_server  # noqa: F401 - a fixture
from treu.activities.tables import activities
from treu.auth.model import Scope
from treu.auth.service import create_api_key
from treu.outbox.tables import outbox
from treu.programmes.service import apply_programme, create_tenant
from treu.storage.migrate import upgrade
from treu.storage.uow import UnitOfWork
from treu.webhooks.model import EVENT_TYPES, DeliveryStatus
from treu.webhooks.service import create_webhook_endpoint
from treu.webhooks.tables import webhook_deliveries

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[2] / "examples" / "kiezcafe.yaml"
PROGRAMME = "kiezcafe"
MEMBERS = 24
CLIENTS = 12
OPERATIONS = 12  # per client
RACERS = 12
STARTUP_S = 600  # a guard: eight processes import Treu at once (seconds each, minutes when busy)
DRAIN_S = 60


# --- the processes --------------------------------------------------------------------------


@dataclass
class Processes:
    hosts: list[str]  # base URLs, one per `treu serve --workers 2`
    running: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(self, args: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "treu.cli.main", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.running.append((process, log))

    def check_alive(self) -> None:
        for process, log in self.running:
            if process.poll() is not None:
                pytest.fail(f"{log.name} ended ({process.returncode}):\n{log.read_text()}")

    def stop(self) -> None:
        for process, _ in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # uvicorn and `treu worker` end cleanly
        for process, _ in self.running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for _, log in self.running)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: the event ids it was sent, duplicates included."""

    url: str = ""
    ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.ids.append(json.loads(body)["id"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class Shop:
    engine: Engine
    url: str  # TREU_DATABASE_URL of the processes
    tenant_id: str
    admin: str
    till: str


@pytest.fixture
def shop(receiver: Receiver) -> Iterator[Shop]:
    engine, schema = pg_schema_engine()
    try:
        upgrade(engine)
        with UnitOfWork(engine) as uow:
            tenant = create_tenant(uow, key="kiez")
        with UnitOfWork(engine) as uow:
            apply_programme(uow, tenant_id=tenant.id, document=yaml.safe_load(EXAMPLE.read_text()))
        with UnitOfWork(engine) as uow:
            create_webhook_endpoint(uow, tenant_id=tenant.id, url=receiver.url, event_types=["*"])
        keys = {}
        for scope, store in ((Scope.ADMIN, None), (Scope.POS, "kastanienallee")):
            with UnitOfWork(engine) as uow:
                keys[scope] = create_api_key(
                    uow, tenant_id=tenant.id, scope=scope, name=f"{scope}", store=store
                ).token
        url = engine.url.render_as_string(hide_password=False)
        yield Shop(engine, url, tenant.id, keys[Scope.ADMIN], keys[Scope.POS])
    finally:
        engine.dispose()
        drop_pg_schema(schema)


@pytest.fixture
def processes(
    shop: Shop,
    tmp_path: Path,
    smtp_server: SmtpServer,  # noqa: F811 - the fixture (TREU_SMTP_* in the environment)
) -> Iterator[Processes]:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {
        **os.environ,
        "TREU_DATABASE_URL": shop.url,
        "TREU_LOG_FORMAT": "json",
        "TREU_WEBHOOK_ALLOW_PRIVATE": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    ports = [free_port(), free_port()]
    found = Processes([f"http://127.0.0.1:{port}" for port in ports])
    try:
        for n, port in enumerate(ports):
            args = ["serve", "--port", str(port), "--workers", "2"]
            found.start(args, env, tmp_path / f"serve-{n}.log")
        for n in range(2):
            found.start(["worker", "--interval", "0.2"], env, tmp_path / f"worker-{n}.log")
        deadline = time.monotonic() + STARTUP_S
        for host in found.hosts:
            while not _ready(host):
                found.check_alive()
                if time.monotonic() > deadline:
                    pytest.fail(f"{host} did not get ready\n{found.logs()}")
                time.sleep(0.2)
        yield found
    finally:
        found.stop()


def _ready(host: str) -> bool:
    try:
        return httpx2.get(f"{host}/readyz", timeout=5).status_code == 200
    except httpx2.TransportError:
        return False


# --- the clients ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    op: str  # purchase, replay, redeem, enrol
    key: str  # the Idempotency-Key (or the e-mail of a sign-up)
    status: int
    body: Any
    replayed: bool


class Clients:
    """Keep-alive connections to both hosts per thread, and every answer they got."""

    def __init__(self, shop: Shop, hosts: list[str]) -> None:
        self.shop = shop
        self.hosts = hosts
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._opened: list[httpx2.Client] = []

    def _client(self, host: int) -> httpx2.Client:
        clients: list[httpx2.Client] | None = getattr(self._local, "clients", None)
        if clients is None:
            clients = [httpx2.Client(base_url=h, timeout=60) for h in self.hosts]
            self._local.clients = clients
            with self._lock:
                self._opened += clients
        return clients[host]

    def post(self, op: str, host: int, path: str, body: Any, key: str, who: str) -> Answer:
        headers = {"Authorization": f"Bearer {who}"}
        if op != "enrol":
            headers["Idempotency-Key"] = key
        r = self._client(host).post(path, json=body, headers=headers)
        answer = Answer(
            op,
            key,
            r.status_code,
            r.json() if r.content else None,
            r.headers.get("idempotent-replayed") == "true",
        )
        with self._lock:
            self.answers.append(answer)
        return answer

    def purchase(self, host: int, receipt: str, member: str, euros: int, op: str) -> Answer:
        body = {
            "external_id": receipt,
            "currency": "EUR",
            "member": member,
            "lines": [
                {"sku": "KAFFEE", "category": "Kaffee", "quantity": 1, "unit_price": "3.20"},
                {"sku": "KUCHEN", "category": "Kuchen", "quantity": 1, "unit_price": f"{euros}.00"},
            ],
        }
        path = f"/v1/programmes/{PROGRAMME}/purchases"
        return self.post(op, host, path, body, receipt, self.shop.till)

    def redeem(self, host: int, member: str, key: str) -> Answer:
        path = f"/v1/members/{member}/redemptions"
        return self.post("redeem", host, path, {"reward": "gratis-kaffee"}, key, self.shop.till)

    def close(self) -> None:
        """Close every connection opened, in whichever thread."""
        with self._lock:
            opened, self._opened = self._opened, []
        for client in opened:
            client.close()


@pytest.fixture
def clients(shop: Shop, processes: Processes) -> Iterator[Clients]:
    found = Clients(shop, processes.hosts)
    try:
        yield found
    finally:
        found.close()


def test_four_api_processes_and_two_workers_do_everything_exactly_once(
    shop: Shop,
    processes: Processes,
    clients: Clients,
    receiver: Receiver,
    smtp_server: SmtpServer,  # noqa: F811 - the fixture
) -> None:
    # The admin key signs members up (each sign-up: a welcome e-mail and events for the workers).
    emails = [f"m{n}-{uuid.uuid4().hex[:6]}@example.de" for n in range(MEMBERS)]

    def enrol(n: int) -> str:
        path = f"/v1/programmes/{PROGRAMME}/members"
        body = {"identifiers": {"email": emails[n]}}
        answer = clients.post("enrol", n % 2, path, body, emails[n], shop.admin)
        assert answer.status == 201, answer
        member_id: str = answer.body["id"]
        return member_id

    with ThreadPoolExecutor(8) as pool:
        members = list(pool.map(enrol, range(MEMBERS)))
    hot, racer, others = members[0], members[1], members[2:]

    # Load: every client buys for random members and the hot one, retries some purchases on
    # the other host (during the first attempt and after it), and redeems on the hot member.
    def client(c: int) -> None:
        rng = random.Random(c)
        for n in range(OPERATIONS):
            host = (c + n) % 2
            receipt = f"bon-{c}-{n}"
            member = hot if n % 3 == 0 else rng.choice(others)
            euros = rng.randrange(1, 40)
            if n % 4 == 1:  # the till timed out and retries at the other host at once
                with ThreadPoolExecutor(2) as both:
                    for h in (host, 1 - host):
                        both.submit(clients.purchase, h, receipt, member, euros, "purchase")
                clients.purchase(1 - host, receipt, member, euros, "replay")
            elif n % 5 == 2:
                clients.redeem(host, hot, f"redeem-{c}-{n}")
            else:
                clients.purchase(host, receipt, member, euros, "purchase")
                if n % 4 == 3:  # a retry after the answer was lost
                    clients.purchase(1 - host, receipt, member, euros, "replay")

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))

    # The racer has 100 points; twelve redemptions of a 30-point coffee race on four processes.
    paid = clients.purchase(0, "bon-racer", racer, 97, "purchase")  # 3.20 + 97.00: 100 points
    assert paid.status == 201, paid

    def race(n: int) -> Answer:
        return clients.redeem(n % 2, racer, f"race-{n}")

    with ThreadPoolExecutor(RACERS) as pool:
        raced = list(pool.map(race, range(RACERS)))
    processes.check_alive()

    # No server error: serialization failures and deadlocks were retried inside.
    failed = [a for a in clients.answers if a.status >= 500]
    assert not failed, f"{failed[:5]}\n{processes.logs()}"

    # Every answer to a purchase key: the first answer, replayed, or "still running" (409).
    by_key: dict[str, list[Answer]] = {}
    for a in clients.answers:
        if a.op in ("purchase", "replay"):
            by_key.setdefault(a.key, []).append(a)
    for key, answers in by_key.items():
        firsts = [a for a in answers if a.status == 201 and not a.replayed]
        assert len(firsts) == 1, (key, answers)
        for a in answers:
            if a.replayed:
                assert (a.status, a.body) == (201, firsts[0].body), (key, a)
            elif a is not firsts[0]:
                assert a.status == 409, (key, a)
                assert a.body["code"] == "idempotency_key_in_use"
        replays = [a for a in answers if a.op == "replay"]
        assert all(a.replayed for a in replays), (key, replays)

    # Every purchase recorded exactly once.
    with UnitOfWork(shop.engine) as uow:
        recorded = Counter(
            uow.conn.execute(
                select(activities.c.external_id).where(activities.c.tenant_id == shop.tenant_id)
            ).scalars()
        )
    assert set(recorded) == set(by_key)
    assert set(recorded.values()) == {1}

    # The race: three coffees for 100 points, the other nine refused, ten points left.
    statuses = Counter(a.status for a in raced)
    assert statuses == {201: 3, 422: 9}, raced
    assert {a.body["code"] for a in raced if a.status == 422} == {"insufficient_points"}
    admin = httpx2.Client(
        base_url=processes.hosts[1], headers={"Authorization": f"Bearer {shop.admin}"}, timeout=60
    )
    with admin:
        assert admin.get(f"/v1/members/{racer}/balances").json()["available"] == 10
        for member in members:
            balances = admin.get(f"/v1/members/{member}/balances").json()
            assert balances["available"] >= 0, (member, balances)
        verified = admin.post("/v1/ledger/verify")
        assert verified.status_code == 200
        assert verified.json()["ok"] is True, verified.json()
    redeemed = [a for a in clients.answers if a.op == "redeem" and a.status == 201]
    assert redeemed  # the hot member's balance paid for some

    # The workers: every event delivered once, every welcome e-mail sent once.
    expected = _drain(shop, processes, receiver, smtp_server, emails)
    time.sleep(1.0)  # a duplicate would come from a second claim: give it time to show
    sent = Counter(receiver.ids)
    assert set(sent) == expected
    assert set(sent.values()) == {1}, [i for i, n in sent.items() if n > 1]
    welcomes = Counter(m.to for m in smtp_server.received if m.subject.startswith("Willkommen"))
    assert sorted(welcomes) == sorted(emails)
    assert set(welcomes.values()) == {1}

    processes.stop()
    logs = processes.logs()
    assert "Traceback" not in logs, logs
    assert "step failed" not in logs, logs


def _drain(
    shop: Shop,
    processes: Processes,
    receiver: Receiver,
    smtp_server: SmtpServer,  # noqa: F811 - the fixture
    emails: list[str],
) -> set[str]:
    """Wait for the workers to be done; the ids of the events the receiver must have got."""
    deadline = time.monotonic() + DRAIN_S
    out, d = outbox.c, webhook_deliveries.c
    while True:
        with UnitOfWork(shop.engine) as uow:
            mine = out.tenant_id == shop.tenant_id
            waiting = uow.conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(mine, (out.dispatched_at.is_(None)) | (out.automated_at.is_(None)))
            ).scalar_one()
            pending = uow.conn.execute(
                select(func.count())
                .select_from(webhook_deliveries)
                .where(d.tenant_id == shop.tenant_id, d.status != DeliveryStatus.SUCCEEDED.value)
            ).scalar_one()
            events = set(
                uow.conn.execute(
                    select(out.id).where(mine, out.type.in_(sorted(EVENT_TYPES)))
                ).scalars()
            )
        welcomes = {m.to for m in smtp_server.received if m.subject.startswith("Willkommen")}
        with receiver.lock:
            got = set(receiver.ids)
        if not waiting and not pending and got >= events and welcomes >= set(emails):
            return events
        processes.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(
                f"the workers did not finish: {waiting} events, {pending} deliveries waiting,"
                f" {len(events - got)} events not received\n{processes.logs()}"
            )
        time.sleep(0.2)
