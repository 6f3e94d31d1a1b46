"""Activities: purchases, returns, actions, receipt claims, and the earn simulation.

Every activity is unique by its external id: sending the same purchase again answers 200 with
the first result and ``replayed: true`` (a new one answers 201), with or without an
Idempotency-Key.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from treu.activities.model import ActionIn, PurchaseIn, ReturnIn
from treu.activities.service import (
    ActivityResult,
    claim_purchase,
    get_activity,
    record_action,
    record_purchase,
    record_return,
    simulate_purchase,
)
from treu.api.deps import Rt, Who, needs, programme_id_for
from treu.api.schemas import (
    ActionCreate,
    ActivityRead,
    AwardRead,
    ClaimCreate,
    EffectRead,
    PurchaseCreate,
    SimulationCreate,
    SimulationRead,
)
from treu.auth.model import Permission as P
from treu.auth.model import Principal
from treu.errors import ErrorCode, Forbidden
from treu.storage.uow import UnitOfWork

router = APIRouter(prefix="/v1/programmes/{programme}", tags=["activities"])
activity_router = APIRouter(prefix="/v1/activities", tags=["activities"])


def activity_read(result: ActivityResult, response: Response | None = None) -> ActivityRead:
    if response is not None and result.replayed:
        response.status_code = 200
    return ActivityRead(
        id=result.activity_id,
        type=result.type,
        external_id=result.external_id,
        member_id=result.member_id,
        points=result.points,
        awards=[
            AwardRead(rule_key=a.rule_key, points=a.points, explanation=a.explanation)
            for a in result.awards
        ],
        effects=[EffectRead.of(e) for e in result.effects],
        replayed=result.replayed,
    )


def purchase_of(who: Principal, body: PurchaseIn) -> PurchaseIn:
    """The purchase without the API's own fields; a till's key fills in (and insists on) its
    store."""
    fields = {name: getattr(body, name) for name in PurchaseIn.model_fields}
    if who.store_key is not None:
        if fields["store"] not in (None, who.store_key):
            raise Forbidden(
                ErrorCode.FORBIDDEN, f"this key records purchases of store {who.store_key!r} only"
            )
        fields["store"] = who.store_key
        fields["channel"] = fields["channel"] or "pos"
    # already validated as the subclass: no second validation of every line
    given = set(body.model_fields_set) & set(PurchaseIn.model_fields)
    return PurchaseIn.model_construct(given, **fields)


@router.post("/purchases", status_code=201, dependencies=[needs(P.PURCHASES_WRITE)])
def purchase(
    rt: Rt, who: Who, programme: str, body: PurchaseCreate, response: Response
) -> ActivityRead:
    """Record a purchase by a member (``member``) or a guest; points follow the rules in force
    when it happened (``occurred_at``, default now)."""

    def go(uow: UnitOfWork) -> ActivityResult:
        pid = programme_id_for(uow, who, programme)
        return record_purchase(
            uow, programme_id=pid, purchase=purchase_of(who, body), member=body.member
        )

    return activity_read(rt.write(go), response)


@router.post("/returns", status_code=201, dependencies=[needs(P.ACTIVITIES_WRITE)])
def return_(rt: Rt, who: Who, programme: str, body: ReturnIn, response: Response) -> ActivityRead:
    """A full or partial return of a purchase (by its external id): its points are recomputed
    on what is left and the difference taken back under the programme's return policy."""

    def go(uow: UnitOfWork) -> ActivityResult:
        pid = programme_id_for(uow, who, programme)
        return record_return(uow, programme_id=pid, ret=body)

    return activity_read(rt.write(go), response)


@router.post("/actions", status_code=201, dependencies=[needs(P.ACTIVITIES_WRITE)])
def action(
    rt: Rt, who: Who, programme: str, body: ActionCreate, response: Response
) -> ActivityRead:
    fields = {name: getattr(body, name) for name in ActionIn.model_fields}
    act = ActionIn.model_construct(set(body.model_fields_set) - {"member"}, **fields)

    def go(uow: UnitOfWork) -> ActivityResult:
        pid = programme_id_for(uow, who, programme)
        return record_action(uow, programme_id=pid, member=body.member, action=act)

    return activity_read(rt.write(go), response)


@router.post("/claims", status_code=201, dependencies=[needs(P.ACTIVITIES_WRITE)])
def claim(rt: Rt, who: Who, programme: str, body: ClaimCreate, response: Response) -> ActivityRead:
    """A member claims a guest purchase (their receipt) within the programme's claim window."""

    def go(uow: UnitOfWork) -> ActivityResult:
        pid = programme_id_for(uow, who, programme)
        return claim_purchase(
            uow, programme_id=pid, member=body.member, external_id=body.external_id
        )

    return activity_read(rt.write(go), response)


@router.post("/simulations", dependencies=[needs(P.SIMULATE)])
def simulate(rt: Rt, who: Who, programme: str, body: SimulationCreate) -> SimulationRead:
    """What would this basket earn, and why? Writes nothing."""

    def go(uow: UnitOfWork) -> SimulationRead:
        pid = programme_id_for(uow, who, programme)
        fields = {name: getattr(body, name) for name in PurchaseIn.model_fields}
        basket = PurchaseIn.model_construct(set(body.model_fields_set) - {"member"}, **fields)
        awards = simulate_purchase(uow, programme_id=pid, purchase=basket, member=body.member)
        lines = [
            AwardRead(rule_key=a.rule_key, points=a.points, explanation=a.explanation)
            for a in awards
        ]
        return SimulationRead(points=sum(a.points for a in lines), awards=lines)

    return rt.read(go)


@activity_router.get("/{activity_id}", dependencies=[needs(P.ACTIVITIES_READ)])
def get_one(rt: Rt, who: Who, activity_id: str) -> ActivityRead:
    # (store-bound keys are pos keys, which never read activities by id)
    return activity_read(
        rt.read(lambda uow: get_activity(uow, tenant_id=who.tenant_id, activity_id=activity_id))
    )
