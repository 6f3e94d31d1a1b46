"""Stored first responses for requests sent with an idempotency key (the API's POSTs).

The HTTP layer calls :func:`begin` before running a request: ``None`` means "go ahead, this key
is now yours", a :class:`StoredResponse` means "answer this again". Afterwards it calls
:func:`complete` with the response to keep, or :func:`release` when nothing should be kept
(a server error, so a retry may run the request again). A record lives 24 hours.

This is a second line of defence: the domain already makes its writes idempotent (external ids of
activities, redemption and adjustment keys); a stored response also makes the *answer* the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.engine import Row

from treu.auth.tables import idempotency_records
from treu.errors import Conflict, ErrorCode
from treu.storage.sql import insert_or_skip
from treu.storage.uow import UnitOfWork

TTL = timedelta(hours=24)
# A request still "in flight" after this long has died with its process: the key is free again.
STALE = timedelta(minutes=5)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    headers: list[tuple[str, str]]
    body: bytes


_COLUMNS = ("principal_id", "key", "tenant_id", "fingerprint", "created_at")
_INSERT = insert_or_skip(
    idempotency_records, _COLUMNS, conflict=("principal_id", "key", "tenant_id"), returning="key"
)


def begin(
    uow: UnitOfWork, *, principal_id: str, tenant_id: str, key: str, fingerprint: str
) -> StoredResponse | None:
    """Claim ``key`` for a request with ``fingerprint``, or say why not (and commit)."""
    now = uow.now()
    row = _read(uow, principal_id, key)
    if row is not None and (
        row.created_at <= now - TTL or (row.status_code is None and row.created_at <= now - STALE)
    ):
        uow.conn.execute(delete(idempotency_records).where(_this(principal_id, key)))
        row = None
    if row is None:
        values = {
            "principal_id": principal_id,
            "key": key,
            "tenant_id": tenant_id,
            "fingerprint": fingerprint,
            "created_at": now,
        }
        if uow.conn.execute(_INSERT, values).scalar() is not None:
            uow.commit()
            return None
        row = _read(uow, principal_id, key)  # a concurrent request claimed it a moment ago
        assert row is not None
    uow.commit()
    if row.fingerprint != fingerprint:
        raise Conflict(
            ErrorCode.IDEMPOTENCY_KEY_REUSE,
            f"idempotency key {key!r} was used for a different request",
        )
    if row.status_code is None:
        raise Conflict(
            ErrorCode.IDEMPOTENCY_KEY_IN_USE,
            f"a request with idempotency key {key!r} is still being processed",
        )
    return StoredResponse(
        int(row.status_code), [(k, v) for k, v in row.headers or []], bytes(row.body or b"")
    )


def complete(uow: UnitOfWork, *, principal_id: str, key: str, response: StoredResponse) -> None:
    uow.conn.execute(
        update(idempotency_records)
        .where(_this(principal_id, key))
        .values(
            status_code=response.status_code,
            headers=[list(h) for h in response.headers],
            body=response.body,
            completed_at=uow.now(),
        )
    )
    uow.commit()


def release(uow: UnitOfWork, *, principal_id: str, key: str) -> None:
    uow.conn.execute(
        delete(idempotency_records).where(
            _this(principal_id, key), idempotency_records.c.status_code.is_(None)
        )
    )
    uow.commit()


def purge(uow: UnitOfWork, *, before: datetime | None = None, tenant_id: str | None = None) -> int:
    """Forget records older than the TTL (housekeeping; expired ones are never replayed)."""
    cutoff = before or uow.now() - TTL
    query = delete(idempotency_records).where(idempotency_records.c.created_at < cutoff)
    if tenant_id is not None:
        query = query.where(idempotency_records.c.tenant_id == tenant_id)
    done = uow.conn.execute(query).rowcount
    uow.commit()
    return int(done)


def _this(principal_id: str, key: str) -> ColumnElement[bool]:
    return and_(
        idempotency_records.c.principal_id == principal_id, idempotency_records.c.key == key
    )


def _read(uow: UnitOfWork, principal_id: str, key: str) -> Row[Any] | None:
    return uow.conn.execute(select(idempotency_records).where(_this(principal_id, key))).first()
