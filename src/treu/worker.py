"""The worker: everything that happens after a commit, in one loop (``treu worker``).

A pass runs, in this order:

1. **automations** — the outbox events not processed yet fire the programmes' automations
   (:func:`treu.automations.service.process_events`); they queue messages and publish events;
2. **delayed automations** — runs whose delay is over are carried out
   (:func:`treu.automations.service.run_due`);
3. **messages** — queued messages that are due are sent
   (:func:`treu.messaging.dispatcher.dispatch`);
4. **webhooks** — new events (those of steps 1–3 included) become deliveries, due deliveries
   are sent (:func:`treu.webhooks.dispatcher.dispatch`).

Each step is safe to interrupt and to run in several processes at once (claims, leases,
unique keys); one that fails is logged and the others still run. ``treu serve`` on SQLite
runs the same loop in a background thread (:class:`BackgroundWorker`, ``TREU_INPROCESS_WORKER``),
so the embedded default needs no second process.

The webhooks package knows nothing of messaging or automations; this module composes them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from treu.automations.service import process_events, run_due
from treu.messaging.dispatcher import MAX_SENDS as MESSAGES_PER_PASS
from treu.messaging.dispatcher import PassResult as MessagesPass
from treu.messaging.dispatcher import dispatch as dispatch_messages
from treu.storage.uow import UowFactory
from treu.webhooks.dispatcher import MAX_SENDS as DELIVERIES_PER_PASS
from treu.webhooks.dispatcher import PassResult as WebhooksPass
from treu.webhooks.dispatcher import dispatch as dispatch_webhooks

log = logging.getLogger("treu.worker")
T = TypeVar("T")


@dataclass(frozen=True)
class WorkerPass:
    events: int = 0  # outbox events the automations processed
    delayed: int = 0  # delayed automation runs carried out
    messages: MessagesPass = field(default_factory=MessagesPass)
    webhooks: WebhooksPass = field(default_factory=WebhooksPass)

    @property
    def busy(self) -> bool:
        """There may be more to send at once: a sender stopped at its maximum per pass."""
        return (
            self.messages.claimed >= MESSAGES_PER_PASS or self.webhooks.sent >= DELIVERIES_PER_PASS
        )


def run_pass(new_uow: UowFactory, *, tenant_id: str | None = None) -> WorkerPass:
    """One pass of every step (only ``tenant_id``'s work, if given: tests, one-tenant tools)."""
    return WorkerPass(
        events=_step("automations", lambda: process_events(new_uow, tenant_id=tenant_id), 0),
        delayed=_step("delayed automations", lambda: run_due(new_uow, tenant_id=tenant_id), 0),
        messages=_step(
            "messages", lambda: dispatch_messages(new_uow, tenant_id=tenant_id), MessagesPass()
        ),
        webhooks=_step(
            "webhooks", lambda: dispatch_webhooks(new_uow, tenant_id=tenant_id), WebhooksPass()
        ),
    )


def _step(name: str, fn: Callable[[], T], failed: T) -> T:
    try:
        return fn()
    except Exception:  # the database away for a moment must not end the worker
        log.exception("worker: the %s step failed; trying again next pass", name)
        return failed


def run_worker(
    new_uow: UowFactory,
    *,
    interval: float = 5.0,
    passes: int | None = None,
    tenant_id: str | None = None,
    on_pass: Callable[[WorkerPass], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Pass, pause ``interval`` seconds, repeat — ``passes`` times, until ``stop`` is set, or
    until interrupted. A busy pass starts the next one at once."""
    stop = stop or threading.Event()
    done = 0
    while not stop.is_set() and (passes is None or done < passes):
        result = run_pass(new_uow, tenant_id=tenant_id)
        done += 1
        if on_pass is not None:
            on_pass(result)
        if not result.busy and (passes is None or done < passes):
            stop.wait(interval)


class BackgroundWorker:
    """The worker loop in a daemon thread of this process (``treu serve`` on SQLite)."""

    def __init__(self, new_uow: UowFactory, *, interval: float = 2.0) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_worker,
            args=(new_uow,),
            kwargs={"interval": interval, "stop": self._stop},
            name="treu-worker",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the pass under way (never cut one off half-way), then end."""
        self._stop.set()
        self._thread.join(timeout)
