"""Ledger building blocks: post transfers, create and draw from lots, hold/capture/void.

These functions run inside the caller's unit of work and never commit: a use case composes
several of them ("reverse points, record the return, publish the event") into one transaction.
Callers lock the member first (``treu.storage.locks.lock_members``).

Balances change only through :func:`post`, by a guarded ``balance = balance + :delta`` update
whose WHERE clause checks the floor; if the guard fails nothing was written and the caller's
transaction is rolled back with the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BindParameter, Integer, and_, bindparam, case, func, insert, select, update

from treu.errors import Conflict, ErrorCode, NotFound, Rejected
from treu.ids import new_id
from treu.ledger.model import (
    LotStatus,
    LotView,
    MemberAccount,
    SystemAccount,
    TransferKind,
    Unit,
    allocate_lots,
    member_account_id,
    spend_order,
    system_account_id,
)
from treu.ledger.tables import accounts, holds, lot_allocations, lots, transfers
from treu.programmes.model import Programme
from treu.storage.types import UTCDateTime
from treu.storage.uow import Event, UnitOfWork


@dataclass(frozen=True)
class Posted:
    transfer_id: str
    amount: int


def member_acc(member_id: str, kind: MemberAccount, unit: Unit = Unit.POINTS) -> str:
    return member_account_id(member_id, kind, unit)


def system_acc(programme: Programme, kind: SystemAccount, unit: Unit = Unit.POINTS) -> str:
    return system_account_id(programme.id, kind, unit)


def post(
    uow: UnitOfWork,
    programme: Programme,
    *,
    kind: TransferKind,
    debit: str,
    credit: str,
    amount: int,
    key: str,
    member_id: str | None,
    at: datetime,
    activity_id: str | None = None,
    hold_id: str | None = None,
    corrects_id: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
    unit: Unit = Unit.POINTS,
) -> str:
    """Move ``amount`` (> 0) of ``unit`` from ``debit`` to ``credit``; returns the transfer id.
    Both accounts must be of ``unit`` (their ids say so; ``treu ledger verify`` checks it)."""
    if amount <= 0:
        raise ValueError(f"transfer amounts are positive, got {amount}")
    _move(uow, debit, -amount, unit)
    _move(uow, credit, amount, unit)
    transfer_id = new_id("transfer")
    uow.conn.execute(
        _INSERT_TRANSFER,
        {
            "id": transfer_id,
            "tenant_id": programme.tenant_id,
            "programme_id": programme.id,
            "kind": kind.value,
            "unit": unit.value,
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": amount,
            "idempotency_key": key,
            "corrects_id": corrects_id,
            "member_id": member_id,
            "activity_id": activity_id,
            "hold_id": hold_id,
            "reason": reason,
            "actor": actor,
            "posted_at": at,
        },
    )
    return transfer_id


# The hot path runs the same few statements for every event: built once here, executed with
# parameters, so SQLAlchemy compiles each one once instead of per call.
_INSERT_TRANSFER = insert(transfers)
_SYSTEM_SUFFIXES = tuple(f"_{k.value}" for k in SystemAccount)
_DEBT_SUFFIX = f"_{MemberAccount.DEBT.value}"
_DELTA: BindParameter[int] = bindparam("delta", type_=Integer)
_MOVE = {
    # A debt account counts down from zero, every other member account up from zero.
    debt: update(accounts)
    .where(
        accounts.c.id == bindparam("account_id"),
        (accounts.c.balance + _DELTA <= 0) if debt else (accounts.c.balance + _DELTA >= 0),
    )
    .values(balance=accounts.c.balance + _DELTA)
    for debt in (False, True)
}
_BALANCE = select(accounts.c.balance).where(accounts.c.id == bindparam("account_id"))
_SHORT = {
    Unit.POINTS: (ErrorCode.INSUFFICIENT_POINTS, "not enough points"),
    Unit.STAMPS: (ErrorCode.INSUFFICIENT_STAMPS, "not enough stamps"),
    Unit.WALLET: (ErrorCode.INSUFFICIENT_FUNDS, "not enough money in the wallet"),
}


def _move(uow: UnitOfWork, account_id: str, delta: int, unit: Unit = Unit.POINTS) -> None:
    """Guarded balance change of a member account; system accounts keep no cached balance."""
    if account_id.endswith(_SYSTEM_SUFFIXES):
        return
    uow.cache.pop((_KNOWN_BALANCE, account_id), None)
    statement = _MOVE[account_id.endswith(_DEBT_SUFFIX)]
    result = uow.conn.execute(statement, {"account_id": account_id, "delta": delta})
    if result.rowcount != 1:
        raise Rejected(*_SHORT[unit])


def balance(uow: UnitOfWork, member_id: str, kind: MemberAccount, unit: Unit = Unit.POINTS) -> int:
    account_id = member_acc(member_id, kind, unit)
    known = uow.cache.get((_KNOWN_BALANCE, account_id))
    if known is not None:
        return int(known)
    return int(uow.conn.execute(_BALANCE, {"account_id": account_id}).scalar_one())


_KNOWN_BALANCE = "ledger.known_balance"


def remember_balance(
    uow: UnitOfWork, member_id: str, kind: MemberAccount, value: int, unit: Unit = Unit.POINTS
) -> None:
    """A member account's balance the caller read under the member's lock, in a statement that
    ran after the lock was taken: :func:`balance` returns it without reading it again in this
    transaction. Every change of the account (:func:`post`) forgets it, and so does the end of
    the transaction."""
    uow.cache[(_KNOWN_BALANCE, member_acc(member_id, kind, unit))] = value


# --- earning -----------------------------------------------------------------------------


def earn(
    uow: UnitOfWork,
    programme: Programme,
    *,
    member_id: str,
    amount: int,
    key: str,
    at: datetime,
    activates_at: datetime | None,
    expires_at: datetime | None,
    activity_id: str | None = None,
    source: SystemAccount = SystemAccount.ISSUANCE,
    kind: TransferKind = TransferKind.EARN,
    reason: str | None = None,
    actor: str | None = None,
    corrects_id: str | None = None,
) -> tuple[str, str]:
    """Credit ``amount`` points in a new lot; pending until ``activates_at`` if that is later
    than ``at`` (or None: until explicitly activated). Returns (transfer id, lot id)."""
    pending = activates_at is None or activates_at > at
    target = MemberAccount.PENDING if pending else MemberAccount.AVAILABLE
    transfer_id = post(
        uow,
        programme,
        kind=kind,
        debit=system_acc(programme, source),
        credit=member_acc(member_id, target),
        amount=amount,
        key=key,
        member_id=member_id,
        at=at,
        activity_id=activity_id,
        reason=reason,
        actor=actor,
        corrects_id=corrects_id,
    )
    lot_id = new_id("lot")
    uow.conn.execute(
        _INSERT_LOT,
        {
            "id": lot_id,
            "tenant_id": programme.tenant_id,
            "programme_id": programme.id,
            "member_id": member_id,
            "unit": "points",
            "transfer_id": transfer_id,
            "activity_id": activity_id,
            "amount": amount,
            "remaining": amount,
            "status": (LotStatus.PENDING if pending else LotStatus.ACTIVE).value,
            "activates_at": activates_at,
            "expires_at": expires_at,
            "created_at": at,
        },
    )
    if not pending:
        settle_debt(uow, programme, member_id=member_id, lot_id=lot_id, key=key, at=at)
    return transfer_id, lot_id


_INSERT_LOT = insert(lots)


def open_balance(
    uow: UnitOfWork,
    programme: Programme,
    *,
    member_id: str,
    amount: int,
    key: str,
    at: datetime,
    expires_at: datetime | None,
    reason: str,
    actor: str,
) -> tuple[str, str]:
    """Points a member brings from another system (a migration): credited from issuance as an
    ``opening`` transfer into a new lot with the expiry they had there, spendable at once.
    Returns (transfer id, lot id)."""
    return earn(
        uow,
        programme,
        member_id=member_id,
        amount=amount,
        key=key,
        at=at,
        activates_at=at,
        expires_at=expires_at,
        kind=TransferKind.OPENING,
        reason=reason,
        actor=actor,
    )


def activate(uow: UnitOfWork, programme: Programme, *, lot_id: str, at: datetime) -> int:
    """Make a pending lot spendable (pending → available). Returns the points activated."""
    lot = uow.conn.execute(select(lots).where(lots.c.id == lot_id)).one()
    if lot.status != LotStatus.PENDING.value:
        return 0
    uow.conn.execute(
        update(lots)
        .where(lots.c.id == lot_id)
        .values(status=(LotStatus.ACTIVE if lot.remaining else LotStatus.CLOSED).value)
    )
    if lot.remaining == 0:
        return 0
    post(
        uow,
        programme,
        kind=TransferKind.ACTIVATE,
        debit=member_acc(lot.member_id, MemberAccount.PENDING),
        credit=member_acc(lot.member_id, MemberAccount.AVAILABLE),
        amount=lot.remaining,
        key=f"activate:{lot_id}",
        member_id=lot.member_id,
        at=at,
        activity_id=lot.activity_id,
    )
    settle_debt(
        uow, programme, member_id=lot.member_id, lot_id=lot_id, key=f"activate:{lot_id}", at=at
    )
    return int(lot.remaining)


def settle_debt(
    uow: UnitOfWork,
    programme: Programme,
    *,
    member_id: str,
    lot_id: str | Sequence[str],
    key: str,
    at: datetime,
) -> None:
    """Points that become available (earned, activated, or given back by a void or a cancelled
    voucher) pay back a negative balance first, from these lots in this order."""
    debt = -balance(uow, member_id, MemberAccount.DEBT)
    if debt == 0:
        return
    plan: list[tuple[str, int]] = []
    for one in [lot_id] if isinstance(lot_id, str) else lot_id:
        remaining = int(uow.conn.execute(_LOT_REMAINING, {"lot_id": one}).scalar_one())
        take = min(debt, remaining)
        if take:
            plan.append((one, take))
            debt -= take
    amount = sum(take for _, take in plan)
    if amount == 0:
        return
    transfer_id = post(
        uow,
        programme,
        kind=TransferKind.SETTLE,
        debit=member_acc(member_id, MemberAccount.AVAILABLE),
        credit=member_acc(member_id, MemberAccount.DEBT),
        amount=amount,
        key=f"settle:{key}",
        member_id=member_id,
        at=at,
    )
    _draw(uow, programme, transfer_id, plan)


_LOT_REMAINING = select(lots.c.remaining).where(lots.c.id == bindparam("lot_id"))


# --- spending ----------------------------------------------------------------------------


def open_lots(
    uow: UnitOfWork, member_id: str, status: LotStatus = LotStatus.ACTIVE
) -> list[LotView]:
    rows = uow.conn.execute(
        select(lots.c.id, lots.c.remaining, lots.c.expires_at, lots.c.created_at).where(
            lots.c.member_id == member_id, lots.c.status == status.value, lots.c.remaining > 0
        )
    )
    return [LotView(r.id, r.remaining, r.expires_at, r.created_at) for r in rows]


def spend(
    uow: UnitOfWork,
    programme: Programme,
    *,
    member_id: str,
    amount: int,
    kind: TransferKind,
    credit: str,
    key: str,
    at: datetime,
    prefer_lot: str | None = None,
    activity_id: str | None = None,
    hold_id: str | None = None,
    corrects_id: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> str:
    """Move ``amount`` available points to ``credit``, drawing from lots in spend order
    (``prefer_lot`` first). Raises ``insufficient_points`` and writes nothing if short.

    Lots past their expiry date are expired first, even if tonight's run has not got to them
    yet: a point is never spendable after its last day."""
    expire_due(uow, programme, member_id=member_id, at=at)
    available = open_lots(uow, member_id)
    if sum(lot.remaining for lot in available) < amount:
        have = max(0, balance(uow, member_id, MemberAccount.AVAILABLE))
        raise Rejected(ErrorCode.INSUFFICIENT_POINTS, f"{amount} points needed, {have} available")
    ordered = spend_order(available)
    if prefer_lot:
        ordered.sort(key=lambda lot: lot.id != prefer_lot)
        plan = _in_order(ordered, amount)
    else:
        plan = allocate_lots(available, amount)
    transfer_id = post(
        uow,
        programme,
        kind=kind,
        debit=member_acc(member_id, MemberAccount.AVAILABLE),
        credit=credit,
        amount=amount,
        key=key,
        member_id=member_id,
        at=at,
        activity_id=activity_id,
        hold_id=hold_id,
        corrects_id=corrects_id,
        reason=reason,
        actor=actor,
    )
    _draw(uow, programme, transfer_id, plan)
    return transfer_id


def _in_order(ordered: list[LotView], amount: int) -> list[tuple[str, int]]:
    plan, left = [], amount
    for lot in ordered:
        take = min(lot.remaining, left)
        if take:
            plan.append((lot.id, take))
            left -= take
    return plan


_LEFT = lots.c.remaining - bindparam("take")
_DRAW = (
    update(lots)
    .where(lots.c.id == bindparam("lot_id"), _LEFT >= 0, lots.c.amount >= _LEFT)
    .values(
        remaining=_LEFT,
        # A lot that is empty is closed; a lot that got points back is open again. Both in the
        # same statement: the CHECK "a closed lot is empty" holds after each one.
        status=case(
            (and_(_LEFT == 0, lots.c.status == LotStatus.ACTIVE.value), LotStatus.CLOSED.value),
            (and_(_LEFT > 0, lots.c.status == LotStatus.CLOSED.value), LotStatus.ACTIVE.value),
            else_=lots.c.status,
        ),
    )
)
_INSERT_ALLOCATION = insert(lot_allocations)


def _draw(
    uow: UnitOfWork, programme: Programme, transfer_id: str, plan: list[tuple[str, int]]
) -> None:
    """Record that ``transfer_id`` took these amounts from these lots (negative: gave back)."""
    for lot_id, amount in plan:
        result = uow.conn.execute(_DRAW, {"lot_id": lot_id, "take": amount})
        if result.rowcount != 1:
            raise RuntimeError(f"lot {lot_id} cannot give {amount}")  # a bug, not user input
    uow.conn.execute(
        _INSERT_ALLOCATION,
        [
            {
                "id": new_id("allocation"),
                "tenant_id": programme.tenant_id,
                "lot_id": lot_id,
                "transfer_id": transfer_id,
                "amount": amount,
            }
            for lot_id, amount in plan
        ],
    )


def give_back(
    uow: UnitOfWork,
    programme: Programme,
    *,
    of_transfer: str,
    kind: TransferKind,
    debit: str,
    member_id: str,
    key: str,
    at: datetime,
    corrects_id: str | None = None,
    hold_id: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> str:
    """Return the points ``of_transfer`` took from lots to those same lots (void, cancel):
    points keep the expiry they were earned with."""
    plan = [
        (r.lot_id, int(r.amount))
        for r in uow.conn.execute(
            select(lot_allocations.c.lot_id, lot_allocations.c.amount)
            .where(lot_allocations.c.transfer_id == of_transfer)
            .order_by(lot_allocations.c.id)
        )
    ]
    amount = sum(a for _, a in plan)
    transfer_id = post(
        uow,
        programme,
        kind=kind,
        debit=debit,
        credit=member_acc(member_id, MemberAccount.AVAILABLE),
        amount=amount,
        key=key,
        member_id=member_id,
        at=at,
        corrects_id=corrects_id,
        hold_id=hold_id,
        reason=reason,
        actor=actor,
    )
    _draw(uow, programme, transfer_id, [(lot_id, -a) for lot_id, a in plan])
    # Points given back must not dodge a debt run up since they were taken, and keep their
    # expiry: what comes back into a lot past its date is gone at once.
    lot_ids = [lot_id for lot_id, _ in plan]
    settle_debt(uow, programme, member_id=member_id, lot_id=lot_ids, key=key, at=at)
    expire_due(uow, programme, member_id=member_id, at=at)
    return transfer_id


# --- holds -------------------------------------------------------------------------------


def hold(
    uow: UnitOfWork, programme: Programme, *, member_id: str, amount: int, key: str, at: datetime
) -> str:
    hold_id = new_id("hold")
    transfer_id = spend(
        uow,
        programme,
        member_id=member_id,
        amount=amount,
        kind=TransferKind.HOLD,
        credit=member_acc(member_id, MemberAccount.HELD),
        key=key,
        at=at,
        hold_id=hold_id,
    )
    uow.conn.execute(
        insert(holds).values(
            id=hold_id,
            tenant_id=programme.tenant_id,
            programme_id=programme.id,
            member_id=member_id,
            amount=amount,
            status="held",
            transfer_id=transfer_id,
            created_at=at,
        )
    )
    return hold_id


def _close_hold(uow: UnitOfWork, hold_id: str, status: str, at: datetime) -> tuple[str, str, int]:
    result = uow.conn.execute(
        update(holds)
        .where(holds.c.id == hold_id, holds.c.status == "held")
        .values(status=status, closed_at=at)
    )
    row = uow.conn.execute(select(holds).where(holds.c.id == hold_id)).first()
    if row is None:
        raise NotFound(ErrorCode.HOLD_NOT_FOUND, f"no hold {hold_id}")
    if result.rowcount != 1:
        raise Conflict(ErrorCode.HOLD_NOT_OPEN, f"hold {hold_id} is already {row.status}")
    return row.member_id, row.transfer_id, int(row.amount)


def capture(uow: UnitOfWork, programme: Programme, *, hold_id: str, at: datetime) -> str:
    member_id, _hold_transfer, amount = _close_hold(uow, hold_id, "captured", at)
    return post(
        uow,
        programme,
        kind=TransferKind.CAPTURE,
        debit=member_acc(member_id, MemberAccount.HELD),
        credit=system_acc(programme, SystemAccount.REDEMPTION),
        amount=amount,
        key=f"capture:{hold_id}",
        member_id=member_id,
        at=at,
        hold_id=hold_id,
    )


def void(uow: UnitOfWork, programme: Programme, *, hold_id: str, at: datetime) -> str:
    member_id, hold_transfer, _ = _close_hold(uow, hold_id, "voided", at)
    return give_back(
        uow,
        programme,
        of_transfer=hold_transfer,
        kind=TransferKind.VOID,
        debit=member_acc(member_id, MemberAccount.HELD),
        member_id=member_id,
        key=f"void:{hold_id}",
        at=at,
        corrects_id=hold_transfer,
        hold_id=hold_id,
    )


# --- merging members ---------------------------------------------------------------------


def move_lot(
    uow: UnitOfWork, programme: Programme, *, lot_id: str, to_member: str, key: str, at: datetime
) -> int:
    """Move what is left of a lot to another member (members merged): a ``merge`` transfer from
    the owner's available (or pending) account to the other's, and a new lot there with the same
    activation, expiry and activity, so returns and expiry treat the points as before.
    Returns the points moved."""
    lot = uow.conn.execute(select(lots).where(lots.c.id == lot_id)).one()
    if lot.remaining == 0 or lot.status == LotStatus.CLOSED.value:
        return 0
    kind = (
        MemberAccount.PENDING if lot.status == LotStatus.PENDING.value else MemberAccount.AVAILABLE
    )
    amount = int(lot.remaining)
    transfer_id = post(
        uow,
        programme,
        kind=TransferKind.MERGE,
        debit=member_acc(lot.member_id, kind),
        credit=member_acc(to_member, kind),
        amount=amount,
        key=key,
        member_id=to_member,
        at=at,
        activity_id=lot.activity_id,
    )
    _draw(uow, programme, transfer_id, [(lot_id, amount)])
    uow.conn.execute(
        _INSERT_LOT,
        {
            "id": new_id("lot"),
            "tenant_id": programme.tenant_id,
            "programme_id": programme.id,
            "member_id": to_member,
            "unit": "points",
            "transfer_id": transfer_id,
            "activity_id": lot.activity_id,
            "amount": amount,
            "remaining": amount,
            "status": lot.status,
            "activates_at": lot.activates_at,
            "expires_at": lot.expires_at,
            "created_at": lot.created_at,
        },
    )
    return amount


def move_debt(
    uow: UnitOfWork,
    programme: Programme,
    *,
    from_member: str,
    to_member: str,
    key: str,
    at: datetime,
) -> int:
    """Move a negative balance to another member (members merged). Returns the points owed."""
    owed = -balance(uow, from_member, MemberAccount.DEBT)
    if owed:
        post(
            uow,
            programme,
            kind=TransferKind.MERGE,
            debit=member_acc(to_member, MemberAccount.DEBT),
            credit=member_acc(from_member, MemberAccount.DEBT),
            amount=owed,
            key=key,
            member_id=to_member,
            at=at,
        )
    return owed


# --- reversal and expiry -----------------------------------------------------------------


@dataclass(frozen=True)
class Reversal:
    reversed: int
    from_pending: int
    into_negative: int
    forgiven: int


def reverse(
    uow: UnitOfWork,
    programme: Programme,
    *,
    member_id: str,
    amount: int,
    purchase_id: str,
    return_id: str,
    at: datetime,
) -> Reversal:
    """Take back ``amount`` points earned by ``purchase_id`` under the programme's return policy."""
    policy = programme.document.returns.policy
    issuance = system_acc(programme, SystemAccount.ISSUANCE)
    left = amount
    from_pending = 0
    pending_lots = uow.conn.execute(
        select(lots.c.id, lots.c.remaining).where(
            lots.c.activity_id == purchase_id,
            lots.c.status == LotStatus.PENDING.value,
            lots.c.remaining > 0,
        )
    ).all()
    for lot in pending_lots:
        take = min(left, int(lot.remaining))
        if take:
            tid = post(
                uow,
                programme,
                kind=TransferKind.REVERSE,
                debit=member_acc(member_id, MemberAccount.PENDING),
                credit=issuance,
                amount=take,
                key=f"reverse:{return_id}:{lot.id}",
                member_id=member_id,
                at=at,
                activity_id=return_id,
            )
            _draw(uow, programme, tid, [(lot.id, take)])
            uow.conn.execute(
                update(lots)
                .where(lots.c.id == lot.id, lots.c.remaining == 0)
                .values(status=LotStatus.CLOSED.value)
            )
            from_pending += take
            left -= take
    if left == 0 or policy == "reverse_pending_only":
        return Reversal(from_pending, from_pending, 0, left)
    own_lot = uow.conn.execute(
        select(lots.c.id).where(lots.c.activity_id == purchase_id).order_by(lots.c.id)
    ).scalar()
    expire_due(uow, programme, member_id=member_id, at=at)
    have = sum(lot.remaining for lot in open_lots(uow, member_id))
    take = min(left, have)
    if take:
        spend(
            uow,
            programme,
            member_id=member_id,
            amount=take,
            kind=TransferKind.REVERSE,
            credit=issuance,
            key=f"reverse:{return_id}",
            at=at,
            prefer_lot=own_lot,
            activity_id=return_id,
        )
        left -= take
    if left and policy == "allow_negative":
        post(
            uow,
            programme,
            kind=TransferKind.REVERSE,
            debit=member_acc(member_id, MemberAccount.DEBT),
            credit=issuance,
            amount=left,
            key=f"reverse-negative:{return_id}",
            member_id=member_id,
            at=at,
            activity_id=return_id,
        )
        return Reversal(amount, from_pending, left, 0)
    return Reversal(amount - left, from_pending, 0, left)


def expire_lot(uow: UnitOfWork, programme: Programme, *, lot_id: str, at: datetime) -> int:
    """Move what is left of a lot to breakage. Returns the points expired (0 if nothing left)."""
    lot = uow.conn.execute(select(lots).where(lots.c.id == lot_id)).one()
    if lot.status != LotStatus.ACTIVE.value or lot.remaining == 0:
        return 0
    transfer_id = post(
        uow,
        programme,
        kind=TransferKind.EXPIRE,
        debit=member_acc(lot.member_id, MemberAccount.AVAILABLE),
        credit=system_acc(programme, SystemAccount.BREAKAGE),
        amount=int(lot.remaining),
        key=f"expire:{lot_id}:{at.isoformat()}",
        member_id=lot.member_id,
        at=at,
    )
    _draw(uow, programme, transfer_id, [(lot_id, int(lot.remaining))])
    return int(lot.remaining)


_DUE_LOTS = (
    select(lots.c.id)
    .where(
        lots.c.member_id == bindparam("member_id"),
        lots.c.status == LotStatus.ACTIVE.value,
        lots.c.remaining > 0,
        lots.c.expires_at <= bindparam("at", type_=UTCDateTime()),
    )
    .order_by(lots.c.id)
)


def expire_due(uow: UnitOfWork, programme: Programme, *, member_id: str, at: datetime) -> int:
    """Expire the member's lots whose expiry has passed at ``at`` (the nightly run does the same
    for everyone); publishes ``points.expired``. Returns the points expired."""
    expired = 0
    for (lot_id,) in uow.conn.execute(_DUE_LOTS, {"member_id": member_id, "at": at}).all():
        expired += expire_lot(uow, programme, lot_id=lot_id, at=at)
    if expired:
        uow.publish(
            Event(
                programme.tenant_id,
                "points.expired",
                {
                    "member_id": member_id,
                    "points": expired,
                    "date": programme.local_date(at).isoformat(),
                },
            )
        )
    return expired


def sum_transfers(uow: UnitOfWork, member_id: str) -> dict[str, int]:
    rows = uow.conn.execute(
        select(transfers.c.kind, func.sum(transfers.c.amount))
        .where(transfers.c.member_id == member_id, transfers.c.unit == Unit.POINTS.value)
        .group_by(transfers.c.kind)
    )
    return {kind: int(total) for kind, total in rows}


def adjustment_credits(uow: UnitOfWork, member_id: str) -> int:
    """Points added (not removed) by manual adjustments."""
    total = uow.conn.execute(
        select(func.coalesce(func.sum(transfers.c.amount), 0)).where(
            and_(
                transfers.c.member_id == member_id,
                transfers.c.kind == TransferKind.ADJUST.value,
                transfers.c.credit_account_id == member_acc(member_id, MemberAccount.AVAILABLE),
            )
        )
    ).scalar_one()
    return int(total)
