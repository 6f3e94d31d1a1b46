"""Redemptions, vouchers (validate, consume, cancel) and manual adjustments.

A redemption's domain idempotency key is the request's Idempotency-Key: a till that retries a
redemption never buys a second voucher, even after the stored response has expired.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Response

from treu.api.deps import Rt, Who, actor, member_for, needs
from treu.api.ratelimit import rate_limited
from treu.api.schemas import (
    AdjustmentCreate,
    AdjustmentRead,
    RedemptionCreate,
    RedemptionRead,
    VoucherCancel,
    VoucherRead,
)
from treu.auth.model import Permission as P
from treu.auth.model import Principal
from treu.errors import ErrorCode, InvalidInput, NotFound
from treu.ledger.service import adjust_points
from treu.members.service import get_member
from treu.rewards.service import (
    VoucherView,
    cancel_voucher,
    consume_voucher,
    get_voucher,
    redeem_reward,
    validate_voucher,
)
from treu.storage.uow import UnitOfWork

router = APIRouter(prefix="/v1/members/{member_id}", tags=["rewards"])
voucher_router = APIRouter(prefix="/v1/vouchers", tags=["vouchers"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Makes the request happen once; send a new random value per operation",
    ),
]
Code = Annotated[str, Path(min_length=1, max_length=64, description="The voucher code")]


@router.post("/redemptions", status_code=201, dependencies=[needs(P.REDEEM)])
def redeem(
    rt: Rt,
    who: Who,
    member_id: str,
    body: RedemptionCreate,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> RedemptionRead:
    """Spend points on a reward: the points are taken and a voucher is issued, all or nothing."""
    key = idempotency_key or f"api-{uuid.uuid4()}"

    def go(uow: UnitOfWork) -> RedemptionRead:
        member_for(uow, who, member_id)
        result = redeem_reward(
            uow,
            tenant_id=who.tenant_id,
            member_id=member_id,
            reward_key=body.reward,
            idempotency_key=key,
        )
        return RedemptionRead(
            id=result.redemption_id,
            points=result.points,
            voucher=VoucherRead.of(result.voucher),
            replayed=result.replayed,
        )

    read = rt.write(go)
    if read.replayed:
        response.status_code = 200
    return read


@router.post("/adjustments", status_code=201, dependencies=[needs(P.POINTS_ADJUST)])
def adjust(
    rt: Rt,
    who: Who,
    member_id: str,
    body: AdjustmentCreate,
    idempotency_key: IdempotencyKey = None,
) -> AdjustmentRead:
    """A manual correction by staff, with a reason; the key's id is recorded as the actor."""
    if body.points == 0:
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT,
            "an adjustment of 0 points changes nothing",
            errors=[{"path": "points", "message": "must not be 0"}],
        )
    key = idempotency_key or f"api-{uuid.uuid4()}"

    def go(uow: UnitOfWork) -> str:
        member_for(uow, who, member_id)
        return adjust_points(
            uow,
            tenant_id=who.tenant_id,
            member_id=member_id,
            points=body.points,
            reason=body.reason,
            actor=actor(who),
            idempotency_key=f"adjust:{key}",
            corrects=body.corrects,
        )

    return AdjustmentRead(transfer_id=rt.write(go), member_id=member_id, points=body.points)


def _voucher(uow: UnitOfWork, who: Principal, code: str) -> VoucherView:
    """The voucher ``code`` of the caller's tenant (and store's programme, for a till)."""
    voucher = get_voucher(uow, tenant_id=who.tenant_id, code=code)
    if who.programme_id is not None:
        member = get_member(uow, voucher.member_id, tenant_id=who.tenant_id)
        if member.programme_id != who.programme_id:
            raise NotFound(ErrorCode.VOUCHER_NOT_FOUND, "no such voucher")
    return voucher


@voucher_router.get("/{code}", dependencies=[needs(P.VOUCHERS_READ)])
def get_one(rt: Rt, who: Who, code: Code) -> VoucherRead:
    """A voucher in any state (issued, used, expired, cancelled)."""
    return rt.read(lambda uow: VoucherRead.of(_voucher(uow, who, code)))


@voucher_router.post(
    "/{code}/validate", dependencies=[needs(P.VOUCHERS_USE), rate_limited("vouchers")]
)
def validate(rt: Rt, who: Who, code: Code) -> VoucherRead:
    """200 if the voucher can be used now; otherwise the reason (``voucher_already_used``,
    ``voucher_expired``, ``voucher_cancelled``) as an error. Changes nothing."""

    def go(uow: UnitOfWork) -> VoucherRead:
        _voucher(uow, who, code)
        return VoucherRead.of(validate_voucher(uow, tenant_id=who.tenant_id, code=code))

    return rt.read(go)


@voucher_router.post(
    "/{code}/consume", dependencies=[needs(P.VOUCHERS_USE), rate_limited("vouchers")]
)
def consume(rt: Rt, who: Who, code: Code) -> VoucherRead:
    """Use the voucher, once (a till's key records its store)."""

    def go(uow: UnitOfWork) -> VoucherRead:
        _voucher(uow, who, code)
        used = consume_voucher(uow, tenant_id=who.tenant_id, code=code, store_id=who.store_id)
        return VoucherRead.of(used)

    return rt.write(go)


@voucher_router.post("/{code}/cancel", dependencies=[needs(P.VOUCHERS_CANCEL)])
def cancel(rt: Rt, who: Who, code: Code, body: VoucherCancel | None = None) -> VoucherRead:
    """Cancel an unused voucher: the points go back to the lots they came from."""
    reason = body.reason if body else VoucherCancel().reason

    def go(uow: UnitOfWork) -> VoucherRead:
        _voucher(uow, who, code)
        done = cancel_voucher(
            uow, tenant_id=who.tenant_id, code=code, actor=actor(who), reason=reason
        )
        return VoucherRead.of(done)

    return rt.write(go)
