"""Members: enrol, look up, read, update, block, merge; export and erasure (GDPR); balances,
history, lots, vouchers."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from treu.api.deps import Rt, Who, actor, member_for, needs, programme_id_for
from treu.api.pagination import Window, WindowIn, page
from treu.api.queries import member_ids
from treu.api.ratelimit import rate_limited
from treu.api.schemas import (
    BalancesRead,
    ErasureRead,
    HistoryEntryRead,
    LotRead,
    MemberCreate,
    MemberErase,
    MemberMerge,
    MemberRead,
    MemberTokenRead,
    MemberUpdate,
    Page,
    VoucherRead,
    WidgetTokenCreate,
)
from treu.auth.member_login import issue_member_token
from treu.auth.model import Permission as P
from treu.errors import ErrorCode, InvalidInput
from treu.ledger.service import get_balances, list_lots, member_history
from treu.members.enrolment import enrol_member
from treu.members.merge import merge_members
from treu.members.service import find_member, set_blocked, update_profile
from treu.privacy.service import erase_member, export_member
from treu.rewards.service import list_vouchers
from treu.storage.uow import UnitOfWork

programme_router = APIRouter(prefix="/v1/programmes/{programme}/members", tags=["members"])
router = APIRouter(prefix="/v1/members", tags=["members"])


@programme_router.post("", status_code=201, dependencies=[needs(P.MEMBERS_WRITE)])
def enrol(rt: Rt, who: Who, programme: str, body: MemberCreate) -> MemberRead:
    def go(uow: UnitOfWork) -> MemberRead:
        member = enrol_member(
            uow,
            programme_id=programme_id_for(uow, who, programme),
            identifiers_=body.identifiers,
            name=body.name,
            birthday=body.birthday,
            locale=body.locale,
            attributes=dict(body.attributes),
            consents_=body.consents,
            source="api",
            referral_code=body.referral_code,
            client_address=body.client_address,
        )
        return MemberRead.of(member)

    return rt.write(go)


@programme_router.get("", dependencies=[needs(P.MEMBERS_LIST)])
def list_members(rt: Rt, who: Who, programme: str, window: WindowIn) -> Page[MemberRead]:
    """The programme's members in order of enrolment; ``created_gte``/``created_lt`` filter
    by enrolment time."""

    def go(uow: UnitOfWork) -> list[MemberRead]:
        pid = programme_id_for(uow, who, programme)
        ids = member_ids(
            uow,
            programme_id=pid,
            starting_after=window.starting_after,
            limit=window.limit + 1,
            enrolled=window.created.bounds(),
        )
        return [MemberRead.of(member_for(uow, who, i)) for i in ids]

    return page(rt.read(go), limit=window.limit, id_of=lambda m: m.id)


@programme_router.get("/lookup", dependencies=[needs(P.MEMBERS_LOOKUP), rate_limited("lookups")])
def lookup(
    rt: Rt,
    who: Who,
    programme: str,
    identifier: Annotated[
        str,
        Query(
            min_length=1,
            max_length=320,
            description="kind:value — email:mia@example.org, phone:+4917…, card:4711, external:…",
        ),
    ],
) -> MemberRead:
    """Find a member by any identifier (or by id); 404 if there is none."""

    def go(uow: UnitOfWork) -> MemberRead:
        pid = programme_id_for(uow, who, programme)
        return MemberRead.of(find_member(uow, programme_id=pid, reference=identifier))

    return rt.read(go)


@router.get("/{member_id}", dependencies=[needs(P.MEMBERS_READ)])
def get_one(rt: Rt, who: Who, member_id: str) -> MemberRead:
    return rt.read(lambda uow: MemberRead.of(member_for(uow, who, member_id)))


@router.patch("/{member_id}", dependencies=[needs(P.MEMBERS_WRITE)])
def update(rt: Rt, who: Who, member_id: str, body: MemberUpdate) -> MemberRead:
    def go(uow: UnitOfWork) -> MemberRead:
        member_for(uow, who, member_id)
        member = update_profile(
            uow,
            tenant_id=who.tenant_id,
            member_id=member_id,
            name=body.name,
            birthday=body.birthday,
            locale=body.locale,
            attributes=dict(body.attributes) if body.attributes is not None else None,
        )
        return MemberRead.of(member)

    return rt.write(go)


def _set_blocked(rt: Rt, who: Who, member_id: str, blocked: bool) -> MemberRead:
    def go(uow: UnitOfWork) -> MemberRead:
        member_for(uow, who, member_id)
        member = set_blocked(uow, tenant_id=who.tenant_id, member_id=member_id, blocked=blocked)
        return MemberRead.of(member)

    return rt.write(go)


@router.post("/{member_id}/block", dependencies=[needs(P.MEMBERS_WRITE)])
def block(rt: Rt, who: Who, member_id: str) -> MemberRead:
    """A blocked member can neither earn nor redeem (their points stay)."""
    return _set_blocked(rt, who, member_id, True)


@router.post("/{member_id}/unblock", dependencies=[needs(P.MEMBERS_WRITE)])
def unblock(rt: Rt, who: Who, member_id: str) -> MemberRead:
    return _set_blocked(rt, who, member_id, False)


@router.post("/{member_id}/merge", dependencies=[needs(P.MEMBERS_PRIVACY)])
def merge(rt: Rt, who: Who, member_id: str, body: MemberMerge) -> MemberRead:
    """Merge another member (``merge``) into this one: identifiers, activities, vouchers and
    points move here; the other becomes ``merged``. Merging again changes nothing."""

    def go(uow: UnitOfWork) -> MemberRead:
        member_for(uow, who, member_id)
        member_for(uow, who, body.merge)
        return MemberRead.of(
            merge_members(
                uow,
                tenant_id=who.tenant_id,
                keep_id=member_id,
                merge_id=body.merge,
                actor=actor(who),
            )
        )

    return rt.write(go)


@router.post("/{member_id}/tokens", status_code=201, dependencies=[needs(P.MEMBERS_TOKEN)])
def widget_token(rt: Rt, who: Who, member_id: str, body: WidgetTokenCreate) -> MemberTokenRead:
    """A short-lived, read-only member token for the website widget: the shop's backend asks
    for it (its customer is logged in at the shop) and puts it in the page (docs/web.md). It
    reads the member's own account (``/v1/me``, the widget) and nothing else."""

    def go(uow: UnitOfWork) -> MemberTokenRead:
        member = member_for(uow, who, member_id)
        issued = issue_member_token(
            uow,
            tenant_id=who.tenant_id,
            member_id=member.id,
            lifetime=timedelta(minutes=body.minutes),
            server_secret=rt.secret,
        )
        return MemberTokenRead(
            token=issued.token,
            member_id=issued.claims.member_id,
            programme_id=issued.claims.programme_id,
            expires_at=issued.claims.expires_at,
        )

    return rt.read(go)


@router.get("/{member_id}/export", dependencies=[needs(P.MEMBERS_PRIVACY)])
def export(rt: Rt, who: Who, member_id: str) -> dict[str, Any]:
    """Everything held about the member as one JSON document (GDPR art. 15 and 20)."""

    def go(uow: UnitOfWork) -> dict[str, Any]:
        member_for(uow, who, member_id)
        return export_member(uow, tenant_id=who.tenant_id, member_id=member_id)

    return rt.read(go)


@router.post("/{member_id}/erase", dependencies=[needs(P.MEMBERS_PRIVACY)])
def erase(rt: Rt, who: Who, member_id: str, body: MemberErase) -> ErasureRead:
    """Erase the person (GDPR art. 17): identifying data goes, points are given up, the ledger
    stays balanced. Erasing again changes nothing."""

    def go(uow: UnitOfWork) -> ErasureRead:
        member_for(uow, who, member_id)
        if body.confirm != member_id:
            raise InvalidInput(
                ErrorCode.VALIDATION_ERROR,
                "confirm must repeat the id of the member to erase",
                errors=[{"path": "confirm", "message": "is not this member's id"}],
            )
        given_up = erase_member(
            uow, tenant_id=who.tenant_id, member_id=member_id, actor=f"{actor(who)}: {body.reason}"
        )
        return ErasureRead(member_id=member_id, points_given_up=given_up)

    return rt.write(go)


@router.get("/{member_id}/balances", dependencies=[needs(P.BALANCES_READ)])
def balances(rt: Rt, who: Who, member_id: str) -> BalancesRead:
    def go(uow: UnitOfWork) -> BalancesRead:
        member_for(uow, who, member_id)
        found = get_balances(uow, tenant_id=who.tenant_id, member_id=member_id)
        return BalancesRead.of(member_id, found)

    return rt.read(go)


@router.get("/{member_id}/history", dependencies=[needs(P.MEMBERS_READ)])
def history(rt: Rt, who: Who, member_id: str, window: WindowIn) -> Page[HistoryEntryRead]:
    """Every change of the member's points, oldest first, with the reasons behind it."""
    return history_page(rt, who, member_id, window)


@router.get("/{member_id}/lots", dependencies=[needs(P.MEMBERS_READ)])
def lots(
    rt: Rt, who: Who, member_id: str, window: WindowIn, open_only: bool = False
) -> Page[LotRead]:
    def go(uow: UnitOfWork) -> list[LotRead]:
        member_for(uow, who, member_id)
        found = list_lots(uow, tenant_id=who.tenant_id, member_id=member_id, open_only=open_only)
        return [LotRead.of(lot) for lot in found]

    return window.of(rt.read(go))


@router.get("/{member_id}/vouchers", dependencies=[needs(P.MEMBERS_READ)], tags=["vouchers"])
def vouchers(rt: Rt, who: Who, member_id: str, window: WindowIn) -> Page[VoucherRead]:
    return vouchers_page(rt, who, member_id, window)


def history_page(rt: Rt, who: Who, member_id: str, window: Window) -> Page[HistoryEntryRead]:
    """A member's history (also the member's own, ``/v1/me/history``)."""

    def go(uow: UnitOfWork) -> list[HistoryEntryRead]:
        member_for(uow, who, member_id)
        entries = member_history(uow, tenant_id=who.tenant_id, member_id=member_id)
        return [HistoryEntryRead.of(e) for e in entries]

    return window.of(rt.read(go))


def vouchers_page(rt: Rt, who: Who, member_id: str, window: Window) -> Page[VoucherRead]:
    """A member's vouchers (also the member's own, ``/v1/me/vouchers``)."""

    def go(uow: UnitOfWork) -> list[VoucherRead]:
        member_for(uow, who, member_id)
        found = list_vouchers(uow, tenant_id=who.tenant_id, member_id=member_id)
        return [VoucherRead.of(v) for v in found]

    return window.of(rt.read(go))
