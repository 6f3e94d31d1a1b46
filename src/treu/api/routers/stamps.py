"""Stamp cards: a member's current and completed cards (staff, tills, and the member)."""

from __future__ import annotations

from fastapi import APIRouter

from treu.api.deps import Rt, Who, member_for, needs
from treu.api.schemas_stamps import StampCardsRead
from treu.auth.model import Permission as P
from treu.errors import ErrorCode, Forbidden
from treu.stamps.service import member_stamp_cards
from treu.storage.uow import UnitOfWork

router = APIRouter(tags=["stamp cards"])


@router.get("/v1/members/{member_id}/stamp-cards", dependencies=[needs(P.BALANCES_READ)])
def cards(rt: Rt, who: Who, member_id: str) -> StampCardsRead:
    """The current card of every card type ("3 of 10"; an untouched type shows 0) and the
    completed cards with their vouchers."""

    def go(uow: UnitOfWork) -> StampCardsRead:
        member = member_for(uow, who, member_id)
        found = member_stamp_cards(uow, tenant_id=who.tenant_id, member_id=member.id)
        return StampCardsRead.of(member.id, found)

    return rt.read(go)


@router.get("/v1/me/stamp-cards", dependencies=[needs(P.ME_READ)])
def my_cards(rt: Rt, who: Who) -> StampCardsRead:
    """The member's own stamp cards (as ``/v1/members/{member_id}/stamp-cards``)."""
    if who.member_id is None:  # needs(P.ME_READ) lets only members in; this keeps it so
        raise Forbidden(ErrorCode.FORBIDDEN, "only a member token has a /v1/me")
    return cards(rt, who, who.member_id)
