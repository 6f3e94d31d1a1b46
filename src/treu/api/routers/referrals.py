"""Referrals: a member's code, link and referrals; the review queue of held referrals.

A friend enrols with a code through ``POST /v1/programmes/{programme}/members``
(``referral_code``, and ``client_address`` for the fraud checks).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from treu.api.deps import Rt, Who, actor, member_for, needs, programme_id_for
from treu.api.schemas import EffectRead, _Out
from treu.auth.model import Permission as P
from treu.referrals.model import ReferralStatus
from treu.referrals.service import (
    ReferralCard,
    ReferralView,
    approve_referral,
    list_referrals,
    referral_card,
    reject_referral,
)
from treu.storage.uow import UnitOfWork

router = APIRouter(tags=["referrals"])


class ReferralRead(_Out):
    object: Literal["referral"] = "referral"
    id: str
    referrer_id: str
    friend_id: str
    status: ReferralStatus
    reasons: list[str] = Field(description="why it is held for review")
    created_at: datetime
    converted_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    effects: list[EffectRead] = Field(default_factory=list)

    @classmethod
    def of(cls, v: ReferralView, effects: list[EffectRead] | None = None) -> ReferralRead:
        return cls(
            id=v.id,
            referrer_id=v.referrer_id,
            friend_id=v.friend_id,
            status=v.status,
            reasons=v.reasons,
            created_at=v.created_at,
            converted_at=v.converted_at,
            decided_at=v.decided_at,
            decided_by=v.decided_by,
            effects=effects or [],
        )


class ReferralCardRead(_Out):
    object: Literal["referral_card"] = "referral_card"
    member_id: str
    code: str
    link: str | None
    referrals: list[ReferralRead]

    @classmethod
    def of(cls, c: ReferralCard) -> ReferralCardRead:
        return cls(
            member_id=c.member_id,
            code=c.code,
            link=c.link,
            referrals=[ReferralRead.of(r) for r in c.referrals],
        )


@router.get("/v1/members/{member_id}/referral", dependencies=[needs(P.MEMBERS_READ)])
def card(rt: Rt, who: Who, member_id: str) -> ReferralCardRead:
    """The member's referral code and link (made on first request if need be), and the friends
    they referred with each referral's status."""

    def go(uow: UnitOfWork) -> ReferralCardRead:
        member_for(uow, who, member_id)
        return ReferralCardRead.of(referral_card(uow, tenant_id=who.tenant_id, member_id=member_id))

    return rt.write(go)


@router.get("/v1/programmes/{programme}/referrals", dependencies=[needs(P.REFERRALS_REVIEW)])
def referrals(
    rt: Rt,
    who: Who,
    programme: str,
    status: Annotated[ReferralStatus | None, Query(description="held: the review queue")] = None,
) -> list[ReferralRead]:
    """The programme's referrals, oldest first."""

    def go(uow: UnitOfWork) -> list[ReferralRead]:
        programme_id = programme_id_for(uow, who, programme)
        found = list_referrals(uow, programme_id=programme_id, status=status)
        return [ReferralRead.of(r) for r in found]

    return rt.read(go)


@router.post("/v1/referrals/{referral_id}/approve", dependencies=[needs(P.REFERRALS_REVIEW)])
def approve(rt: Rt, who: Who, referral_id: str) -> ReferralRead:
    """A held referral is fine: rewarded now if the friend's qualifying purchase happened,
    otherwise when it does."""

    def go(uow: UnitOfWork) -> ReferralRead:
        view, effects = approve_referral(
            uow, tenant_id=who.tenant_id, referral_id=referral_id, actor=actor(who)
        )
        return ReferralRead.of(view, [EffectRead.of(e) for e in effects])

    return rt.write(go)


@router.post("/v1/referrals/{referral_id}/reject", dependencies=[needs(P.REFERRALS_REVIEW)])
def reject(rt: Rt, who: Who, referral_id: str) -> ReferralRead:
    """A held referral is farming: nobody is rewarded for it."""

    def go(uow: UnitOfWork) -> ReferralRead:
        view = reject_referral(
            uow, tenant_id=who.tenant_id, referral_id=referral_id, actor=actor(who)
        )
        return ReferralRead.of(view)

    return rt.write(go)
