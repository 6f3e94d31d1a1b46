"""The wallet's use cases: credit, pay (at once, or hold then capture/void), balance, history,
and cashback on purchases and returns (called by :mod:`treu.mechanics.service`).

Every cent is a ledger transfer of ``Unit.WALLET`` between the member's ``available``/``held``
accounts and the programme's system accounts, so ``treu ledger verify`` checks the wallet like
the points. A short wallet raises ``insufficient_funds`` from the ledger's guarded update and the
caller's transaction rolls back: nothing changes.

Import rule: this module must not import ``treu.mechanics.service`` or ``treu.activities.service``
(they import it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Row, and_, bindparam, func, insert, or_, select, update

from treu.errors import Conflict, ErrorCode, InvalidInput, NotFound
from treu.ids import new_id
from treu.ledger import postings
from treu.ledger.model import MemberAccount, SystemAccount, TransferKind, Unit
from treu.ledger.tables import transfers
from treu.mechanics.model import ActivityDone, Effect
from treu.members.service import get_member
from treu.money import format_money, from_minor, to_minor
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork
from treu.wallet.model import CreditKind, cashback_minor, take_back
from treu.wallet.tables import wallet_cashback, wallet_holds

W = Unit.WALLET


@dataclass(frozen=True)
class WalletView:
    member_id: str
    currency: str
    available: Decimal
    held: Decimal


@dataclass(frozen=True)
class WalletEntry:
    transfer_id: str
    kind: str
    amount: Decimal  # signed: + into the member's available money, - out of it
    currency: str
    posted_at: datetime
    reason: str | None


@dataclass(frozen=True)
class WalletPayment:
    """A payment with the wallet: ``captured`` at once, or ``held`` until captured or voided."""

    id: str  # the transfer (paid at once) or the hold
    member_id: str
    amount: Decimal
    currency: str
    status: Literal["captured", "held", "voided"]
    replayed: bool = False


# --- building blocks (no commit) --------------------------------------------------------


def credit(
    uow: UnitOfWork,
    programme: Programme,
    *,
    member_id: str,
    amount_minor: int,
    kind: TransferKind,
    key: str,
    at: datetime,
    reason: str | None = None,
    actor: str | None = None,
    activity_id: str | None = None,
) -> str:
    """Put money into a member's wallet: from issuance (store credit, cashback, dividend) or,
    for goodwill (``TransferKind.ADJUST``), from the adjustment account."""
    source = SystemAccount.ADJUSTMENT if kind is TransferKind.ADJUST else SystemAccount.ISSUANCE
    return postings.post(
        uow,
        programme,
        kind=kind,
        debit=postings.system_acc(programme, source, W),
        credit=postings.member_acc(member_id, MemberAccount.AVAILABLE, W),
        amount=amount_minor,
        key=key,
        member_id=member_id,
        at=at,
        activity_id=activity_id,
        reason=reason,
        actor=actor,
        unit=W,
    )


def available_minor(uow: UnitOfWork, member_id: str) -> int:
    return postings.balance(uow, member_id, MemberAccount.AVAILABLE, W)


def move_wallet(
    uow: UnitOfWork,
    programme: Programme,
    *,
    from_member: str,
    to_member: str,
    key: str,
    at: datetime,
) -> int:
    """Two members merged: the wallet money moves to the one that stays (its cashback records
    too, so a later return takes back from the right wallet). Money held at a till must be
    captured or voided first. Returns the minor units moved."""
    if postings.balance(uow, from_member, MemberAccount.HELD, W):
        raise Conflict(
            ErrorCode.HOLD_NOT_OPEN,
            f"member {from_member} has wallet money held at a till: capture or void it first",
        )
    uow.conn.execute(
        update(wallet_cashback)
        .where(wallet_cashback.c.member_id == from_member)
        .values(member_id=to_member)
    )
    amount = available_minor(uow, from_member)
    if amount:
        postings.post(
            uow,
            programme,
            kind=TransferKind.MERGE,
            debit=postings.member_acc(from_member, MemberAccount.AVAILABLE, W),
            credit=postings.member_acc(to_member, MemberAccount.AVAILABLE, W),
            amount=amount,
            key=key,
            member_id=to_member,
            at=at,
            unit=W,
        )
    return amount


# --- use cases ---------------------------------------------------------------------------


def get_wallet(uow: UnitOfWork, *, tenant_id: str, member_id: str) -> WalletView:
    member = get_member(uow, member_id, tenant_id=tenant_id)
    currency = load_programme(uow, member.programme_id).currency
    return WalletView(
        member_id,
        currency,
        from_minor(available_minor(uow, member_id), currency),
        from_minor(postings.balance(uow, member_id, MemberAccount.HELD, W), currency),
    )


def wallet_history(
    uow: UnitOfWork, *, tenant_id: str, member_id: str, limit: int = 100
) -> list[WalletEntry]:
    """Every change of the member's available wallet money, newest first."""
    member = get_member(uow, member_id, tenant_id=tenant_id)
    currency = load_programme(uow, member.programme_id).currency
    account = postings.member_acc(member_id, MemberAccount.AVAILABLE, W)
    rows = uow.conn.execute(
        select(transfers)
        .where(
            transfers.c.member_id == member_id,
            transfers.c.unit == W.value,
            or_(transfers.c.credit_account_id == account, transfers.c.debit_account_id == account),
        )
        .order_by(transfers.c.id.desc())
        .limit(limit)
    ).all()
    return [
        WalletEntry(
            r.id,
            r.kind,
            from_minor(r.amount if r.credit_account_id == account else -r.amount, currency),
            currency,
            r.posted_at,
            r.reason,
        )
        for r in rows
    ]


def credit_wallet(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    amount: Decimal,
    kind: CreditKind,
    reason: str,
    idempotency_key: str,
    actor: str | None = None,
) -> tuple[str, bool]:
    """Store credit (issued) or staff goodwill (from the adjustment account, with a reason).
    Returns (transfer id, replayed); a retried key answers the first transfer."""
    member = get_member(uow, member_id, tenant_id=tenant_id)
    programme = load_programme(uow, member.programme_id)
    minor = _positive_minor(amount, programme.currency)
    key = f"wallet:{idempotency_key}"
    lock_members(uow, member_id)  # first: a concurrent retry waits here, then finds the first
    first = _transfer_by_key(uow, tenant_id, key)
    if first is not None:
        return first.id, True
    kind_of = TransferKind.ADJUST if kind == "goodwill" else TransferKind.CREDIT
    transfer_id = credit(
        uow,
        programme,
        member_id=member_id,
        amount_minor=minor,
        kind=kind_of,
        key=key,
        at=uow.now(),
        reason=reason,
        actor=actor,
    )
    uow.publish(
        Event(
            tenant_id,
            "wallet.credited",
            {"member_id": member_id, "kind": kind, **_money(minor, programme.currency)},
        )
    )
    uow.commit()
    return transfer_id, False


def pay_with_wallet(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    amount: Decimal,
    currency: str,
    idempotency_key: str,
    hold: bool = False,
) -> WalletPayment:
    """Pay with the wallet at the till: at once (available → redemption) or, with ``hold``,
    authorised first (available → held) and captured or voided later. Short: 422
    ``insufficient_funds`` and nothing changes. A retried key answers the first payment."""
    member = get_member(uow, member_id, tenant_id=tenant_id)
    programme = load_programme(uow, member.programme_id)
    _same_currency(currency, programme.currency)
    minor = _positive_minor(amount, programme.currency)
    key = f"wallet-pay:{idempotency_key}"
    lock_members(uow, member_id)  # first: a concurrent retry waits here, then finds the first
    first = _payment_by_key(uow, tenant_id, key, programme.currency)
    if first is not None:
        return first
    now = uow.now()
    available = postings.member_acc(member_id, MemberAccount.AVAILABLE, W)
    target = (
        postings.member_acc(member_id, MemberAccount.HELD, W)
        if hold
        else postings.system_acc(programme, SystemAccount.REDEMPTION, W)
    )
    hold_id = new_id("hold") if hold else None
    transfer_id = postings.post(
        uow,
        programme,
        kind=TransferKind.HOLD if hold else TransferKind.PAY,
        debit=available,
        credit=target,
        amount=minor,
        key=key,
        member_id=member_id,
        at=now,
        hold_id=hold_id,
        unit=W,
    )
    if hold_id is not None:
        uow.conn.execute(
            insert(wallet_holds).values(
                id=hold_id,
                tenant_id=tenant_id,
                programme_id=programme.id,
                member_id=member_id,
                amount_minor=minor,
                status="held",
                idempotency_key=key,
                transfer_id=transfer_id,
                created_at=now,
            )
        )
    status: Literal["captured", "held"] = "held" if hold else "captured"
    uow.publish(
        Event(
            tenant_id,
            "wallet.held" if hold else "wallet.paid",
            {"member_id": member_id, **_money(minor, programme.currency)},
        )
    )
    uow.commit()
    return WalletPayment(
        hold_id or transfer_id, member_id, from_minor(minor, programme.currency), currency, status
    )


def wallet_hold_member(uow: UnitOfWork, *, tenant_id: str, hold_id: str) -> str:
    """Whose money a wallet hold holds (to check the caller may see that member first)."""
    member_id = uow.conn.execute(
        select(wallet_holds.c.member_id).where(
            wallet_holds.c.id == hold_id, wallet_holds.c.tenant_id == tenant_id
        )
    ).scalar()
    if member_id is None:
        raise NotFound(ErrorCode.HOLD_NOT_FOUND, f"no wallet hold {hold_id}")
    return str(member_id)


def close_wallet_hold(
    uow: UnitOfWork, *, tenant_id: str, hold_id: str, capture: bool
) -> WalletPayment:
    """Capture (held → redemption) or void (held → available) an open wallet hold. Closing it
    again the same way answers the first result; the other way is 409 ``hold_not_open``."""
    row = uow.conn.execute(
        select(wallet_holds).where(
            wallet_holds.c.id == hold_id, wallet_holds.c.tenant_id == tenant_id
        )
    ).first()
    if row is None:
        raise NotFound(ErrorCode.HOLD_NOT_FOUND, f"no wallet hold {hold_id}")
    programme = load_programme(uow, row.programme_id)
    wanted = "captured" if capture else "voided"
    if row.status == wanted:
        return _hold_payment(row, programme.currency, replayed=True)
    lock_members(uow, row.member_id)
    now = uow.now()
    closed = uow.conn.execute(
        update(wallet_holds)
        .where(wallet_holds.c.id == hold_id, wallet_holds.c.status == "held")
        .values(status=wanted, closed_at=now)
    )
    if closed.rowcount != 1:
        raise Conflict(ErrorCode.HOLD_NOT_OPEN, f"wallet hold {hold_id} is already closed")
    held = postings.member_acc(row.member_id, MemberAccount.HELD, W)
    postings.post(
        uow,
        programme,
        kind=TransferKind.CAPTURE if capture else TransferKind.VOID,
        debit=held,
        credit=(
            postings.system_acc(programme, SystemAccount.REDEMPTION, W)
            if capture
            else postings.member_acc(row.member_id, MemberAccount.AVAILABLE, W)
        ),
        amount=int(row.amount_minor),
        key=f"wallet-{wanted}:{hold_id}",
        member_id=row.member_id,
        at=now,
        hold_id=hold_id,
        corrects_id=None if capture else row.transfer_id,
        unit=W,
    )
    uow.publish(
        Event(
            tenant_id,
            "wallet.paid" if capture else "wallet.released",
            {
                "member_id": row.member_id,
                "hold_id": hold_id,
                **_money(int(row.amount_minor), programme.currency),
            },
        )
    )
    uow.commit()
    closed_row = uow.conn.execute(select(wallet_holds).where(wallet_holds.c.id == hold_id)).one()
    return _hold_payment(closed_row, programme.currency, replayed=False)


# --- cashback (a mechanic: called by treu.mechanics.service.after_activity) ---------------


def cashback_after(uow: UnitOfWork, done: ActivityDone) -> list[Effect]:
    """Credit cashback on a purchase; on a return, take back what the rest of the basket no
    longer earns — as far as the wallet has it; the rest is forgiven and recorded."""
    rules = done.programme.document.wallet.cashback
    if not rules or done.basket is None or done.type == "action":
        return []
    currency = done.programme.currency
    target = sum(
        cashback_minor(
            rule,
            done.basket,
            None if rule.cap is None else to_minor(rule.cap, currency, field="cap"),
        )
        for rule in rules
        if not rule.memberships or done.standing.memberships.intersection(rule.memberships)
    )
    if done.type == "purchase":
        return _give_cashback(uow, done, target)
    assert done.purchase_id is not None
    return _take_cashback_back(uow, done, done.purchase_id, target)


def _give_cashback(uow: UnitOfWork, done: ActivityDone, amount: int) -> list[Effect]:
    if amount <= 0:
        return []
    transfer_id = credit(
        uow,
        done.programme,
        member_id=done.member_id,
        amount_minor=amount,
        kind=TransferKind.CASHBACK,
        key=f"cashback:{done.activity_id}",
        at=done.occurred_at,
        activity_id=done.activity_id,
    )
    _record_cashback(uow, done, done.activity_id, "credit", amount, transfer_id)
    money = format_money(amount, done.programme.currency)
    return [Effect("wallet", "cashback.credited", f"{money} cashback", {}, W.value, amount)]


def _take_cashback_back(
    uow: UnitOfWork, done: ActivityDone, purchase_id: str, target: int
) -> list[Effect]:
    so_far = {
        str(kind): int(total)
        for kind, total in uow.conn.execute(
            select(wallet_cashback.c.kind, func.sum(wallet_cashback.c.amount_minor))
            .where(wallet_cashback.c.purchase_id == purchase_id)
            .group_by(wallet_cashback.c.kind)
        )
    }
    kept = so_far.get("credit", 0) - so_far.get("take_back", 0) - so_far.get("forgive", 0)
    owed = kept - target
    taken, forgiven = take_back(owed, available_minor(uow, done.member_id))
    effects: list[Effect] = []
    currency = done.programme.currency
    if taken:
        transfer_id = postings.post(
            uow,
            done.programme,
            kind=TransferKind.REVERSE,
            debit=postings.member_acc(done.member_id, MemberAccount.AVAILABLE, W),
            credit=postings.system_acc(done.programme, SystemAccount.ISSUANCE, W),
            amount=taken,
            key=f"cashback-back:{done.activity_id}",
            member_id=done.member_id,
            at=done.occurred_at,
            activity_id=done.activity_id,
            unit=W,
        )
        _record_cashback(uow, done, purchase_id, "take_back", taken, transfer_id)
        text = f"{format_money(taken, currency)} cashback taken back"
        effects.append(Effect("wallet", "cashback.reversed", text, {}, W.value, -taken))
    if forgiven:
        _record_cashback(uow, done, purchase_id, "forgive", forgiven, None)
        text = f"{format_money(forgiven, currency)} cashback already spent: forgiven"
        effects.append(Effect("wallet", "cashback.forgiven", text, {"amount_minor": forgiven}))
    return effects


def _record_cashback(
    uow: UnitOfWork,
    done: ActivityDone,
    purchase_id: str,
    kind: str,
    amount: int,
    transfer_id: str | None,
) -> None:
    uow.conn.execute(
        insert(wallet_cashback).values(
            id=new_id("cashback"),
            tenant_id=done.programme.tenant_id,
            member_id=done.member_id,
            purchase_id=purchase_id,
            activity_id=done.activity_id,
            kind=kind,
            amount_minor=amount,
            transfer_id=transfer_id,
            created_at=uow.now(),
        )
    )


# --- helpers -----------------------------------------------------------------------------


def _positive_minor(amount: Decimal, currency: str) -> int:
    minor = to_minor(amount, currency)
    if minor <= 0:
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT,
            "a wallet amount is more than zero",
            errors=[{"path": "amount", "message": "must be more than 0"}],
        )
    return minor


def _same_currency(given: str, programme_currency: str) -> None:
    if given.upper() != programme_currency:
        raise InvalidInput(
            ErrorCode.CURRENCY_MISMATCH,
            f"the wallet holds {programme_currency}, the payment is in {given}",
            errors=[{"path": "currency", "message": f"must be {programme_currency}"}],
        )


def _money(minor: int, currency: str) -> dict[str, str]:
    return {"amount": str(from_minor(minor, currency)), "currency": currency}


_BY_KEY = select(transfers).where(
    transfers.c.tenant_id == bindparam("tenant_id"),
    transfers.c.idempotency_key == bindparam("key"),
)


def _transfer_by_key(uow: UnitOfWork, tenant_id: str, key: str) -> Row[Any] | None:
    return uow.conn.execute(_BY_KEY, {"tenant_id": tenant_id, "key": key}).first()


def _payment_by_key(
    uow: UnitOfWork, tenant_id: str, key: str, currency: str
) -> WalletPayment | None:
    hold = uow.conn.execute(
        select(wallet_holds).where(
            and_(wallet_holds.c.tenant_id == tenant_id, wallet_holds.c.idempotency_key == key)
        )
    ).first()
    if hold is not None:
        return _hold_payment(hold, currency, replayed=True)
    row = uow.conn.execute(_BY_KEY, {"tenant_id": tenant_id, "key": key}).first()
    if row is None:
        return None
    return WalletPayment(
        row.id, row.member_id, from_minor(row.amount, currency), currency, "captured", True
    )


def _hold_payment(row: Row[Any], currency: str, *, replayed: bool) -> WalletPayment:
    return WalletPayment(
        row.id,
        row.member_id,
        from_minor(int(row.amount_minor), currency),
        currency,
        row.status,
        replayed,
    )
