"""Use cases for webhooks: endpoints, the fan-out from the outbox, claiming and recording
attempts, the delivery log and manual redelivery.

Nothing here speaks HTTP: :mod:`treu.webhooks.dispatcher` claims a due delivery (one
transaction), sends it outside any transaction, and records the outcome (another). The outbox is
written in the same transaction as the change it announces, so a rolled-back change has no event
to deliver, and an event committed before a crash is still there to fan out afterwards.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row

from treu.errors import ErrorCode, NotFound
from treu.ids import new_id
from treu.outbox.tables import outbox
from treu.storage.sql import insert_or_skip
from treu.storage.uow import UnitOfWork
from treu.webhooks.model import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    Outcome,
    after_attempt,
    check_event_types,
    check_url,
    event_body,
    new_secret,
)
from treu.webhooks.tables import webhook_attempts, webhook_deliveries, webhook_endpoints

E = webhook_endpoints.c
D = webhook_deliveries.c
OUT = outbox.c
A = webhook_attempts.c


@dataclass(frozen=True)
class CreatedEndpoint:
    """A new endpoint and its signing secret: the only time the secret is shown."""

    endpoint: Endpoint
    secret: str


# --- endpoints -----------------------------------------------------------------------------


def create_webhook_endpoint(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    url: str,
    event_types: Sequence[str],
    description: str | None = None,
    enabled: bool = True,
) -> CreatedEndpoint:
    now = uow.now()
    endpoint_id = new_id("webhook_endpoint")
    secret = new_secret()
    uow.conn.execute(
        insert(webhook_endpoints).values(
            id=endpoint_id,
            tenant_id=tenant_id,
            url=check_url(url),
            description=description or None,
            event_types=list(check_event_types(event_types)),
            secret=secret,
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
    )
    created = get_webhook_endpoint(uow, tenant_id=tenant_id, endpoint_id=endpoint_id)
    uow.commit()
    return CreatedEndpoint(created, secret)


def list_webhook_endpoints(uow: UnitOfWork, *, tenant_id: str) -> list[Endpoint]:
    query = (
        select(webhook_endpoints)
        .where(E.tenant_id == tenant_id, E.deleted_at.is_(None))
        .order_by(E.id)
    )
    return [_endpoint(r) for r in uow.conn.execute(query)]


def get_webhook_endpoint(uow: UnitOfWork, *, tenant_id: str, endpoint_id: str) -> Endpoint:
    row = uow.conn.execute(
        select(webhook_endpoints).where(
            E.id == endpoint_id, E.tenant_id == tenant_id, E.deleted_at.is_(None)
        )
    ).first()
    if row is None:
        raise NotFound(ErrorCode.WEBHOOK_ENDPOINT_NOT_FOUND, f"no webhook endpoint {endpoint_id}")
    return _endpoint(row)


def update_webhook_endpoint(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    endpoint_id: str,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> Endpoint:
    """Change what is given (``None``: unchanged; ``description=""`` removes it). A disabled
    endpoint gets no new deliveries; those already due wait until it is enabled again."""
    get_webhook_endpoint(uow, tenant_id=tenant_id, endpoint_id=endpoint_id)
    values: dict[str, Any] = {"updated_at": uow.now()}
    if url is not None:
        values["url"] = check_url(url)
    if event_types is not None:
        values["event_types"] = list(check_event_types(event_types))
    if description is not None:
        values["description"] = description or None
    if enabled is not None:
        values["enabled"] = enabled
    uow.conn.execute(update(webhook_endpoints).where(E.id == endpoint_id).values(**values))
    updated = get_webhook_endpoint(uow, tenant_id=tenant_id, endpoint_id=endpoint_id)
    uow.commit()
    return updated


def delete_webhook_endpoint(uow: UnitOfWork, *, tenant_id: str, endpoint_id: str) -> None:
    """The endpoint gets nothing more; its delivery log is kept."""
    get_webhook_endpoint(uow, tenant_id=tenant_id, endpoint_id=endpoint_id)
    now = uow.now()
    uow.conn.execute(
        update(webhook_endpoints)
        .where(E.id == endpoint_id)
        .values(deleted_at=now, updated_at=now, enabled=False)
    )
    uow.commit()


# --- the delivery log ----------------------------------------------------------------------


def list_deliveries(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    endpoint_id: str,
    status: DeliveryStatus | None = None,
    starting_after: str | None = None,
    limit: int = 100,
) -> list[Delivery]:
    get_webhook_endpoint(uow, tenant_id=tenant_id, endpoint_id=endpoint_id)
    query = (
        select(webhook_deliveries)
        .where(D.tenant_id == tenant_id, D.endpoint_id == endpoint_id)
        .order_by(D.id)
        .limit(limit)
    )
    if status is not None:
        query = query.where(D.status == status.value)
    if starting_after is not None:
        query = query.where(D.id > starting_after)
    return [_delivery(r) for r in uow.conn.execute(query)]


def get_delivery(
    uow: UnitOfWork, *, tenant_id: str, endpoint_id: str, delivery_id: str
) -> Delivery:
    """A delivery with every attempt made for it, oldest first."""
    endpoint = get_webhook_endpoint(uow, tenant_id=tenant_id, endpoint_id=endpoint_id)
    row = uow.conn.execute(
        select(webhook_deliveries).where(
            D.id == delivery_id, D.tenant_id == tenant_id, D.endpoint_id == endpoint.id
        )
    ).first()
    if row is None:
        raise NotFound(ErrorCode.WEBHOOK_DELIVERY_NOT_FOUND, f"no webhook delivery {delivery_id}")
    log = tuple(
        Attempt(a.id, a.attempted_at, a.status_code, a.error, a.duration_ms, a.succeeded)
        for a in uow.conn.execute(
            select(webhook_attempts).where(A.delivery_id == delivery_id).order_by(A.id)
        )
    )
    return _delivery(row, log)


def redeliver(uow: UnitOfWork, *, tenant_id: str, endpoint_id: str, delivery_id: str) -> Delivery:
    """Send a delivery again now, whatever became of it, with a fresh round of attempts (the
    receiver tells it from the first by the event id it already has)."""
    get_delivery(uow, tenant_id=tenant_id, endpoint_id=endpoint_id, delivery_id=delivery_id)
    uow.conn.execute(
        update(webhook_deliveries)
        .where(D.id == delivery_id)
        .values(status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=uow.now())
    )
    again = get_delivery(uow, tenant_id=tenant_id, endpoint_id=endpoint_id, delivery_id=delivery_id)
    uow.commit()
    return again


# --- the dispatcher's steps ----------------------------------------------------------------


@dataclass(frozen=True)
class FanOut:
    events: int  # outbox events read (and marked as dispatched)
    deliveries: int  # deliveries created


def fan_out(uow: UnitOfWork, *, limit: int = 500, tenant_id: str | None = None) -> FanOut:
    """Turn up to ``limit`` undispatched outbox events into deliveries, one per endpoint that
    wants the event, and mark the events dispatched — in one transaction, so a crash leaves
    either both or neither."""
    query = (
        select(OUT.id, OUT.tenant_id, OUT.type, OUT.created_at)
        .where(OUT.dispatched_at.is_(None))
        .order_by(OUT.id)
        .limit(limit)
        # PostgreSQL: two dispatchers take different events instead of queueing for the same
        # rows (SQLite ignores it: BEGIN IMMEDIATE already lets one writer in at a time).
        .with_for_update(skip_locked=True)
    )
    if tenant_id is not None:
        query = query.where(OUT.tenant_id == tenant_id)
    events = uow.conn.execute(query).all()
    if not events:
        return FanOut(0, 0)
    endpoints = _endpoints_of(uow, {e.tenant_id for e in events})
    now = uow.now()
    created = 0
    for event in events:
        for endpoint in endpoints[event.tenant_id]:
            if endpoint.wants(event.type, event.created_at):
                inserted = uow.conn.execute(
                    _INSERT_DELIVERY,
                    {
                        "id": new_id("webhook_delivery"),
                        "tenant_id": event.tenant_id,
                        "endpoint_id": endpoint.id,
                        "event_id": event.id,
                        "event_type": event.type,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    },
                ).first()
                created += inserted is not None
    uow.conn.execute(
        update(outbox).where(OUT.id.in_([e.id for e in events])).values(dispatched_at=now)
    )
    uow.commit()
    return FanOut(len(events), created)


_INSERT_DELIVERY = insert_or_skip(
    webhook_deliveries,
    (
        "id",
        "tenant_id",
        "endpoint_id",
        "event_id",
        "event_type",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ),
    conflict=("endpoint_id", "event_id", "tenant_id"),
    returning="id",
)


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for one attempt: everything needed to send it."""

    delivery_id: str
    tenant_id: str
    attempt: int  # the number of this attempt in the current round (1, 2, …)
    url: str
    secret: str
    event_id: str
    event_type: str
    body: bytes
    at: datetime  # when it was claimed: the signature's timestamp


def claim_due_delivery(
    uow: UnitOfWork, *, lease: timedelta, tenant_id: str | None = None
) -> Claimed | None:
    """Take the delivery that has waited longest, if one is due: its next attempt moves
    ``lease`` ahead, so if this sender dies before recording the outcome, another sends it once
    the lease is over."""
    now = uow.now()
    query = (
        select(
            D.id,
            D.tenant_id,
            D.attempts,
            D.event_id,
            D.event_type,
            E.url,
            E.secret,
            OUT.payload,
            OUT.created_at,
        )
        .join(webhook_endpoints, E.id == D.endpoint_id)
        .join(outbox, OUT.id == D.event_id)
        .where(
            D.status == DeliveryStatus.PENDING.value,
            D.next_attempt_at <= now,
            E.enabled.is_(True),
            E.deleted_at.is_(None),
        )
        .order_by(D.next_attempt_at, D.id)
        .limit(1)
        .with_for_update(of=webhook_deliveries, skip_locked=True)
    )
    if tenant_id is not None:
        query = query.where(D.tenant_id == tenant_id)
    row = uow.conn.execute(query).first()
    if row is None:
        return None
    attempt = row.attempts + 1
    taken = uow.conn.execute(
        update(webhook_deliveries)
        .where(
            D.id == row.id,
            D.status == DeliveryStatus.PENDING.value,
            D.attempts == row.attempts,
            D.next_attempt_at <= now,
        )
        .values(attempts=attempt, next_attempt_at=now + lease, last_attempt_at=now)
    )
    uow.commit()
    if taken.rowcount != 1:  # another sender was quicker
        return None
    body = event_body(row.event_id, row.event_type, row.created_at, row.payload)
    return Claimed(
        row.id, row.tenant_id, attempt, row.url, row.secret, row.event_id, row.event_type, body, now
    )


def record_attempt(uow: UnitOfWork, *, claimed: Claimed, outcome: Outcome) -> DeliveryStatus:
    """Log the attempt and schedule what comes next (nothing, a retry, or giving up)."""
    now = uow.now()
    uow.conn.execute(
        insert(webhook_attempts).values(
            id=new_id("webhook_attempt"),
            tenant_id=claimed.tenant_id,
            delivery_id=claimed.delivery_id,
            attempted_at=now,
            status_code=outcome.status_code,
            error=outcome.error[:500] if outcome.error else None,
            duration_ms=outcome.duration_ms,
            succeeded=outcome.succeeded,
        )
    )
    status, next_at = after_attempt(claimed.attempt, outcome, now)
    # Guarded by the attempt number: after a manual redelivery (or a lease that ran out and a
    # second sender) the delivery belongs to the newer attempt, and this one is only logged.
    uow.conn.execute(
        update(webhook_deliveries)
        .where(
            D.id == claimed.delivery_id,
            D.attempts == claimed.attempt,
            D.status == DeliveryStatus.PENDING.value,
        )
        .values(
            status=status.value,
            next_attempt_at=next_at,
            last_status_code=outcome.status_code,
            last_error=outcome.error[:500] if outcome.error else None,
            **({"delivered_at": now} if outcome.succeeded else {}),
        )
    )
    uow.commit()
    return status


# --- rows to objects -----------------------------------------------------------------------


def _endpoints_of(uow: UnitOfWork, tenant_ids: set[str]) -> dict[str, list[Endpoint]]:
    found: dict[str, list[Endpoint]] = defaultdict(list)
    query = select(webhook_endpoints).where(
        E.tenant_id.in_(sorted(tenant_ids)), E.enabled.is_(True), E.deleted_at.is_(None)
    )
    for row in uow.conn.execute(query):
        found[row.tenant_id].append(_endpoint(row))
    return found


def _endpoint(r: Row[Any]) -> Endpoint:
    return Endpoint(
        r.id,
        r.tenant_id,
        r.url,
        tuple(r.event_types),
        r.description,
        r.enabled,
        r.created_at,
        r.updated_at,
    )


def _delivery(r: Row[Any], log: tuple[Attempt, ...] = ()) -> Delivery:
    return Delivery(
        id=r.id,
        endpoint_id=r.endpoint_id,
        event_id=r.event_id,
        event_type=r.event_type,
        status=DeliveryStatus(r.status),
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        last_attempt_at=r.last_attempt_at,
        last_status_code=r.last_status_code,
        last_error=r.last_error,
        delivered_at=r.delivered_at,
        created_at=r.created_at,
        log=log,
    )
