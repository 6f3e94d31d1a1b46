"""Reading the outbox (delivery comes with webhooks and messaging)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from treu.outbox.tables import outbox
from treu.storage.uow import UnitOfWork


def list_events(
    uow: UnitOfWork, *, tenant_id: str, type: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    query = select(outbox).where(outbox.c.tenant_id == tenant_id).order_by(outbox.c.id).limit(limit)
    if type is not None:
        query = query.where(outbox.c.type == type)
    return [dict(row._mapping) for row in uow.conn.execute(query)]
