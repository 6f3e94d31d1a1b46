"""Member service of the console beyond one member: merging duplicates, the referral review
queue. Managers and owners only (``members:privacy``, ``referrals:review``); a cashier gets 403.

- ``/<programme>/members/<id>/merge`` — the person signed up twice: find the other sign-up by any
  identifier, see both side by side, confirm, and ``merge_members`` moves everything of the other
  into this one (GET shows, only the confirmed POST changes anything).
- ``/<programme>/referrals`` — the referrals held as suspicious, with why; approve or reject
  each with the referrals service's ``approve_referral`` / ``reject_referral``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from treu.audit.model import AuditAction
from treu.auth.model import Permission
from treu.errors import ErrorCode, NotFound, TreuError
from treu.ledger.service import get_balances
from treu.members.merge import merge_members
from treu.members.model import Member
from treu.members.service import get_member
from treu.referrals.model import ReferralStatus
from treu.referrals.service import ReferralView, approve_referral, list_referrals, reject_referral
from treu.storage.uow import UnitOfWork
from treu.web.console import Console, InProgramme, _member, _scanned
from treu.web.context import PageNotFound
from treu.web.forms import Form
from treu.web.messages import message_for

router = APIRouter(prefix="/console/{tenant}", include_in_schema=False)
P = Permission


# --- merging duplicates --------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    member: Member
    available: int


def _side(c: Console, member: Member) -> Side:
    balances = c.rt.read(lambda uow: get_balances(uow, tenant_id=c.tenant_id, member_id=member.id))
    return Side(member, balances.available)


@router.get("/{programme}/members/{member_id}/merge")
def merge_form(
    c: InProgramme, member_id: str, other: Annotated[str, Query(max_length=320)] = ""
) -> Response:
    """Find the duplicate (``other``: any identifier) and show both before anything happens."""
    c.need(P.MEMBERS_PRIVACY)
    keep = _member(c, member_id)
    programme = c.programme
    assert programme is not None
    error, found = None, None
    if other.strip():
        try:
            found = c.rt.read(lambda uow: _scanned(uow, c, programme, other.strip()))
            if found.id == keep.id:
                error = c.fmt.gettext("That is this member: search for the other sign-up.")
                found = None
        except TreuError as exc:
            error = message_for(exc, c.fmt)
    return c.render(
        "console/merge.html",
        422 if error else 200,
        section="members",
        keep=_side(c, keep),
        other=_side(c, found) if found else None,
        q=other,
        error=error,
    )


@router.post("/{programme}/members/{member_id}/merge")
def merge(c: InProgramme, member_id: str, form: Form) -> Response:
    c.check_csrf(form)
    c.need(P.MEMBERS_PRIVACY)
    keep = _member(c, member_id)
    gone = _member(c, form.text("other", 64))
    try:

        def go(uow: UnitOfWork) -> None:
            c.audit(uow, AuditAction.MEMBERS_MERGED, keep.id, merged=gone.id)
            merge_members(
                uow, tenant_id=c.tenant_id, keep_id=keep.id, merge_id=gone.id, actor=c.actor
            )

        c.rt.write(go)
    except TreuError as exc:
        return c.render(
            "console/merge.html",
            422,
            section="members",
            keep=_side(c, keep),
            other=_side(c, gone),
            q="",
            error=message_for(exc, c.fmt),
        )
    return c.redirect(f"{c.here}/members/{keep.id}")


# --- the referral review queue -------------------------------------------------------------


_DONE = {"approve": "approved", "reject": "rejected"}  # the decision -> what the page says


@dataclass(frozen=True)
class HeldReferral:
    view: ReferralView
    referrer: Member
    friend: Member


@router.get("/{programme}/referrals")
def review_queue(c: InProgramme, done: Annotated[str, Query(max_length=20)] = "") -> Response:
    c.need(P.REFERRALS_REVIEW)
    return c.render(
        "console/referrals.html",
        section="referrals",
        held=c.rt.read(lambda uow: _held(uow, c)),
        done=done if done in _DONE.values() else "",
        error=None,
    )


def _held(uow: UnitOfWork, c: Console) -> list[HeldReferral]:
    assert c.programme is not None
    found = list_referrals(uow, programme_id=c.programme.id, status=ReferralStatus.HELD)
    return [
        HeldReferral(
            r,
            get_member(uow, r.referrer_id, tenant_id=c.tenant_id),
            get_member(uow, r.friend_id, tenant_id=c.tenant_id),
        )
        for r in found
    ]


@router.post("/{programme}/referrals/{referral_id}/{decision}")
def decide(c: InProgramme, referral_id: str, decision: str, form: Form) -> Response:
    c.check_csrf(form)
    c.need(P.REFERRALS_REVIEW)
    if decision not in _DONE:
        raise PageNotFound

    def go(uow: UnitOfWork) -> None:
        assert c.programme is not None
        # the service scopes by tenant; the page is one programme's queue
        held = list_referrals(uow, programme_id=c.programme.id, status=ReferralStatus.HELD)
        if referral_id not in {r.id for r in held}:
            raise NotFound(ErrorCode.REFERRAL_NOT_FOUND, "not a held referral here")
        approved = decision == "approve"
        action = AuditAction.REFERRAL_APPROVED if approved else AuditAction.REFERRAL_REJECTED
        c.audit(uow, action, referral_id)
        if approved:
            approve_referral(uow, tenant_id=c.tenant_id, referral_id=referral_id, actor=c.actor)
        else:
            reject_referral(uow, tenant_id=c.tenant_id, referral_id=referral_id, actor=c.actor)

    try:
        c.rt.write(go)
    except TreuError as exc:
        held = c.rt.read(lambda uow: _held(uow, c))
        return c.render(
            "console/referrals.html",
            422,
            section="referrals",
            held=held,
            done="",
            error=message_for(exc, c.fmt),
        )
    return c.redirect(f"{c.here}/referrals?done={_DONE[decision]}")
