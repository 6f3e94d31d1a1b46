"""Writing and reading the audit log.

:func:`record_action` writes one entry in the caller's transaction and never commits: the
entry and the change it records commit together or not at all. A caller whose change is made
by a service function that commits itself registers the entry with :func:`record_on_commit`
(``UnitOfWork.before_commit``): it is written inside that commit, and not at all when the
service rejects the request or replays an earlier one without a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from treu.audit.model import AuditEntry, check_entry
from treu.audit.tables import audit_log
from treu.auth.tables import api_keys, staff_users
from treu.ids import new_id
from treu.storage.uow import UnitOfWork

MAX_LIMIT = 200
A = audit_log.c


def record_action(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    actor: str,
    action: str,
    subject: str,
    programme_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> str:
    """Write one entry in the open transaction (no commit); returns its id."""
    check_entry(actor, action, subject)
    entry_id = new_id("audit_entry")
    uow.conn.execute(
        insert(audit_log).values(
            id=entry_id,
            tenant_id=tenant_id,
            programme_id=programme_id,
            actor=actor,
            action=action,
            subject=subject,
            details=dict(details or {}),
            at=uow.now(),
        )
    )
    return entry_id


def record_on_commit(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    actor: str,
    action: str,
    subject: str,
    programme_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Write the entry inside the next commit of ``uow`` (see the module's docstring)."""
    check_entry(actor, action, subject)
    uow.before_commit(
        lambda: _ignore(
            record_action(
                uow,
                tenant_id=tenant_id,
                actor=actor,
                action=action,
                subject=subject,
                programme_id=programme_id,
                details=details,
            )
        )
    )


def _ignore(_: object) -> None:
    return None


def list_actions(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    programme_id: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: str | None = None,
    newest_first: bool = True,
    limit: int = 50,
) -> list[AuditEntry]:
    """Entries newest first (or oldest first); ``after`` is the id of the last entry of the
    previous page in that order (a cursor: entries added meanwhile never shift a page).
    ``since``/``until``: ``at`` in ``[since, until)``. ``programme_id`` keeps entries of that
    programme and the tenant's own (no programme)."""
    query = select(audit_log).where(A.tenant_id == tenant_id)
    if programme_id is not None:
        query = query.where((A.programme_id == programme_id) | A.programme_id.is_(None))
    for column, value in ((A.actor, actor), (A.subject, subject), (A.action, action)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(A.at >= since)
    if until is not None:
        query = query.where(A.at < until)
    if after is not None:
        query = query.where(A.id < after if newest_first else A.id > after)
    order = A.id.desc() if newest_first else A.id.asc()
    rows = uow.conn.execute(query.order_by(order).limit(max(1, min(limit, MAX_LIMIT))))
    return [
        AuditEntry(r.id, r.tenant_id, r.programme_id, r.actor, r.action, r.subject, r.details, r.at)
        for r in rows
    ]


def actor_names(uow: UnitOfWork, *, tenant_id: str) -> dict[str, str]:
    """``staff:<id>`` and ``key:<id>`` to a name a person recognises (a staff user's name or
    e-mail address, an API key's name), for the tenant's staff and keys."""
    names: dict[str, str] = {}
    for r in uow.conn.execute(
        select(staff_users.c.id, staff_users.c.email, staff_users.c.name).where(
            staff_users.c.tenant_id == tenant_id
        )
    ):
        names[f"staff:{r.id}"] = r.name or r.email
    for r in uow.conn.execute(
        select(api_keys.c.id, api_keys.c.name).where(api_keys.c.tenant_id == tenant_id)
    ):
        names[f"key:{r.id}"] = r.name
    return names
