"""Resources made for the till: one call per thing a cashier does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Response

from treu.activities.service import ActivityResult, record_purchase
from treu.api.deps import Rt, Runtime, Who, needs, programme_id_for
from treu.api.ratelimit import rate_limited
from treu.api.routers.activities import activity_read, purchase_of
from treu.api.routers.rewards import IdempotencyKey
from treu.api.routers.wallet import (
    PosWalletPaymentCreate,
    PosWalletPaymentRead,
    WalletPaymentRead,
)
from treu.api.schemas import (
    BalancesRead,
    MembershipPerksRead,
    MemberSummaryRead,
    Money,
    PosPurchaseCreate,
    PosPurchaseRead,
    PosRedeemCreate,
    PosRedemptionRead,
    PosScanCreate,
    RedemptionRead,
    VoucherRead,
)
from treu.api.schemas_stamps import StampCardRead
from treu.api.schemas_tiers import TierSummaryRead
from treu.auth.member_login import member_id_of_qr_token
from treu.auth.model import Permission as P
from treu.auth.model import Principal
from treu.auth.tokens import is_qr_token
from treu.errors import ErrorCode, InvalidInput, Rejected
from treu.ledger.service import get_balances
from treu.members.model import Member
from treu.members.service import find_member, get_member
from treu.memberships.service import list_memberships
from treu.programmes.service import load_programme
from treu.rewards.model import VoucherStatus
from treu.rewards.service import RedemptionResult, consume_voucher, list_vouchers, redeem_reward
from treu.stamps.service import member_stamp_cards
from treu.storage.uow import UnitOfWork
from treu.tiers.service import current_tier
from treu.wallet.service import WalletPayment, get_wallet, pay_with_wallet

router = APIRouter(prefix="/v1/pos", tags=["pos"])


@router.post("/scan", dependencies=[needs(P.POS_SCAN), rate_limited("scans")])
def scan(rt: Rt, who: Who, body: PosScanCreate) -> MemberSummaryRead:
    """The member behind a scanned card number, ``kind:value`` or member QR token (from the
    portal, ``tqr1.…``; expired or tampered: 422 ``invalid_token``): name, status, balances and
    the vouchers usable now. Changes nothing."""

    def go(uow: UnitOfWork) -> MemberSummaryRead:
        return _summary(uow, who, _scanned(uow, rt, who, body.token, body.programme))

    return rt.read(go)


@router.post("/purchases", status_code=201, dependencies=[needs(P.PURCHASES_WRITE)])
def purchase(rt: Rt, who: Who, body: PosPurchaseCreate, response: Response) -> PosPurchaseRead:
    """Scan and purchase in one call: the purchase is recorded for the member behind ``token``
    (a guest purchase without one), and the answer is what the till shows next — the points
    and why, and the member's balances and usable vouchers after it."""

    def go(uow: UnitOfWork) -> tuple[ActivityResult, str | None]:
        programme_id = _programme(uow, who, body.programme)
        member_id = None
        if body.token is not None:
            member_id = _scanned(uow, rt, who, body.token, body.programme).id
        result = record_purchase(
            uow, programme_id=programme_id, purchase=purchase_of(who, body), member=member_id
        )
        return result, member_id

    result, member_id = rt.write(go)
    summary = None
    if member_id is not None:
        summary = rt.read(
            lambda uow: _summary(uow, who, get_member(uow, member_id, tenant_id=who.tenant_id))
        )
    return PosPurchaseRead(activity=activity_read(result, response), member=summary)


@router.post("/redemptions", status_code=201, dependencies=[needs(P.REDEEM), rate_limited("scans")])
def redeem(
    rt: Rt,
    who: Who,
    body: PosRedeemCreate,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> PosRedemptionRead:
    """Scan, redeem and use in one call: the member behind ``token`` spends points on
    ``reward`` and the voucher is used at this till at once. With the same ``Idempotency-Key``
    a retry answers the first result."""
    key = idempotency_key or f"pos-{uuid.uuid4()}"

    def go(uow: UnitOfWork) -> tuple[RedemptionResult, str]:
        member = _scanned(uow, rt, who, body.token, body.programme, spending=True)
        result = redeem_reward(
            uow,
            tenant_id=who.tenant_id,
            member_id=member.id,
            reward_key=body.reward,
            idempotency_key=key,
        )
        return result, member.id

    result, member_id = rt.write(go)
    voucher = result.voucher
    if voucher.status is VoucherStatus.ISSUED:  # a replay finds it used already
        voucher = rt.write(
            lambda uow: consume_voucher(
                uow, tenant_id=who.tenant_id, code=result.voucher.code, store_id=who.store_id
            )
        )
    if result.replayed:
        response.status_code = 200
    summary = rt.read(
        lambda uow: _summary(uow, who, get_member(uow, member_id, tenant_id=who.tenant_id))
    )
    redemption = RedemptionRead(
        id=result.redemption_id,
        points=result.points,
        voucher=VoucherRead.of(voucher),
        replayed=result.replayed,
    )
    return PosRedemptionRead(redemption=redemption, member=summary)


@router.post("/wallet-payments", status_code=201, dependencies=[needs(P.WALLET_PAY)])
def wallet_payment(
    rt: Rt,
    who: Who,
    body: PosWalletPaymentCreate,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> PosWalletPaymentRead:
    """Scan and pay with the wallet in one call (``hold``: authorise only, capture or void
    with /v1/wallet/holds/…). Not enough money: 422 ``insufficient_funds``, nothing changes.
    With the same ``Idempotency-Key`` a retry answers the first payment."""
    key = idempotency_key or f"pos-{uuid.uuid4()}"

    def go(uow: UnitOfWork) -> WalletPayment:
        member = _scanned(uow, rt, who, body.token, body.programme, spending=True)
        return pay_with_wallet(
            uow,
            tenant_id=who.tenant_id,
            member_id=member.id,
            amount=body.amount,
            currency=body.currency,
            idempotency_key=key,
            hold=body.hold,
        )

    paid = rt.write(go)
    if paid.replayed:
        response.status_code = 200
    summary = rt.read(
        lambda uow: _summary(uow, who, get_member(uow, paid.member_id, tenant_id=who.tenant_id))
    )
    return PosWalletPaymentRead(payment=WalletPaymentRead.of(paid), member=summary)


def _scanned(
    uow: UnitOfWork,
    rt: Runtime,
    who: Principal,
    token: str,
    programme: str | None,
    *,
    spending: bool = False,
) -> Member:
    """The member behind ``token``. ``spending`` (redeem, pay): a printed card number or a typed
    identifier can be copied, so unless the programme allows ``static_cards: earn_and_spend``
    only the portal's rotating QR code spends (422 ``qr_code_required``)."""
    programme_id = _programme(uow, who, programme)
    reference = _reference(uow, rt, who, token)
    if (
        spending
        and not is_qr_token(token.strip())
        and load_programme(uow, programme_id).document.static_cards == "earn_only"
    ):
        raise Rejected(
            ErrorCode.QR_CODE_REQUIRED,
            "a card number earns points only: to redeem or pay, scan the member's QR code "
            "from the member portal",
        )
    return find_member(uow, programme_id=programme_id, reference=reference)


def _summary(uow: UnitOfWork, who: Principal, member: Member) -> MemberSummaryRead:
    balances = get_balances(uow, tenant_id=who.tenant_id, member_id=member.id)
    now = uow.now()
    usable = [
        v
        for v in list_vouchers(uow, tenant_id=who.tenant_id, member_id=member.id)
        if v.status is VoucherStatus.ISSUED and (v.expires_at is None or now < v.expires_at)
    ]
    usable.sort(key=lambda v: (v.expires_at or datetime.max.replace(tzinfo=UTC), v.id))
    return MemberSummaryRead(
        member_id=member.id,
        programme_id=member.programme_id,
        name=member.name,
        status=member.status.value,
        balances=BalancesRead.of(member.id, balances),
        vouchers=[VoucherRead.of(v) for v in usable],
        stamp_cards=[
            StampCardRead.of(c)
            for c in member_stamp_cards(uow, tenant_id=who.tenant_id, member_id=member.id)
            if c.status == "open"
        ],
        tier=_tier(uow, member),
        memberships=[
            MembershipPerksRead(
                plan=m.plan.key,
                name=m.plan.name,
                status=m.status.value,
                perks=m.plan.perks.labels(),
                free_shipping=m.plan.perks.free_shipping,
            )
            for m in list_memberships(uow, tenant_id=who.tenant_id, member_id=member.id)
            if m.status.has_perks
        ],
        wallet=_wallet(uow, who, member),
    )


def _wallet(uow: UnitOfWork, who: Principal, member: Member) -> Money:
    found = get_wallet(uow, tenant_id=who.tenant_id, member_id=member.id)
    return Money(amount=found.available, currency=found.currency)


def _tier(uow: UnitOfWork, member: Member) -> TierSummaryRead | None:
    tier = current_tier(uow, load_programme(uow, member.programme_id), member.id)
    return None if tier is None else TierSummaryRead.of(tier)


def _programme(uow: UnitOfWork, who: Principal, key: str | None) -> str:
    if key is not None:
        return programme_id_for(uow, who, key)
    if who.programme_id is not None:  # a till's key: its store's programme
        return who.programme_id
    raise InvalidInput(
        ErrorCode.VALIDATION_ERROR,
        "this key is not bound to a store: name the programme",
        errors=[{"path": "programme", "message": "required for a key without a store"}],
    )


def _reference(uow: UnitOfWork, rt: Runtime, who: Principal, token: str) -> str:
    """A QR token from the member portal names its member (once its signature and time step
    check out); a printed card carries its number only; anything else says what it is
    (``kind:value``)."""
    token = token.strip()
    if is_qr_token(token):
        return member_id_of_qr_token(
            uow, tenant_id=who.tenant_id, token=token, server_secret=rt.secret
        )
    if token.startswith("mbr_") or ":" in token:  # a member id (a wallet pass), kind:value
        return token
    return f"card:{token}"
