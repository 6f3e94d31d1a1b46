"""The audit log of staff actions (``treu.audit``), read-only: ``GET /v1/audit``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, Field

from treu.api.deps import Rt, Who, needs, programme_id_for
from treu.api.pagination import Limit, StartingAfter, page
from treu.api.schemas import Page, _Out
from treu.audit.model import AuditEntry
from treu.audit.service import list_actions
from treu.auth.model import Permission as P
from treu.storage.uow import UnitOfWork

router = APIRouter(prefix="/v1", tags=["audit"])


class AuditEntryRead(_Out):
    object: Literal["audit_entry"] = "audit_entry"
    id: str
    programme_id: str | None
    actor: str = Field(description="staff:<staff user id> or key:<api key id>")
    action: str = Field(description="A stable code: member.adjusted, programme.applied …")
    subject: str = Field(description="What the action was done to: a member id, programme id …")
    details: dict[str, Any]
    at: datetime

    @classmethod
    def of(cls, e: AuditEntry) -> AuditEntryRead:
        return cls(
            id=e.id,
            programme_id=e.programme_id,
            actor=e.actor,
            action=e.action,
            subject=e.subject,
            details=e.details,
            at=e.at,
        )


@router.get("/audit", dependencies=[needs(P.REPORTS_READ)])
def list_audit(
    rt: Rt,
    who: Who,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    programme: Annotated[str | None, Query(max_length=64, description="Programme key")] = None,
    actor: Annotated[str | None, Query(max_length=80, description="staff:<id> or key:<id>")] = None,
    member_id: Annotated[str | None, Query(max_length=64, description="Subject")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    at_gte: Annotated[AwareDatetime | None, Query(description="At or after (RFC 3339)")] = None,
    at_lt: Annotated[AwareDatetime | None, Query(description="Before (RFC 3339)")] = None,
) -> Page[AuditEntryRead]:
    """The tenant's audit log, oldest first (``starting_after``: the last id of a page); with
    ``programme``, that programme's entries and the tenant's own."""

    def go(uow: UnitOfWork) -> list[AuditEntry]:
        programme_id = programme_id_for(uow, who, programme) if programme else who.programme_id
        return list_actions(
            uow,
            tenant_id=who.tenant_id,
            programme_id=programme_id,
            actor=actor,
            subject=member_id,
            action=action,
            since=at_gte,
            until=at_lt,
            after=starting_after,
            newest_first=False,
            limit=limit + 1,
        )

    entries = [AuditEntryRead.of(e) for e in rt.read(go)]
    return page(entries, limit=limit, id_of=lambda e: e.id)
