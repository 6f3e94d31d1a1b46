"""A member's data rights in the console (GDPR art. 15, 17, 20), for owners and managers
(``members:privacy``; a cashier gets 403):

- ``/<programme>/members/<id>/export.json`` — everything held about the member
  (``treu.privacy.service.export_member``) as a file to hand over. Reading personal data for
  someone else is itself recorded: the audit entry ``member.exported`` commits with the read.
- ``/<programme>/members/<id>/erase`` (POST) — ``erase_member`` after the staff user typed the
  member's id again and gave a reason (erasure cannot be undone); the member page then says how
  many points were given up. A wrong id is an inline message and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from treu.audit.model import AuditAction
from treu.audit.service import record_action
from treu.auth.model import Permission
from treu.errors import TreuError
from treu.privacy.service import erase_member, export_member
from treu.storage.uow import UnitOfWork
from treu.web.console import InProgramme, _member, _member_page
from treu.web.forms import Form
from treu.web.messages import message_for

router = APIRouter(prefix="/console/{tenant}", include_in_schema=False)
P = Permission


@router.get("/{programme}/members/{member_id}/export.json")
def export(c: InProgramme, member_id: str) -> Response:
    c.need(P.MEMBERS_PRIVACY)
    member = _member(c, member_id)

    def go(uow: UnitOfWork) -> dict[str, Any]:
        # A read, written down: the entry and the export share one transaction, so there is
        # no export without its entry (record_on_commit would need a commit of a change).
        record_action(
            uow,
            tenant_id=c.tenant_id,
            actor=c.actor,
            action=AuditAction.MEMBER_EXPORTED,
            subject=member.id,
            programme_id=member.programme_id,
        )
        document = export_member(uow, tenant_id=c.tenant_id, member_id=member.id)
        uow.commit()
        return document

    body = json.dumps(c.rt.write(go), ensure_ascii=False, indent=2, default=str)
    return Response(
        body,
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="treu-{member.id}.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/{programme}/members/{member_id}/erase")
def erase(c: InProgramme, member_id: str, form: Form) -> Response:
    c.check_csrf(form)
    c.need(P.MEMBERS_PRIVACY)
    member = _member(c, member_id)
    values = {"confirm": form.text("confirm", 64), "erase_reason": form.text("erase_reason", 500)}
    errors: dict[str, str] = {}
    if values["confirm"] != member.id:
        errors["confirm"] = c.fmt.gettext(
            "Type this member's id exactly as shown above: erasure cannot be undone."
        )
    if not values["erase_reason"]:
        errors["erase_reason"] = c.fmt.gettext(
            "Please say why, e.g. the member's request and its date."
        )
    if errors:
        return _member_page(c, member.id, 422, errors=errors, values=values)
    reason = values["erase_reason"]
    try:

        def go(uow: UnitOfWork) -> int:
            c.audit(uow, AuditAction.MEMBER_ERASED, member.id, reason=reason)
            return erase_member(
                uow, tenant_id=c.tenant_id, member_id=member.id, actor=f"{c.actor}: {reason}"
            )

        given_up = c.rt.write(go)
    except TreuError as exc:
        errors = {"confirm": message_for(exc, c.fmt)}
        return _member_page(c, member.id, 422, errors=errors, values=values)
    return c.redirect(f"{c.here}/members/{member.id}?erased={given_up}")
