"""The wallet: balance and history, store credit and goodwill, payments at the till (at once,
or hold then capture/void), gift cards.

A payment's or credit's domain idempotency key is the request's Idempotency-Key: a till that
retries never pays twice, even after the stored response has expired.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from treu.api.deps import Rt, Who, actor, member_for, needs, programme_id_for
from treu.api.routers.rewards import IdempotencyKey
from treu.api.schemas import MemberSummaryRead, Money, _In, _Out
from treu.auth.model import Permission as P
from treu.storage.uow import UnitOfWork
from treu.wallet.gift_cards import (
    GiftCardView,
    gift_card_balance,
    issue_gift_card,
    load_gift_card,
    redeem_gift_card,
    spend_gift_card,
)
from treu.wallet.service import (
    WalletPayment,
    close_wallet_hold,
    credit_wallet,
    get_wallet,
    pay_with_wallet,
    wallet_history,
    wallet_hold_member,
)

router = APIRouter(tags=["wallet"])

HoldId = Annotated[str, Path(min_length=1, max_length=40, description="The wallet hold's id")]


class WalletRead(_Out):
    object: Literal["wallet"] = "wallet"
    member_id: str
    available: Money
    held: Money = Field(description="authorised at a till, not captured yet")


class WalletEntryRead(_Out):
    object: Literal["wallet_entry"] = "wallet_entry"
    transfer_id: str
    kind: str = Field(description="credit, cashback, adjust, pay, hold, void, reverse, …")
    amount: Money = Field(description="+ into the wallet, - out of it")
    posted_at: datetime
    reason: str | None


class WalletCreditCreate(_In):
    amount: Decimal = Field(gt=0)
    kind: Literal["store_credit", "goodwill"] = "store_credit"
    reason: str = Field(min_length=1, max_length=500)


class WalletCreditRead(_Out):
    object: Literal["wallet_credit"] = "wallet_credit"
    transfer_id: str
    member_id: str
    amount: Money
    replayed: bool = False


class WalletPaymentCreate(_In):
    amount: Decimal = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)
    hold: bool = Field(default=False, description="authorise only; capture or void the hold later")


class WalletPaymentRead(_Out):
    object: Literal["wallet_payment"] = "wallet_payment"
    id: str = Field(description="the transfer (paid at once) or the hold (hld_…)")
    member_id: str
    amount: Money
    status: str = Field(description="captured, held or voided")
    replayed: bool = False

    @classmethod
    def of(cls, p: WalletPayment) -> WalletPaymentRead:
        return cls(
            id=p.id,
            member_id=p.member_id,
            amount=Money(amount=p.amount, currency=p.currency),
            status=p.status,
            replayed=p.replayed,
        )


class PosWalletPaymentCreate(WalletPaymentCreate):
    token: str = Field(
        min_length=1,
        max_length=320,
        description="What the till scanned: a card number, kind:value or a member QR token",
    )
    programme: str | None = Field(
        default=None, max_length=64, description="programme key (only for a key without a store)"
    )


class PosWalletPaymentRead(_Out):
    object: Literal["pos_wallet_payment"] = "pos_wallet_payment"
    payment: WalletPaymentRead
    member: MemberSummaryRead


@router.get("/v1/members/{member_id}/wallet", dependencies=[needs(P.BALANCES_READ)])
def wallet(rt: Rt, who: Who, member_id: str) -> WalletRead:
    """The member's wallet money: available to pay with, and held by open authorisations."""

    def go(uow: UnitOfWork) -> WalletRead:
        member_for(uow, who, member_id)
        w = get_wallet(uow, tenant_id=who.tenant_id, member_id=member_id)
        return WalletRead(
            member_id=member_id,
            available=Money(amount=w.available, currency=w.currency),
            held=Money(amount=w.held, currency=w.currency),
        )

    return rt.read(go)


@router.get("/v1/members/{member_id}/wallet/history", dependencies=[needs(P.BALANCES_READ)])
def history(
    rt: Rt,
    who: Who,
    member_id: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[WalletEntryRead]:
    """Every change of the available wallet money, newest first."""

    def go(uow: UnitOfWork) -> list[WalletEntryRead]:
        member_for(uow, who, member_id)
        return [
            WalletEntryRead(
                transfer_id=e.transfer_id,
                kind=e.kind,
                amount=Money(amount=e.amount, currency=e.currency),
                posted_at=e.posted_at,
                reason=e.reason,
            )
            for e in wallet_history(uow, tenant_id=who.tenant_id, member_id=member_id, limit=limit)
        ]

    return rt.read(go)


@router.post(
    "/v1/members/{member_id}/wallet/credits",
    status_code=201,
    dependencies=[needs(P.WALLET_CREDIT)],
)
def credit(
    rt: Rt,
    who: Who,
    member_id: str,
    body: WalletCreditCreate,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> WalletCreditRead:
    """Store credit, or staff goodwill with a reason (booked against the adjustment account)."""
    key = idempotency_key or f"api-{uuid.uuid4()}"

    def go(uow: UnitOfWork) -> WalletCreditRead:
        member_for(uow, who, member_id)
        transfer_id, replayed = credit_wallet(
            uow,
            tenant_id=who.tenant_id,
            member_id=member_id,
            amount=body.amount,
            kind=body.kind,
            reason=body.reason,
            idempotency_key=key,
            actor=actor(who),
        )
        w = get_wallet(uow, tenant_id=who.tenant_id, member_id=member_id)
        return WalletCreditRead(
            transfer_id=transfer_id,
            member_id=member_id,
            amount=Money(amount=body.amount, currency=w.currency),
            replayed=replayed,
        )

    read = rt.write(go)
    if read.replayed:
        response.status_code = 200
    return read


@router.post(
    "/v1/members/{member_id}/wallet/payments",
    status_code=201,
    dependencies=[needs(P.WALLET_PAY)],
)
def pay(
    rt: Rt,
    who: Who,
    member_id: str,
    body: WalletPaymentCreate,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> WalletPaymentRead:
    """Pay with the wallet: at once, or (``hold``) authorised now and captured or voided later.
    Not enough money: 422 ``insufficient_funds`` and nothing changes."""
    key = idempotency_key or f"api-{uuid.uuid4()}"

    def go(uow: UnitOfWork) -> WalletPayment:
        member_for(uow, who, member_id)
        return pay_with_wallet(
            uow,
            tenant_id=who.tenant_id,
            member_id=member_id,
            amount=body.amount,
            currency=body.currency,
            idempotency_key=key,
            hold=body.hold,
        )

    read = WalletPaymentRead.of(rt.write(go))
    if read.replayed:
        response.status_code = 200
    return read


def _close(rt: Rt, who: Who, hold_id: str, *, capture: bool) -> WalletPaymentRead:
    def go(uow: UnitOfWork) -> WalletPayment:
        # another store's till sees "not found", before anything changes
        member_for(uow, who, wallet_hold_member(uow, tenant_id=who.tenant_id, hold_id=hold_id))
        return close_wallet_hold(uow, tenant_id=who.tenant_id, hold_id=hold_id, capture=capture)

    return WalletPaymentRead.of(rt.write(go))


@router.post("/v1/wallet/holds/{hold_id}/capture", dependencies=[needs(P.WALLET_PAY)])
def capture(
    rt: Rt, who: Who, hold_id: HoldId, idempotency_key: IdempotencyKey = None
) -> WalletPaymentRead:
    """Take the held money (the sale went through)."""
    return _close(rt, who, hold_id, capture=True)


@router.post("/v1/wallet/holds/{hold_id}/void", dependencies=[needs(P.WALLET_PAY)])
def void(
    rt: Rt, who: Who, hold_id: HoldId, idempotency_key: IdempotencyKey = None
) -> WalletPaymentRead:
    """Give the held money back to the wallet (the sale was abandoned)."""
    return _close(rt, who, hold_id, capture=False)


# --- gift cards ------------------------------------------------------------------------------
# The code travels in the body, never in a URL: URLs end up in logs, and a code is cash.


class GiftCardCreate(_In):
    amount: Decimal = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)


class GiftCardCode(_In):
    code: str = Field(min_length=1, max_length=64, description="as printed, dashes allowed")


class GiftCardLoad(GiftCardCode):
    amount: Decimal = Field(gt=0)


class GiftCardPayment(GiftCardCode):
    amount: Decimal = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)


class GiftCardRead(_Out):
    object: Literal["gift_card"] = "gift_card"
    id: str
    code: str | None = Field(description="only in the answer that issued the card")
    last4: str
    balance: Money
    status: str = Field(description="active, redeemed (moved into a wallet) or expired")
    expires_at: datetime | None
    replayed: bool = False

    @classmethod
    def of(cls, c: GiftCardView) -> GiftCardRead:
        return cls(
            id=c.id,
            code=c.code,
            last4=c.last4,
            balance=Money(amount=c.balance, currency=c.currency),
            status=c.status,
            expires_at=c.expires_at,
            replayed=c.replayed,
        )


class GiftCardRedemptionRead(_Out):
    object: Literal["gift_card_redemption"] = "gift_card_redemption"
    gift_card: GiftCardRead
    moved: Money = Field(description="what went into the member's wallet")


@router.post(
    "/v1/programmes/{programme}/gift-cards",
    status_code=201,
    dependencies=[needs(P.WALLET_CREDIT)],
)
def issue_card(
    rt: Rt,
    who: Who,
    programme: str,
    body: GiftCardCreate,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> GiftCardRead:
    """A gift card sold with ``amount`` on it; the answer carries its code, once."""
    key = idempotency_key or f"api-{uuid.uuid4()}"

    def go(uow: UnitOfWork) -> GiftCardView:
        return issue_gift_card(
            uow,
            tenant_id=who.tenant_id,
            programme_id=programme_id_for(uow, who, programme),
            amount=body.amount,
            currency=body.currency,
            idempotency_key=key,
        )

    read = GiftCardRead.of(rt.write(go))
    if read.replayed:
        response.status_code = 200
    return read


@router.post("/v1/gift-cards/balance", dependencies=[needs(P.BALANCES_READ)])
def card_balance(rt: Rt, who: Who, body: GiftCardCode) -> GiftCardRead:
    """What is on a card (``invalid_gift_card`` for a code that names none). Changes nothing."""
    return rt.read(
        lambda uow: GiftCardRead.of(gift_card_balance(uow, tenant_id=who.tenant_id, code=body.code))
    )


@router.post("/v1/gift-cards/loads", dependencies=[needs(P.WALLET_CREDIT)])
def load_card(
    rt: Rt, who: Who, body: GiftCardLoad, idempotency_key: IdempotencyKey = None
) -> GiftCardRead:
    """Top a card up (at most the programme's ``max_load`` on it)."""
    key = idempotency_key or f"api-{uuid.uuid4()}"
    return GiftCardRead.of(
        rt.write(
            lambda uow: load_gift_card(
                uow,
                tenant_id=who.tenant_id,
                code=body.code,
                amount=body.amount,
                idempotency_key=key,
            )
        )
    )


@router.post("/v1/gift-cards/payments", dependencies=[needs(P.WALLET_PAY)])
def pay_with_card(
    rt: Rt, who: Who, body: GiftCardPayment, idempotency_key: IdempotencyKey = None
) -> GiftCardRead:
    """Pay with a card at the till, all or part of it; short: 422 ``insufficient_funds``."""
    key = idempotency_key or f"api-{uuid.uuid4()}"
    return GiftCardRead.of(
        rt.write(
            lambda uow: spend_gift_card(
                uow,
                tenant_id=who.tenant_id,
                code=body.code,
                amount=body.amount,
                currency=body.currency,
                idempotency_key=key,
            )
        )
    )


@router.post("/v1/members/{member_id}/wallet/gift-cards", dependencies=[needs(P.WALLET_PAY)])
def redeem_card(
    rt: Rt, who: Who, member_id: str, body: GiftCardCode, idempotency_key: IdempotencyKey = None
) -> GiftCardRedemptionRead:
    """Move a card's whole balance into the member's wallet; the card is used up."""

    def go(uow: UnitOfWork) -> GiftCardRedemptionRead:
        member_for(uow, who, member_id)
        card, moved = redeem_gift_card(
            uow, tenant_id=who.tenant_id, member_id=member_id, code=body.code
        )
        return GiftCardRedemptionRead(
            gift_card=GiftCardRead.of(card), moved=Money(amount=moved, currency=card.currency)
        )

    return rt.write(go)
