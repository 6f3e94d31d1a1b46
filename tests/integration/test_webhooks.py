"""Webhooks end to end: outbox → deliveries → signed POSTs to a real HTTP server on 127.0.0.1.

The receiver is the standard library's HTTP server in a thread; the signature is checked with an
implementation written here from the documented recipe, not with Treu's own ``sign``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from treu.clock import FixedClock
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.members.service import update_profile
from treu.outbox.tables import outbox
from treu.programmes.service import Tenant, apply_programme
from treu.storage.uow import UnitOfWork
from treu.webhooks.dispatcher import (
    LEASE,
    BlockedAddressError,
    check_public,
    dispatch,
    run_worker,
)
from treu.webhooks.model import MAX_ATTEMPTS, DeliveryStatus, retry_delay
from treu.webhooks.service import (
    claim_due_delivery,
    create_webhook_endpoint,
    fan_out,
    get_delivery,
    list_deliveries,
    redeliver,
    update_webhook_endpoint,
)

NewUow = Callable[[], UnitOfWork]


# --- a receiver: a real HTTP server on the loopback interface --------------------------------


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    answers: list[int] = field(default_factory=list)  # status codes to answer, then 200
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(Request({k.lower(): v for k, v in self.headers.items()}, body))
            time.sleep(state.delay)
            status = state.answers.pop(0) if state.answers else 200
            state.answered.append(status)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/treu"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


# --- an independent verifier: the recipe of docs/api.md -------------------------------------


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp, received = int(parts["t"]), parts["v1"]
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
    mac.update(str(timestamp).encode("ascii") + b"." + body)
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(mac.hexdigest(), received)


# --- helpers ---------------------------------------------------------------------------------

DOCUMENT: dict[str, Any] = {
    "key": "hooks",
    "name": "Hooks",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "rules": [{"key": "base", "name": "1 per euro", "effect": {"type": "per_amount", "points": 1}}],
}


@dataclass
class Shop:
    tenant_id: str
    programme_id: str
    new_uow: NewUow
    clock: FixedClock

    def enrol(self, email: str) -> str:
        with self.new_uow() as uow:
            return enrol_member(
                uow,
                programme_id=self.programme_id,
                identifiers_={IdentifierKind.EMAIL: email},
                name="Mia",
            ).id

    def endpoint(self, url: str, *events: str) -> tuple[str, str]:
        with self.new_uow() as uow:
            created = create_webhook_endpoint(
                uow, tenant_id=self.tenant_id, url=url, event_types=events or ["*"]
            )
        return created.endpoint.id, created.secret

    def dispatch(self, **kw: Any) -> Any:
        return dispatch(self.new_uow, tenant_id=self.tenant_id, **kw)

    def deliveries(self, endpoint_id: str) -> list[Any]:
        with self.new_uow() as uow:
            return list_deliveries(uow, tenant_id=self.tenant_id, endpoint_id=endpoint_id)


@pytest.fixture
def shop(new_uow: NewUow, tenant: Tenant, clock: FixedClock) -> Shop:
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id
    return Shop(tenant.id, programme_id, new_uow, clock)


# --- the tests -------------------------------------------------------------------------------


def test_a_delivery_is_signed_so_that_an_independent_implementation_verifies_it(
    shop: Shop, receiver: Receiver
) -> None:
    _endpoint_id, secret = shop.endpoint(receiver.url)
    member_id = shop.enrol("mia@example.org")

    result = shop.dispatch()

    assert (result.sent, result.succeeded) == (1, 1)
    [request] = receiver.requests
    now = int(shop.clock.now().timestamp())
    assert verify(secret, request.headers["treu-signature"], request.body, now)
    event = json.loads(request.body)
    assert event["type"] == "member.enrolled" == request.headers["treu-event-type"]
    assert event["id"] == request.headers["treu-event-id"]
    assert event["id"].startswith("evt_")
    assert event["data"]["member_id"] == member_id
    # a tampered body, another secret or an old timestamp do not verify
    assert not verify(secret, request.headers["treu-signature"], request.body + b" ", now)
    assert not verify("whsec_other", request.headers["treu-signature"], request.body, now)
    assert not verify(secret, request.headers["treu-signature"], request.body, now + 301)


def test_the_verification_recipe_in_the_docs_accepts_a_real_delivery(
    shop: Shop, receiver: Receiver
) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    [recipe] = [b for b in re.findall(r"```python\n(.*?)```", docs, re.S) if "def verify" in b]
    namespace: dict[str, Any] = {}
    exec(recipe, namespace)  # the reader's copy-and-paste
    _endpoint_id, secret = shop.endpoint(receiver.url)
    shop.enrol("mia@example.org")
    shop.dispatch()
    [request] = receiver.requests
    header = request.headers["treu-signature"]
    check = namespace["verify_treu_signature"]
    assert check(secret, header, request.body, tolerance=10**10)
    assert not check(secret, header, request.body.replace(b"mbr_", b"mbr_X"), tolerance=10**10)


def test_a_receiver_that_fails_three_times_gets_exactly_one_successful_delivery(
    shop: Shop, receiver: Receiver
) -> None:
    endpoint_id, _ = shop.endpoint(receiver.url)
    receiver.answers = [500, 503, 502]
    shop.enrol("mia@example.org")

    for attempt in range(1, 5):
        assert shop.dispatch().sent == 1
        if attempt < 4:
            # not before the backoff is over
            shop.clock.advance(retry_delay(attempt) - timedelta(seconds=1))
            assert shop.dispatch().sent == 0
            shop.clock.advance(timedelta(seconds=1))
    shop.clock.advance(timedelta(days=3))
    assert shop.dispatch().sent == 0

    assert receiver.answered == [500, 503, 502, 200]
    assert len({r.headers["treu-event-id"] for r in receiver.requests}) == 1
    [delivery] = shop.deliveries(endpoint_id)
    assert delivery.status is DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 4
    with shop.new_uow() as uow:
        log = get_delivery(
            uow, tenant_id=shop.tenant_id, endpoint_id=endpoint_id, delivery_id=delivery.id
        ).log
    assert [(a.status_code, a.succeeded) for a in log] == [
        (500, False),
        (503, False),
        (502, False),
        (200, True),
    ]


def test_the_retry_schedule_doubles_and_then_gives_up() -> None:
    delays = [retry_delay(n) for n in range(1, MAX_ATTEMPTS)]
    assert delays[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert max(delays) == timedelta(hours=12)
    assert timedelta(days=1) < sum(delays, timedelta()) < timedelta(days=3)


def test_a_delivery_that_always_fails_gives_up_and_can_be_sent_again_by_hand(
    shop: Shop, receiver: Receiver
) -> None:
    endpoint_id, _ = shop.endpoint(receiver.url)
    receiver.answers = [500] * MAX_ATTEMPTS
    shop.enrol("mia@example.org")
    for _ in range(MAX_ATTEMPTS):
        assert shop.dispatch().sent == 1
        shop.clock.advance(timedelta(hours=13))
    assert shop.dispatch().sent == 0
    [delivery] = shop.deliveries(endpoint_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, MAX_ATTEMPTS)
    assert delivery.last_status_code == 500

    with shop.new_uow() as uow:
        again = redeliver(
            uow, tenant_id=shop.tenant_id, endpoint_id=endpoint_id, delivery_id=delivery.id
        )
    assert (again.status, again.attempts) == (DeliveryStatus.PENDING, 0)
    assert shop.dispatch().succeeded == 1
    [delivery] = shop.deliveries(endpoint_id)
    assert delivery.status is DeliveryStatus.SUCCEEDED
    assert len({r.headers["treu-event-id"] for r in receiver.requests}) == 1


def test_a_dispatcher_killed_after_creating_deliveries_still_delivers_after_restart(
    shop: Shop, receiver: Receiver
) -> None:
    endpoint_id, _ = shop.endpoint(receiver.url)
    shop.enrol("mia@example.org")
    # the first process fans out and commits, then dies before sending anything
    with shop.new_uow() as uow:
        assert fan_out(uow, tenant_id=shop.tenant_id).deliveries == 1
    assert receiver.requests == []

    result = shop.dispatch()  # the restarted process

    assert (result.events, result.created, result.succeeded) == (0, 0, 1)
    assert len(receiver.requests) == 1
    assert shop.deliveries(endpoint_id)[0].status is DeliveryStatus.SUCCEEDED


def test_a_dispatcher_killed_while_sending_leaves_the_delivery_to_the_next_one(
    shop: Shop, receiver: Receiver
) -> None:
    endpoint_id, _ = shop.endpoint(receiver.url)
    shop.enrol("mia@example.org")
    with shop.new_uow() as uow:
        fan_out(uow, tenant_id=shop.tenant_id)
    with shop.new_uow() as uow:  # claimed ("sending"), then the process died
        assert claim_due_delivery(uow, lease=LEASE, tenant_id=shop.tenant_id) is not None

    assert shop.dispatch().sent == 0  # the lease keeps a second sender off for a while
    shop.clock.advance(LEASE)
    assert shop.dispatch().succeeded == 1

    assert len(receiver.requests) == 1
    [delivery] = shop.deliveries(endpoint_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)


CHILD = """
import os, sys
from datetime import datetime
from treu.clock import FixedClock
from treu.storage.engine import make_engine
from treu.storage.uow import UnitOfWork
from treu.webhooks.dispatcher import dispatch

engine = make_engine(sys.argv[1])
clock = FixedClock(datetime.fromisoformat(sys.argv[2]))

def killed(*_args):  # the process dies in the middle of its POST
    os._exit(9)

dispatch(lambda: UnitOfWork(engine, clock), transport=killed, tenant_id=sys.argv[3])
"""


def test_a_dispatcher_process_killed_mid_send_is_made_good_by_the_next_one(
    shop: Shop, receiver: Receiver, engine: Engine
) -> None:
    endpoint_id, _ = shop.endpoint(receiver.url)
    shop.enrol("mia@example.org")
    url = engine.url.render_as_string(hide_password=False)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, url, shop.clock.now().isoformat(), shop.tenant_id],
        capture_output=True,
        timeout=120,
        check=False,  # the exit status is the point
    )
    assert child.returncode == 9, child.stderr.decode()
    [delivery] = shop.deliveries(endpoint_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert receiver.requests == []

    shop.clock.advance(LEASE)
    assert shop.dispatch().succeeded == 1
    assert len(receiver.requests) == 1


class FailingCommit(UnitOfWork):
    """A unit of work whose commit fails after the events were written (the database gone)."""

    def commit(self) -> None:
        self.flush_events()
        raise ConnectionError("the database went away")


def test_a_rolled_back_change_sends_nothing(shop: Shop, receiver: Receiver) -> None:
    endpoint_id, _ = shop.endpoint(receiver.url)
    member_id = shop.enrol("mia@example.org")
    assert shop.dispatch().sent == 1

    with (
        pytest.raises(ConnectionError),
        FailingCommit(shop.new_uow().engine, shop.clock) as uow,
    ):
        update_profile(uow, tenant_id=shop.tenant_id, member_id=member_id, name="Mia B.")

    assert shop.dispatch().sent == 0
    assert len(receiver.requests) == 1
    with shop.new_uow() as uow:
        types = uow.conn.execute(
            select(outbox.c.type).where(outbox.c.tenant_id == shop.tenant_id)
        ).scalars()
        assert list(types) == ["member.enrolled"]
    assert len(shop.deliveries(endpoint_id)) == 1


def test_an_endpoint_gets_only_the_events_it_wants_from_when_it_was_registered(
    shop: Shop, receiver: Receiver
) -> None:
    before = shop.enrol("before@example.org")
    shop.clock.advance(timedelta(seconds=1))
    updates, _ = shop.endpoint(receiver.url, "member.updated")
    everything, _ = shop.endpoint(receiver.url)
    switched_off, _ = shop.endpoint(receiver.url)
    with shop.new_uow() as uow:
        update_webhook_endpoint(
            uow, tenant_id=shop.tenant_id, endpoint_id=switched_off, enabled=False
        )
    with shop.new_uow() as uow:
        update_profile(uow, tenant_id=shop.tenant_id, member_id=before, name="Before")
    shop.enrol("after@example.org")

    result = shop.dispatch()

    assert result.created == 3
    assert [d.event_type for d in shop.deliveries(updates)] == ["member.updated"]
    assert sorted(d.event_type for d in shop.deliveries(everything)) == [
        "member.enrolled",
        "member.updated",
    ]
    assert shop.deliveries(switched_off) == []
    # fanning out again finds nothing new and creates nothing twice
    assert shop.dispatch().created == 0


def test_redirects_and_timeouts_are_failures_with_the_reason_logged(
    shop: Shop, receiver: Receiver
) -> None:
    endpoint_id, _ = shop.endpoint(receiver.url)
    receiver.answers = [302]
    shop.enrol("mia@example.org")
    shop.dispatch()
    [delivery] = shop.deliveries(endpoint_id)
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.PENDING, 302)

    receiver.delay = 0.5
    shop.clock.advance(retry_delay(1))
    shop.dispatch(timeout=0.1)
    [delivery] = shop.deliveries(endpoint_id)
    assert delivery.last_status_code is None
    assert delivery.last_error is not None
    assert "timed out" in delivery.last_error.lower()


def test_the_worker_runs_passes(shop: Shop, receiver: Receiver) -> None:
    shop.endpoint(receiver.url)
    shop.enrol("mia@example.org")
    results: list[Any] = []
    run_worker(
        shop.new_uow, interval=0.01, passes=2, tenant_id=shop.tenant_id, on_pass=results.append
    )
    assert [r.succeeded for r in results] == [1, 0]


# --- no server-side request forgery ----------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "10.1.2.3",  # private
        "192.168.0.10",
        "172.16.5.4",
        "169.254.169.254",  # link-local: cloud metadata services
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",  # multicast
        "::1",
        "fe80::1%eth0",
        "fd00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
    ],
)
def test_a_receiver_on_a_non_public_address_is_refused(address: str) -> None:
    with pytest.raises(BlockedAddressError, match="not a public address"):
        check_public(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111"])
def test_a_receiver_on_a_public_address_is_allowed(address: str) -> None:
    check_public(address)


def test_by_default_a_webhook_to_the_local_network_is_never_sent(
    shop: Shop, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenant registers http://localhost:… (or a name that resolves to 127.0.0.1): the
    dispatcher refuses to connect, records why, and the local service never sees a request."""
    monkeypatch.setenv("TREU_WEBHOOK_ALLOW_PRIVATE", "false")
    endpoint_id, _ = shop.endpoint(receiver.url.replace("127.0.0.1", "localhost"))
    shop.enrol("mia@example.org")

    result = shop.dispatch()

    assert (result.sent, result.succeeded) == (1, 0)
    assert receiver.requests == []
    [delivery] = shop.deliveries(endpoint_id)
    assert delivery.last_error is not None
    assert "not a public address" in delivery.last_error
