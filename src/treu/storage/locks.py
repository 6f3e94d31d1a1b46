"""Row locks, taken in one place and in one order.

Every use case that changes a member's points locks the member row first (``FOR UPDATE`` on
PostgreSQL), and several members in id order, so two transactions never wait on each other in
opposite orders (a use case about one member may take its lock in the statement that finds it,
``treu.members.service.resolve_member_for_write``). On SQLite the ``BEGIN IMMEDIATE`` write lock
already serialises writers.
The guarded balance updates and CHECK constraints stay as the backstop either way.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from treu.members.tables import members
from treu.storage.uow import UnitOfWork

_LOCK_ONE = select(members.c.id).where(members.c.id == bindparam("member_id")).with_for_update()
# PostgreSQL sorts before it locks (the LockRows step sits above the Sort): id order.
_LOCK_MANY = (
    select(members.c.id)
    .where(members.c.id.in_(bindparam("member_ids", expanding=True)))
    .order_by(members.c.id)
    .with_for_update()
)


def lock_members(uow: UnitOfWork, *member_ids: str) -> None:
    if uow.dialect == "sqlite":
        return
    ids = sorted(set(member_ids))
    if len(ids) == 1:
        uow.conn.execute(_LOCK_ONE, {"member_id": ids[0]})
    elif ids:
        uow.conn.execute(_LOCK_MANY, {"member_ids": ids})
