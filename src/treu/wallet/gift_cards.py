"""Gift cards: issue, load, look up by code, spend, move into a member's wallet, expire.

Each card owns a wallet ``available`` account with no member (account id derived from the card's
id like a member's), so its money lives in the double-entry ledger: sold or topped up
(issuance → card), spent at the till (card → redemption), moved into a wallet (card → member),
expired (card → breakage). The ledger's guarded update keeps the card at zero or more
(``insufficient_funds``), the accounts CHECK backs it. A card is found by the SHA-256 of its
code; the code itself is shown once, when the card is issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, insert, select, update

from treu.errors import ErrorCode, InvalidInput, Rejected
from treu.ids import new_id
from treu.ledger import postings
from treu.ledger.model import (
    MemberAccount,
    SystemAccount,
    TransferKind,
    Unit,
    add_months,
    member_account_id,
    start_of_day,
)
from treu.ledger.tables import accounts, transfers
from treu.members.service import get_member
from treu.money import from_minor, to_minor
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork
from treu.wallet.model import hash_gift_card_code, new_gift_card_code
from treu.wallet.tables import gift_cards

W = Unit.WALLET


@dataclass(frozen=True)
class GiftCardView:
    id: str
    last4: str
    balance: Decimal
    currency: str
    status: str
    expires_at: datetime | None
    code: str | None = None  # only when issued just now
    replayed: bool = False


def issue_gift_card(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    programme_id: str,
    amount: Decimal,
    currency: str,
    idempotency_key: str,
) -> GiftCardView:
    """A card sold with ``amount`` on it, expiring per the programme's gift card policy. The code
    is in the answer once; a retried key answers the card without it."""
    programme = load_programme(uow, programme_id)
    minor = _amount(programme, amount, currency)
    key = f"gift-card:{idempotency_key}"
    first = uow.conn.execute(
        select(transfers.c.credit_account_id).where(
            transfers.c.tenant_id == tenant_id, transfers.c.idempotency_key == key
        )
    ).scalar()
    if first is not None:
        row = uow.conn.execute(select(gift_cards).where(gift_cards.c.account_id == first)).one()
        return _view(uow, programme, row, replayed=True)
    now = uow.now()
    card_id, code = new_id("gift_card"), new_gift_card_code()
    account_id = member_account_id(card_id, MemberAccount.AVAILABLE, W)
    uow.conn.execute(
        insert(accounts).values(
            id=account_id,
            tenant_id=tenant_id,
            programme_id=programme.id,
            member_id=None,
            kind=MemberAccount.AVAILABLE.value,
            unit=W.value,
            balance=0,
        )
    )
    months = programme.document.wallet.gift_cards.expiry_months
    expires_at = None
    if months is not None:
        last_day = add_months(programme.local_date(now), months)
        expires_at = start_of_day(last_day + timedelta(days=1), programme.tz)
    uow.conn.execute(
        insert(gift_cards).values(
            id=card_id,
            tenant_id=tenant_id,
            programme_id=programme.id,
            code_hash=hash_gift_card_code(code),
            last4=code[-4:],
            account_id=account_id,
            status="active",
            issued_at=now,
            expires_at=expires_at,
        )
    )
    _load(uow, programme, account_id, minor, key, now)
    uow.publish(
        Event(tenant_id, "gift_card.issued", {"gift_card_id": card_id, **_money(programme, minor)})
    )
    uow.commit()
    row = uow.conn.execute(select(gift_cards).where(gift_cards.c.id == card_id)).one()
    view = _view(uow, programme, row)
    return GiftCardView(**{**view.__dict__, "code": code})


def gift_card_balance(uow: UnitOfWork, *, tenant_id: str, code: str) -> GiftCardView:
    row = _card(uow, tenant_id, code)
    return _view(uow, load_programme(uow, row.programme_id), row)


def load_gift_card(
    uow: UnitOfWork, *, tenant_id: str, code: str, amount: Decimal, idempotency_key: str
) -> GiftCardView:
    """Top a card up, up to the policy's ``max_load`` balance (``invalid_amount`` beyond)."""
    row = _usable(uow, tenant_id, code)
    programme = load_programme(uow, row.programme_id)
    minor = _amount(programme, amount, programme.currency)
    key = f"gift-card-load:{idempotency_key}"
    if not _seen(uow, tenant_id, key):
        _load(uow, programme, row.account_id, minor, key, uow.now())
        uow.publish(
            Event(
                tenant_id,
                "gift_card.loaded",
                {"gift_card_id": row.id, **_money(programme, minor)},
            )
        )
        uow.commit()
    return _view(uow, programme, row)


def spend_gift_card(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    code: str,
    amount: Decimal,
    currency: str,
    idempotency_key: str,
) -> GiftCardView:
    """Pay with the card at the till, all or part of its balance; short: ``insufficient_funds``
    and nothing changes."""
    row = _usable(uow, tenant_id, code)
    programme = load_programme(uow, row.programme_id)
    minor = _amount(programme, amount, currency)
    key = f"gift-card-pay:{idempotency_key}"
    replayed = _seen(uow, tenant_id, key)
    if not replayed:
        postings.post(
            uow,
            programme,
            kind=TransferKind.PAY,
            debit=row.account_id,
            credit=postings.system_acc(programme, SystemAccount.REDEMPTION, W),
            amount=minor,
            key=key,
            member_id=None,
            at=uow.now(),
            unit=W,
        )
        uow.publish(
            Event(
                tenant_id, "gift_card.spent", {"gift_card_id": row.id, **_money(programme, minor)}
            )
        )
        uow.commit()
    return _view(uow, programme, row, replayed=replayed)


def redeem_gift_card(
    uow: UnitOfWork, *, tenant_id: str, member_id: str, code: str
) -> tuple[GiftCardView, Decimal]:
    """Move a card's whole balance into a member's wallet; the card is used up. Redeeming it
    again into the same wallet answers the first result."""
    row = _card(uow, tenant_id, code)
    member = get_member(uow, member_id, tenant_id=tenant_id)
    programme = load_programme(uow, row.programme_id)
    if member.programme_id != row.programme_id:
        raise InvalidInput(
            ErrorCode.INVALID_GIFT_CARD, "this gift card belongs to another programme"
        )
    key = f"gift-card-redeem:{row.id}"
    if row.status == "redeemed" and row.redeemed_by == member_id:
        moved = uow.conn.execute(
            select(transfers.c.amount).where(
                transfers.c.tenant_id == tenant_id, transfers.c.idempotency_key == key
            )
        ).scalar()
        return _view(uow, programme, row, replayed=True), from_minor(moved or 0, programme.currency)
    row = _usable(uow, tenant_id, code)
    lock_members(uow, member_id)
    now = uow.now()
    amount = _card_balance(uow, row.account_id)
    if amount:
        postings.post(
            uow,
            programme,
            kind=TransferKind.REDEEM_CARD,
            debit=row.account_id,
            credit=postings.member_acc(member_id, MemberAccount.AVAILABLE, W),
            amount=amount,
            key=key,
            member_id=member_id,
            at=now,
            unit=W,
        )
    uow.conn.execute(
        update(gift_cards)
        .where(gift_cards.c.id == row.id)
        .values(status="redeemed", redeemed_by=member_id, closed_at=now)
    )
    uow.publish(
        Event(
            tenant_id,
            "gift_card.redeemed",
            {"gift_card_id": row.id, "member_id": member_id, **_money(programme, amount)},
        )
    )
    uow.commit()
    closed = uow.conn.execute(select(gift_cards).where(gift_cards.c.id == row.id)).one()
    return _view(uow, programme, closed), from_minor(amount, programme.currency)


def expire_gift_cards(uow: UnitOfWork, *, programme_id: str, at: datetime) -> int:
    """Cards past their date: what is left goes to breakage. Idempotent (status)."""
    programme = load_programme(uow, programme_id)
    due = uow.conn.execute(
        select(gift_cards)
        .where(
            gift_cards.c.programme_id == programme_id,
            gift_cards.c.status == "active",
            gift_cards.c.expires_at <= at,
        )
        .order_by(gift_cards.c.id)
    ).all()
    for row in due:
        left = _card_balance(uow, row.account_id)
        if left:
            postings.post(
                uow,
                programme,
                kind=TransferKind.EXPIRE,
                debit=row.account_id,
                credit=postings.system_acc(programme, SystemAccount.BREAKAGE, W),
                amount=left,
                key=f"gift-card-expire:{row.id}",
                member_id=None,
                at=at,
                unit=W,
            )
        uow.conn.execute(
            update(gift_cards)
            .where(gift_cards.c.id == row.id)
            .values(status="expired", closed_at=at)
        )
        uow.publish(
            Event(
                programme.tenant_id,
                "gift_card.expired",
                {"gift_card_id": row.id, **_money(programme, left)},
            )
        )
    return len(due)


# --- helpers -----------------------------------------------------------------------------


def _card(uow: UnitOfWork, tenant_id: str, code: str) -> Row[Any]:
    row = uow.conn.execute(
        select(gift_cards).where(
            gift_cards.c.tenant_id == tenant_id,
            gift_cards.c.code_hash == hash_gift_card_code(code),
        )
    ).first()
    if row is None:
        # 422, not 404: a mistyped code is bad input, and the answer must not help guessing
        raise InvalidInput(
            ErrorCode.INVALID_GIFT_CARD,
            "no gift card has this code",
            errors=[{"path": "code", "message": "no gift card has this code"}],
        )
    return row


def _usable(uow: UnitOfWork, tenant_id: str, code: str) -> Row[Any]:
    row = _card(uow, tenant_id, code)
    expired = row.expires_at is not None and row.expires_at <= uow.now()
    if row.status == "expired" or expired:
        raise Rejected(ErrorCode.GIFT_CARD_EXPIRED, "this gift card has expired")
    if row.status == "redeemed":
        raise Rejected(
            ErrorCode.INSUFFICIENT_FUNDS, "this gift card was moved into a wallet: it is empty"
        )
    return row


def _load(
    uow: UnitOfWork, programme: Programme, account_id: str, minor: int, key: str, at: datetime
) -> None:
    postings.post(
        uow,
        programme,
        kind=TransferKind.LOAD,
        debit=postings.system_acc(programme, SystemAccount.ISSUANCE, W),
        credit=account_id,
        amount=minor,
        key=key,
        member_id=None,
        at=at,
        unit=W,
    )
    limit = programme.document.wallet.gift_cards.max_load
    # checked after the guarded update, in the same transaction: the row stays locked to
    # commit, so two loads at once cannot both pass the limit
    if _card_balance(uow, account_id) > to_minor(limit, programme.currency):
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT,
            f"a gift card holds at most {limit} {programme.currency}",
            errors=[{"path": "amount", "message": f"the card would hold more than {limit}"}],
        )


def _card_balance(uow: UnitOfWork, account_id: str) -> int:
    return int(
        uow.conn.execute(select(accounts.c.balance).where(accounts.c.id == account_id)).scalar_one()
    )


def _seen(uow: UnitOfWork, tenant_id: str, key: str) -> bool:
    return (
        uow.conn.execute(
            select(transfers.c.id).where(
                transfers.c.tenant_id == tenant_id, transfers.c.idempotency_key == key
            )
        ).first()
        is not None
    )


def _amount(programme: Programme, amount: Decimal, currency: str) -> int:
    if currency.upper() != programme.currency:
        raise InvalidInput(
            ErrorCode.CURRENCY_MISMATCH,
            f"gift cards hold {programme.currency}, not {currency}",
            errors=[{"path": "currency", "message": f"must be {programme.currency}"}],
        )
    minor = to_minor(amount, programme.currency)
    if minor <= 0:
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT,
            "a gift card amount is more than zero",
            errors=[{"path": "amount", "message": "must be more than 0"}],
        )
    return minor


def _money(programme: Programme, minor: int) -> dict[str, str]:
    return {"amount": str(from_minor(minor, programme.currency)), "currency": programme.currency}


def _view(
    uow: UnitOfWork, programme: Programme, row: Row[Any], *, replayed: bool = False
) -> GiftCardView:
    return GiftCardView(
        row.id,
        row.last4,
        from_minor(_card_balance(uow, row.account_id), programme.currency),
        programme.currency,
        row.status,
        row.expires_at,
        replayed=replayed,
    )
