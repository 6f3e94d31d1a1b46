"""Purchases and returns from a NATS JetStream stream (``treu consume nats``).

A shop, a till backend or an event bus publishes one JSON message per purchase or return on a
subject of a JetStream stream; this consumer records them through the same use cases as the API
and acknowledges each message only **after** the transaction that recorded it has committed:

* the consumer dies before the commit: nothing was written, the message is not acknowledged, and
  JetStream delivers it again once ``ack_wait`` has passed;
* it dies after the commit but before the acknowledgement: the message comes again, and the
  purchase's external id makes the second recording a replay (nothing changes, it is acked).

So every event is recorded exactly once, whatever point the consumer is killed at. Messages that
can never be recorded (not JSON, not a purchase, an unknown member, a blocked member) are
terminated (``term``: JetStream drops them) and logged with the reason, instead of blocking the
stream or coming back forever.

A fetched batch is recorded in one transaction (``record_purchases``: the bulk path); if one of
its items is rejected, the batch is rolled back and recorded item by item, so one bad message
costs only itself.

The message body (``type`` defaults to ``purchase``)::

    {"type": "purchase", "member": "email:mia@example.org", "external_id": "order-1001",
     "occurred_at": "2026-03-02T08:10:00+01:00", "currency": "EUR", "store": "kastanienallee",
     "lines": [{"sku": "CAP", "category": "Kaffee", "quantity": 2, "unit_price": "3.40"}]}

    {"type": "return", "external_id": "refund-77", "purchase_external_id": "order-1001",
     "amount": "3.40"}
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Literal, Protocol

from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy.exc import DBAPIError

from treu.activities.model import PurchaseIn, ReturnIn
from treu.activities.service import record_purchase, record_purchases, record_return
from treu.errors import TreuError
from treu.storage.uow import UnitOfWork, UowFactory, is_retryable

log = logging.getLogger("treu.ingest")

DEFAULT_URL = "nats://127.0.0.1:4222"


class PurchaseEvent(PurchaseIn):
    type: Literal["purchase"] = "purchase"
    member: str | None = Field(default=None, min_length=1, max_length=320)

    def purchase(self) -> PurchaseIn:
        """The purchase as the services take it (what is stored is the purchase, not the
        envelope)."""
        return PurchaseIn.model_validate(self.model_dump(exclude={"type", "member"}))


class ReturnEvent(ReturnIn):
    type: Literal["return"]

    def return_(self) -> ReturnIn:
        return ReturnIn.model_validate(self.model_dump(exclude={"type"}))


IngestEvent = Annotated[PurchaseEvent | ReturnEvent, Field(discriminator="type")]
_EVENT: TypeAdapter[PurchaseEvent | ReturnEvent] = TypeAdapter(IngestEvent)


def parse_event(data: bytes) -> PurchaseEvent | ReturnEvent:
    """The event in a message body; ``ValueError`` (with the reason) if it is not one."""
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if isinstance(raw, dict):
        raw.setdefault("type", "purchase")
    try:
        return _EVENT.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise ValueError(f"{path}: {first['msg']}") from exc


class Message(Protocol):
    """What the consumer needs of a JetStream message (``nats.aio.msg.Msg``)."""

    data: bytes

    async def ack(self) -> None: ...

    async def nak(self, delay: float | None = None) -> None: ...

    async def term(self) -> None: ...


@dataclass
class IngestStats:
    received: int = 0
    recorded: int = 0  # new purchases and returns
    replayed: int = 0  # already recorded (a redelivery after a crash, or sent twice)
    rejected: int = 0  # terminated: can never be recorded
    retried: int = 0  # handed back (nak) after a transient database error
    reasons: list[str] = field(default_factory=list)  # the last few rejections, for the log

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.reasons = [*self.reasons[-9:], reason]


RETRY_DELAY_SECONDS = 1.0


async def handle_batch(
    new_uow: UowFactory, programme_id: str, messages: Sequence[Message], stats: IngestStats
) -> None:
    """Record ``messages`` and settle each one (ack / term / nak) after its commit."""
    stats.received += len(messages)
    purchases: list[tuple[Message, PurchaseEvent]] = []
    returns: list[tuple[Message, ReturnEvent]] = []
    for message in messages:
        try:
            event = parse_event(message.data)
        except ValueError as exc:
            await _reject(message, stats, f"invalid message: {exc}")
            continue
        if isinstance(event, PurchaseEvent):
            purchases.append((message, event))
        else:
            returns.append((message, event))
    if purchases:
        await _purchases(new_uow, programme_id, purchases, stats)
    for message, ret in returns:  # after the purchases they may refer to
        await _one(new_uow, message, stats, partial(_return, programme_id=programme_id, event=ret))


async def _purchases(
    new_uow: UowFactory,
    programme_id: str,
    batch: list[tuple[Message, PurchaseEvent]],
    stats: IngestStats,
) -> None:
    items: list[tuple[str | None, PurchaseIn]] = [(e.member, e.purchase()) for _, e in batch]

    def record_all() -> list[bool]:
        with new_uow() as uow:
            results = record_purchases(uow, programme_id=programme_id, items=items)
            return [r.replayed for r in results]

    try:
        replayed = await asyncio.to_thread(record_all)
    except TreuError:
        # one of them is refused: the batch rolled back; record them one by one
        for message, event in batch:
            record = partial(_purchase, programme_id=programme_id, event=event)
            await _one(new_uow, message, stats, record)
        return
    except DBAPIError as exc:
        if not is_retryable(exc):
            raise
        for message, _ in batch:
            await _retry(message, stats)
        return
    for (message, _), was_replay in zip(batch, replayed, strict=True):
        _count(stats, was_replay)
        await message.ack()


def _purchase(uow: UnitOfWork, *, programme_id: str, event: PurchaseEvent) -> bool:
    return record_purchase(
        uow, programme_id=programme_id, purchase=event.purchase(), member=event.member
    ).replayed


def _return(uow: UnitOfWork, *, programme_id: str, event: ReturnEvent) -> bool:
    return record_return(uow, programme_id=programme_id, ret=event.return_()).replayed


async def _one(
    new_uow: UowFactory, message: Message, stats: IngestStats, record: Callable[[UnitOfWork], bool]
) -> None:
    def run() -> bool:
        with new_uow() as uow:
            return record(uow)

    try:
        was_replay = await asyncio.to_thread(run)
    except TreuError as exc:
        await _reject(message, stats, str(exc))
        return
    except DBAPIError as exc:
        if not is_retryable(exc):
            raise
        await _retry(message, stats)
        return
    _count(stats, was_replay)
    await message.ack()


def _count(stats: IngestStats, was_replay: bool) -> None:
    if was_replay:
        stats.replayed += 1
    else:
        stats.recorded += 1


async def _reject(message: Message, stats: IngestStats, reason: str) -> None:
    log.warning("ingest: message dropped: %s", reason)
    stats.reject(reason)
    await message.term()


async def _retry(message: Message, stats: IngestStats) -> None:
    stats.retried += 1
    await message.nak(delay=RETRY_DELAY_SECONDS)


@dataclass(frozen=True)
class ConsumerOptions:
    subject: str
    stream: str
    durable: str = "treu"
    url: str = DEFAULT_URL
    batch: int = 100
    ack_wait: float = 30.0  # seconds before JetStream re-delivers an unacknowledged message
    until_idle: float | None = None  # stop after this many seconds without a message
    create_stream: bool = False
    reconnect_attempts: int = 60  # 2 s apart: a NATS server away for two minutes is survived


async def consume(
    new_uow: UowFactory,
    programme_id: str,
    options: ConsumerOptions,
    *,
    on_batch: Callable[[IngestStats], None] | None = None,
) -> IngestStats:
    """Pull batches from the durable consumer ``options.durable`` and record them until
    interrupted (or idle for ``options.until_idle`` seconds)."""
    import nats
    from nats.errors import Error as NatsError
    from nats.errors import TimeoutError as FetchTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    async def on_error(exc: Exception) -> None:
        log.warning("ingest: NATS: %s", exc)

    stats = IngestStats()
    try:
        nc = await nats.connect(
            options.url,
            name="treu-ingest",
            connect_timeout=5,
            reconnect_time_wait=2,
            max_reconnect_attempts=options.reconnect_attempts,
            error_cb=on_error,
        )
    except (OSError, NatsError) as exc:
        raise ConnectionError(f"cannot reach NATS at {options.url}: {exc}") from exc
    try:
        js = nc.jetstream()
        if options.create_stream:
            await js.add_stream(name=options.stream, subjects=[options.subject])
        config = ConsumerConfig(
            durable_name=options.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=options.ack_wait,
            max_ack_pending=max(1000, options.batch * 4),
        )
        subscription = await js.pull_subscribe(
            options.subject, durable=options.durable, stream=options.stream, config=config
        )
        idle_since = time.monotonic()
        while True:
            try:
                messages = await subscription.fetch(options.batch, timeout=1.0)
            except (FetchTimeout, TimeoutError):  # nats' own, or asyncio's from a slow reply
                messages = []
            if not messages:
                if (
                    options.until_idle is not None
                    and time.monotonic() - idle_since >= options.until_idle
                ):
                    return stats
                continue
            idle_since = time.monotonic()
            await handle_batch(new_uow, programme_id, messages, stats)
            if on_batch is not None:
                on_batch(stats)
    finally:
        try:
            await nc.drain()
        except (NatsError, TimeoutError) as exc:  # a busy server: acked work is recorded anyway
            log.warning("ingest: NATS drain: %s; closing", exc)
            await nc.close()
