"""Tiers: a member's tier and progress to the next one, the tier history, manual overrides."""

from __future__ import annotations

from fastapi import APIRouter

from treu.api.deps import Rt, Who, actor, member_for, needs
from treu.api.pagination import WindowIn
from treu.api.schemas import Page
from treu.api.schemas_tiers import TierChangeRead, TierOverrideCreate, TierStatusRead
from treu.auth.model import Permission as P
from treu.money import exponent
from treu.programmes.service import load_programme
from treu.storage.uow import UnitOfWork
from treu.tiers.service import override_tier, settings_of, tier_history_of, tier_status

router = APIRouter(prefix="/v1/members/{member_id}", tags=["tiers"])


@router.get("/tier", dependencies=[needs(P.MEMBERS_READ)])
def get_tier(rt: Rt, who: Who, member_id: str) -> TierStatusRead:
    """The member's tier, its perks, and the running period against the next tier (409
    ``tiers_not_configured`` for a programme without tiers)."""

    def go(uow: UnitOfWork) -> TierStatusRead:
        programme = load_programme(uow, member_for(uow, who, member_id).programme_id)
        metric = settings_of(programme).metric
        status = tier_status(uow, programme, member_id)
        return TierStatusRead.of(status, metric, exponent(programme.currency))

    return rt.read(go)


@router.get("/tier-history", dependencies=[needs(P.MEMBERS_READ)])
def get_tier_history(rt: Rt, who: Who, member_id: str, window: WindowIn) -> Page[TierChangeRead]:
    """Every change of the member's tier, oldest first: from, to, when and why."""

    def go(uow: UnitOfWork) -> list[TierChangeRead]:
        member_for(uow, who, member_id)
        return [TierChangeRead.of(c) for c in tier_history_of(uow, member_id)]

    return window.of(rt.read(go))


@router.post("/tier-override", dependencies=[needs(P.TIERS_OVERRIDE)])
def override(rt: Rt, who: Who, member_id: str, body: TierOverrideCreate) -> TierStatusRead:
    """Put the member into a tier by hand; ``reason`` is required (422 ``reason_required``) and
    recorded in the tier history with who did it. Setting the tier they have changes nothing."""

    def go(uow: UnitOfWork) -> TierStatusRead:
        programme = load_programme(uow, member_for(uow, who, member_id).programme_id)
        status = override_tier(
            uow,
            programme=programme,
            member_id=member_id,
            tier=body.tier,
            reason=body.reason,
            actor=actor(who),
        )
        return TierStatusRead.of(
            status, settings_of(programme).metric, exponent(programme.currency)
        )

    return rt.write(go)
