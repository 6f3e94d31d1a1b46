"""The webhook dispatcher: outbox → deliveries → signed HTTP POSTs, one pass at a time.

``treu webhooks dispatch`` runs one pass, ``treu worker`` runs passes in a loop. A pass

1. fans out every undispatched outbox event into deliveries (one transaction per batch);
2. sends the deliveries that are due, each as: claim (a transaction), POST (no transaction
   open: a slow receiver never holds a database lock), record the outcome (a transaction).

Receivers must be public addresses: a tenant could otherwise register
``http://169.254.169.254/…`` or ``http://localhost:5432`` and make Treu probe its own network
(server-side request forgery). Every address the host name resolves to, and the address actually
connected to (DNS can change in between), must be global; ``TREU_WEBHOOK_ALLOW_PRIVATE=true``
lifts this for a receiver on the same machine or network (development, tests, an internal CRM).

Every step is safe to interrupt: a process killed after step 1 leaves pending deliveries, one
killed during a POST leaves a claimed delivery whose lease runs out, and the next pass (of this
process or another) sends them. Receivers may therefore see an event twice and dedupe by its id.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from treu import __version__
from treu.config import get_settings
from treu.storage.uow import UowFactory
from treu.webhooks.model import SIGNATURE_HEADER, DeliveryStatus, Outcome, sign
from treu.webhooks.service import Claimed, claim_due_delivery, fan_out, record_attempt

log = logging.getLogger("treu.webhooks")

TIMEOUT_SECONDS = 10.0
# Longer than any one POST can take, so a live sender is never overtaken by a second one.
LEASE = timedelta(seconds=60)
FAN_OUT_BATCH = 500
MAX_SENDS = 100

Transport = Callable[[str, bytes, Mapping[str, str], float], Outcome]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a success: following it would re-send a signed request to
    a URL the tenant never registered."""

    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


class BlockedAddressError(OSError):
    """The receiver's address is not a public one (loopback, private, link-local, ...)."""


def check_public(address: str) -> None:
    """Raise unless ``address`` (an IP literal) is a global unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    if not ip.is_global or ip.is_multicast:
        raise BlockedAddressError(
            f"{ip} is not a public address (set TREU_WEBHOOK_ALLOW_PRIVATE=true to allow it)"
        )


def _public_connection(address: tuple[str, int], timeout: Any, *args: Any) -> socket.socket:
    """``socket.create_connection`` that refuses non-public receivers: every resolved address
    is checked before connecting, and the peer actually connected to after (DNS rebinding)."""
    host, port = address
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        check_public(str(sockaddr[0]))
    sock = socket.create_connection(address, timeout, *args)
    try:
        check_public(str(sock.getpeername()[0]))
    except BlockedAddressError:
        sock.close()
        raise
    return sock


class _PublicHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _public_connection


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _public_connection


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_PublicHTTPSConnection, req)


_opener = urllib.request.build_opener(_NoRedirects)
# Proxies from the environment are left out: a proxy would connect on our behalf, unchecked.
_public_opener = urllib.request.OpenerDirector()
for _handler in (
    _NoRedirects(),
    _PublicHTTPHandler(),
    _PublicHTTPSHandler(),
    urllib.request.HTTPDefaultErrorHandler(),
    urllib.request.HTTPErrorProcessor(),
):
    _public_opener.add_handler(_handler)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Outcome:
    """POST ``body`` to ``url`` with the standard library (no extra dependency for one verb),
    to any address."""
    return _send(_opener, url, body, headers, timeout)


def post_public(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Outcome:
    """:func:`post`, but only to public addresses (see the module docstring)."""
    return _send(_public_opener, url, body, headers, timeout)


def default_transport() -> Transport:
    return post if get_settings().webhook_allow_private else post_public


def _send(
    opener: urllib.request.OpenerDirector,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> Outcome:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 - the URL was checked to be http(s) when registered
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (OSError, ValueError, http.client.HTTPException) as exc:
        # refused, reset, DNS, TLS, time-out, a bad URL, an answer that is not HTTP
        error = f"{type(exc).__name__}: {exc}"
    elapsed = int((time.monotonic() - started) * 1000)
    return Outcome(status, error if status is None else None, elapsed)


@dataclass(frozen=True)
class PassResult:
    events: int = 0  # outbox events fanned out
    created: int = 0  # deliveries created
    sent: int = 0  # attempts made
    succeeded: int = 0
    failed: int = 0  # deliveries that gave up in this pass (after their last attempt)


def dispatch(
    new_uow: UowFactory,
    *,
    transport: Transport | None = None,
    max_sends: int = MAX_SENDS,
    tenant_id: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> PassResult:
    """One pass: fan out everything new, then send up to ``max_sends`` due deliveries
    (with ``transport``; by default :func:`post_public`, or :func:`post` where private
    receivers are allowed)."""
    send = transport or default_transport()
    events = created = 0
    while True:
        with new_uow() as uow:
            batch = fan_out(uow, limit=FAN_OUT_BATCH, tenant_id=tenant_id)
        events += batch.events
        created += batch.deliveries
        if batch.events < FAN_OUT_BATCH:
            break
    sent = succeeded = failed = 0
    for _ in range(max_sends):
        with new_uow() as uow:
            claimed = claim_due_delivery(uow, lease=LEASE, tenant_id=tenant_id)
        if claimed is None:
            break
        outcome = send(claimed.url, claimed.body, _headers(claimed), timeout)
        with new_uow() as uow:
            status = record_attempt(uow, claimed=claimed, outcome=outcome)
        sent += 1
        succeeded += outcome.succeeded
        failed += status is DeliveryStatus.FAILED
        if not outcome.succeeded:
            log.info(
                "webhook delivery %s attempt %d: %s",
                claimed.delivery_id,
                claimed.attempt,
                outcome.status_code or outcome.error,
            )
    return PassResult(events, created, sent, succeeded, failed)


def _headers(claimed: Claimed) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"Treu-Webhooks/{__version__}",
        "Treu-Event-Id": claimed.event_id,
        "Treu-Event-Type": claimed.event_type,
        "Treu-Delivery-Id": claimed.delivery_id,
        SIGNATURE_HEADER: sign(claimed.secret, int(claimed.at.timestamp()), claimed.body),
    }


def run_worker(
    new_uow: UowFactory,
    *,
    interval: float = 5.0,
    passes: int | None = None,
    tenant_id: str | None = None,
    on_pass: Callable[[PassResult], None] | None = None,
) -> None:
    """Dispatch, sleep ``interval`` seconds, repeat (``passes`` times, or until interrupted).
    A pass that had a full batch to send starts the next one at once; a pass that failed is
    logged and tried again after the pause."""
    done = 0
    while passes is None or done < passes:
        try:
            result = dispatch(new_uow, tenant_id=tenant_id)
        except Exception:  # the database away for a moment must not end the worker
            log.exception("webhook dispatch pass failed; trying again in %s s", interval)
            result = PassResult()
        done += 1
        if on_pass is not None:
            on_pass(result)
        if result.sent < MAX_SENDS and (passes is None or done < passes):
            time.sleep(interval)
