"""The webhook dispatcher: outbox → deliveries → signed HTTP POSTs, one pass at a time.

``treu webhooks dispatch`` runs one pass, ``treu worker`` runs passes in a loop. A pass

1. fans out every undispatched outbox event into deliveries (one transaction per batch);
2. sends the deliveries that are due, each as: claim (a transaction), POST (no transaction
   open: a slow receiver never holds a database lock), record the outcome (a transaction).

Every step is safe to interrupt: a process killed after step 1 leaves pending deliveries, one
killed during a POST leaves a claimed delivery whose lease runs out, and the next pass (of this
process or another) sends them. Receivers may therefore see an event twice and dedupe by its id.
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from treu import __version__
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


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Outcome:
    """POST ``body`` to ``url`` with the standard library (no extra dependency for one verb)."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 - the URL was checked to be http(s) when registered
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        with _opener.open(request, timeout=timeout) as response:
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
    transport: Transport = post,
    max_sends: int = MAX_SENDS,
    tenant_id: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> PassResult:
    """One pass: fan out everything new, then send up to ``max_sends`` due deliveries."""
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
        outcome = transport(claimed.url, claimed.body, _headers(claimed), timeout)
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
