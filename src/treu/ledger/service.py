"""Use cases on the ledger itself: balances, history, lots, adjustments, holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from treu.activities.tables import activities, activity_effects, awards
from treu.errors import Conflict, ErrorCode, InvalidInput, NotFound
from treu.ledger import postings
from treu.ledger.model import (
    Balances,
    MemberAccount,
    SystemAccount,
    TransferKind,
    Unit,
    expires_at,
    expires_on,
    member_account_id,
)
from treu.ledger.tables import holds, lots, transfers
from treu.members.service import get_member, touch_member
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork, is_unique_violation


def get_balances(uow: UnitOfWork, *, tenant_id: str, member_id: str) -> Balances:
    get_member(uow, member_id, tenant_id=tenant_id)
    sums = postings.sum_transfers(uow, member_id)
    debt = -postings.balance(uow, member_id, MemberAccount.DEBT)
    adjust_in = postings.adjustment_credits(uow, member_id)
    return Balances(
        available=postings.balance(uow, member_id, MemberAccount.AVAILABLE) - debt,
        pending=postings.balance(uow, member_id, MemberAccount.PENDING),
        held=postings.balance(uow, member_id, MemberAccount.HELD),
        negative=debt,
        lifetime_earned=sums.get(TransferKind.EARN, 0)
        + adjust_in
        + sums.get(TransferKind.OPENING, 0),
        spent=sums.get(TransferKind.CAPTURE, 0)
        - sums.get(TransferKind.RESTORE, 0)
        + sums.get(TransferKind.DONATE, 0),
        expired=sums.get(TransferKind.EXPIRE, 0),
        reversed=sums.get(TransferKind.REVERSE, 0),
    )


@dataclass(frozen=True)
class LotLine:
    id: str
    amount: int
    remaining: int
    status: str
    earned_at: datetime
    activates_at: datetime | None
    expires_at: datetime | None
    expires_on: date | None
    activity_id: str | None


def list_lots(
    uow: UnitOfWork, *, tenant_id: str, member_id: str, open_only: bool = False
) -> list[LotLine]:
    member = get_member(uow, member_id, tenant_id=tenant_id)
    tz = load_programme(uow, member.programme_id).tz
    query = select(lots).where(lots.c.member_id == member_id).order_by(lots.c.created_at, lots.c.id)
    if open_only:
        query = query.where(lots.c.status != "closed")
    return [
        LotLine(
            r.id,
            int(r.amount),
            int(r.remaining),
            r.status,
            r.created_at,
            r.activates_at,
            r.expires_at,
            expires_on(r.expires_at, tz),
            r.activity_id,
        )
        for r in uow.conn.execute(query)
    ]


# How each transfer kind changes what the member sees (available, pending).
_EFFECT = {
    TransferKind.EARN: "in",
    TransferKind.ACTIVATE: "activate",
    TransferKind.HOLD: "out",
    TransferKind.CAPTURE: None,
    TransferKind.VOID: "in",
    TransferKind.RESTORE: "in",
    TransferKind.REVERSE: "out",
    TransferKind.SETTLE: None,
    TransferKind.EXPIRE: "out",
    TransferKind.ADJUST: "adjust",
    TransferKind.DONATE: "out",
    TransferKind.MERGE: "merge",  # in, from a member merged into this one (out: a debt moved)
    TransferKind.OPENING: "in",  # an opening balance imported from another system
}


@dataclass(frozen=True)
class HistoryEntry:
    transfer_id: str
    kind: str
    posted_at: datetime
    points: int  # change of the member's spendable + pending amount of ``unit``
    pending: bool
    activity_id: str | None
    activity_external_id: str | None
    explanations: list[str]
    reason: str | None
    unit: str = Unit.POINTS.value  # points, stamps or wallet (minor units)


def member_history(uow: UnitOfWork, *, tenant_id: str, member_id: str) -> list[HistoryEntry]:
    """Every change of the member's points, stamps and wallet, each with the reasons behind it."""
    get_member(uow, member_id, tenant_id=tenant_id)
    rows = uow.conn.execute(
        select(transfers, activities.c.external_id.label("activity_external_id"))
        .outerjoin(activities, activities.c.id == transfers.c.activity_id)
        .where(transfers.c.member_id == member_id)
        .order_by(transfers.c.id)
    ).all()
    explanations: dict[str, list[str]] = {}
    activity_ids = {r.activity_id for r in rows if r.activity_id}
    if activity_ids:
        for a in uow.conn.execute(
            select(awards.c.activity_id, awards.c.explanation)
            .where(awards.c.activity_id.in_(activity_ids))
            .order_by(awards.c.id)
        ):
            explanations.setdefault(a.activity_id, []).append(a.explanation)
    effects = effects_by_unit(uow, activity_ids)
    available = postings.member_acc(member_id, MemberAccount.AVAILABLE)
    pending_acc = postings.member_acc(member_id, MemberAccount.PENDING)
    entries = []
    for r in rows:
        if r.unit != Unit.POINTS.value:
            entry = _other_unit_entry(r, member_id, effects.get(r.activity_id, {}))
            if entry is not None:
                entries.append(entry)
            continue
        effect = _EFFECT[TransferKind(r.kind)]
        if effect is None or effect == "activate":
            continue
        credited = r.credit_account_id in (available, pending_acc)
        sign = 1 if effect == "in" or (effect in ("adjust", "merge") and credited) else -1
        is_pending = pending_acc in (r.credit_account_id, r.debit_account_id)
        entries.append(
            HistoryEntry(
                r.id,
                r.kind,
                r.posted_at,
                sign * int(r.amount),
                is_pending,
                r.activity_id,
                r.activity_external_id,
                explanations.get(r.activity_id, []) if r.kind in ("earn", "reverse") else [],
                r.reason,
            )
        )
    return entries


def effects_by_unit(uow: UnitOfWork, activity_ids: set[str]) -> dict[str, dict[str, list[str]]]:
    """The explanations of the stamp and wallet changes of these activities, by unit."""
    out: dict[str, dict[str, list[str]]] = {}
    if not activity_ids:
        return out
    rows = uow.conn.execute(
        select(
            activity_effects.c.activity_id, activity_effects.c.unit, activity_effects.c.explanation
        )
        .where(
            activity_effects.c.activity_id.in_(activity_ids),
            activity_effects.c.unit.is_not(None),
        )
        .order_by(activity_effects.c.id)
    )
    for activity_id, unit, text in rows:
        out.setdefault(activity_id, {}).setdefault(unit, []).append(text)
    return out


def _other_unit_entry(r: Any, member_id: str, effects: dict[str, list[str]]) -> HistoryEntry | None:
    """A stamp or wallet transfer as the member sees it: into or out of their available
    account of that unit (a move between two of their own accounts shows as nothing)."""
    available = member_account_id(member_id, MemberAccount.AVAILABLE, Unit(r.unit))
    if (r.credit_account_id == available) == (r.debit_account_id == available):
        return None
    sign = 1 if r.credit_account_id == available else -1
    return HistoryEntry(
        r.id,
        r.kind,
        r.posted_at,
        sign * int(r.amount),
        False,
        r.activity_id,
        r.activity_external_id,
        effects.get(r.unit, []),
        r.reason,
        r.unit,
    )


def adjust_points(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    points: int,
    reason: str,
    actor: str,
    idempotency_key: str,
    corrects: str | None = None,
) -> str:
    """A manual correction by staff: positive adds a lot, negative draws from lots.

    ``corrects``: the id of the member's transfer this adjustment corrects (a wrong goodwill
    credit, a purchase keyed with the wrong amount); a transfer is corrected at most once."""
    if points == 0:
        raise InvalidInput(ErrorCode.INVALID_AMOUNT, "an adjustment of 0 points changes nothing")
    if not reason.strip() or not actor.strip():
        raise InvalidInput(ErrorCode.VALIDATION_ERROR, "an adjustment needs a reason and an actor")
    member = get_member(uow, member_id, tenant_id=tenant_id)
    lock_members(uow, member_id)
    replayed = _replayed_adjustment(uow, tenant_id, idempotency_key, member_id, points)
    if replayed:
        return replayed
    if corrects is not None:
        _check_correctable(uow, tenant_id, member_id, corrects)
    programme = load_programme(uow, member.programme_id)
    now = uow.now()
    try:
        if points > 0:
            transfer_id, _ = postings.earn(
                uow,
                programme,
                member_id=member_id,
                amount=points,
                key=idempotency_key,
                at=now,
                activates_at=now,
                expires_at=expires_at(programme.document.expiry, now, programme.tz),
                source=SystemAccount.ADJUSTMENT,
                kind=TransferKind.ADJUST,
                reason=reason,
                actor=actor,
                corrects_id=corrects,
            )
        else:
            transfer_id = postings.spend(
                uow,
                programme,
                member_id=member_id,
                amount=-points,
                kind=TransferKind.ADJUST,
                credit=postings.system_acc(programme, SystemAccount.ADJUSTMENT),
                key=idempotency_key,
                at=now,
                reason=reason,
                actor=actor,
                corrects_id=corrects,
            )
    except IntegrityError as exc:
        return _replayed_after_race(
            uow,
            exc,
            lambda: _replayed_adjustment(uow, tenant_id, idempotency_key, member_id, points),
        )
    uow.publish(
        Event(
            tenant_id,
            "points.adjusted",
            {
                "member_id": member_id,
                "points": points,
                "reason": reason,
                "actor": actor,
                "corrects": corrects,
            },
        )
    )
    uow.commit()
    return transfer_id


def _check_correctable(uow: UnitOfWork, tenant_id: str, member_id: str, transfer_id: str) -> None:
    target = uow.conn.execute(
        select(transfers.c.member_id).where(
            transfers.c.id == transfer_id, transfers.c.tenant_id == tenant_id
        )
    ).first()
    if target is None or target.member_id != member_id:
        raise NotFound(ErrorCode.NOT_FOUND, f"no transfer {transfer_id} of member {member_id}")
    corrected = uow.conn.execute(
        select(transfers.c.id).where(transfers.c.corrects_id == transfer_id)
    ).first()
    if corrected is not None:
        raise Conflict(
            ErrorCode.ALREADY_CORRECTED,
            f"transfer {transfer_id} was corrected already, by {corrected.id}",
        )


def _replayed_adjustment(
    uow: UnitOfWork, tenant_id: str, key: str, member_id: str, points: int
) -> str | None:
    row = uow.conn.execute(
        select(transfers.c.id, transfers.c.member_id, transfers.c.amount, transfers.c.kind).where(
            transfers.c.tenant_id == tenant_id, transfers.c.idempotency_key == key
        )
    ).first()
    if row is None:
        return None
    if row.member_id != member_id or row.amount != abs(points) or row.kind != "adjust":
        raise Conflict(
            ErrorCode.IDEMPOTENCY_KEY_REUSE, f"idempotency key {key!r} was used for another request"
        )
    return str(row.id)


def activate_points(uow: UnitOfWork, *, tenant_id: str, activity_id: str) -> int:
    """Make the pending points of an activity spendable now (``pending: on_activation``, or
    staff releasing them early). Returns the points activated; 0 if none were pending."""
    activity = uow.conn.execute(
        select(activities.c.member_id, activities.c.programme_id).where(
            activities.c.id == activity_id, activities.c.tenant_id == tenant_id
        )
    ).first()
    if activity is None:
        raise NotFound(ErrorCode.NOT_FOUND, f"no activity {activity_id}")
    if activity.member_id is None:
        return 0
    lock_members(uow, activity.member_id)
    programme = load_programme(uow, activity.programme_id)
    pending = uow.conn.execute(
        select(lots.c.id).where(lots.c.activity_id == activity_id, lots.c.status == "pending")
    ).scalars()
    activated = sum(
        postings.activate(uow, programme, lot_id=lot_id, at=uow.now()) for lot_id in pending
    )
    uow.commit()
    return activated


def hold_points(
    uow: UnitOfWork, *, tenant_id: str, member_id: str, points: int, idempotency_key: str
) -> str:
    """Reserve points (first phase of a redemption made elsewhere, e.g. a shop's checkout)."""
    if points <= 0:
        raise InvalidInput(ErrorCode.INVALID_AMOUNT, "a hold needs a positive number of points")
    member = get_member(uow, member_id, tenant_id=tenant_id)
    lock_members(uow, member_id)
    replayed = _replayed_hold(uow, tenant_id, idempotency_key, member_id, points)
    if replayed:
        return replayed
    programme = load_programme(uow, member.programme_id)
    try:
        hold_id = postings.hold(
            uow, programme, member_id=member_id, amount=points, key=idempotency_key, at=uow.now()
        )
    except IntegrityError as exc:
        return _replayed_after_race(
            uow, exc, lambda: _replayed_hold(uow, tenant_id, idempotency_key, member_id, points)
        )
    uow.commit()
    return hold_id


def _replayed_hold(
    uow: UnitOfWork, tenant_id: str, key: str, member_id: str, points: int
) -> str | None:
    existing = uow.conn.execute(
        select(transfers.c.hold_id, transfers.c.member_id, transfers.c.amount).where(
            transfers.c.tenant_id == tenant_id, transfers.c.idempotency_key == key
        )
    ).first()
    if existing is None:
        return None
    if existing.member_id != member_id or existing.amount != points or not existing.hold_id:
        raise Conflict(ErrorCode.IDEMPOTENCY_KEY_REUSE, "idempotency key used for another request")
    return str(existing.hold_id)


def _replayed_after_race(
    uow: UnitOfWork, exc: IntegrityError, replay: Callable[[], str | None]
) -> str:
    """The idempotency key was taken while this request ran: the member lock serialises one
    member's requests, not two members' requests that share a key. Answer as if the other
    request had committed first: its result for a retry, ``idempotency_key_reuse`` otherwise."""
    if not is_unique_violation(exc):
        raise exc
    uow.rollback()
    replayed = replay()
    if replayed is None:
        raise exc
    return replayed


def capture_hold(uow: UnitOfWork, *, tenant_id: str, hold_id: str) -> None:
    """Second phase: the held points are spent (``points.redeemed``, like a reward)."""
    programme, member_id, points = _hold_programme(uow, tenant_id, hold_id)
    now = uow.now()
    postings.capture(uow, programme, hold_id=hold_id, at=now)
    touch_member(uow, member_id, now, purchase=False)
    uow.publish(
        Event(
            tenant_id,
            "points.redeemed",
            {"member_id": member_id, "points": points, "hold_id": hold_id},
        )
    )
    uow.commit()


def void_hold(uow: UnitOfWork, *, tenant_id: str, hold_id: str) -> None:
    """Second phase, the other way: the held points go back to the lots they came from."""
    programme, member_id, points = _hold_programme(uow, tenant_id, hold_id)
    postings.void(uow, programme, hold_id=hold_id, at=uow.now())
    uow.publish(
        Event(
            tenant_id,
            "points.released",
            {"member_id": member_id, "points": points, "hold_id": hold_id},
        )
    )
    uow.commit()


def _hold_programme(uow: UnitOfWork, tenant_id: str, hold_id: str) -> tuple[Programme, str, int]:
    row = uow.conn.execute(
        select(holds.c.member_id, holds.c.programme_id, holds.c.amount).where(
            holds.c.id == hold_id, holds.c.tenant_id == tenant_id
        )
    ).first()
    if row is None:
        raise NotFound(ErrorCode.HOLD_NOT_FOUND, f"no hold {hold_id}")
    lock_members(uow, row.member_id)
    return load_programme(uow, row.programme_id), row.member_id, int(row.amount)
