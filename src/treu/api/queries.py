"""Listings the domain services do not offer yet (read-only, tenant-scoped, id-ordered).

Kept here until the owning packages grow list functions (``list_programmes``,
``list_members``); each query returns ids or plain rows, and the routes read the objects
through the services.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from treu.ids import PREFIXES
from treu.members.tables import members
from treu.programmes.tables import programmes
from treu.storage.uow import UnitOfWork


@dataclass(frozen=True)
class ProgrammeRow:
    id: str
    key: str
    name: str
    currency: str
    timezone: str
    locale: str
    revision_id: str | None


def programmes_of(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    only: str | None = None,
    starting_after: str | None = None,
    limit: int | None = None,
) -> list[ProgrammeRow]:
    query = select(programmes).where(programmes.c.tenant_id == tenant_id).order_by(programmes.c.id)
    if only is not None:
        query = query.where(programmes.c.id == only)
    if starting_after is not None:
        query = query.where(programmes.c.id > starting_after)
    if limit is not None:
        query = query.limit(limit)
    return [
        ProgrammeRow(r.id, r.key, r.name, r.currency, r.timezone, r.locale, r.current_revision_id)
        for r in uow.conn.execute(query)
    ]


def member_ids(
    uow: UnitOfWork,
    *,
    programme_id: str,
    starting_after: str | None,
    limit: int,
    enrolled: tuple[str | None, str | None] = (None, None),
) -> list[str]:
    """``enrolled``: (lowest, highest) ULID of the ids wanted, from ``Created.bounds``."""
    query = (
        select(members.c.id)
        .where(members.c.programme_id == programme_id)
        .order_by(members.c.id)
        .limit(limit)
    )
    if starting_after is not None:
        query = query.where(members.c.id > starting_after)
    low, high = enrolled
    if low is not None:
        query = query.where(members.c.id >= f"{PREFIXES['member']}_{low}")
    if high is not None:
        query = query.where(members.c.id < f"{PREFIXES['member']}_{high}")
    return [str(i) for i in uow.conn.execute(query).scalars()]
