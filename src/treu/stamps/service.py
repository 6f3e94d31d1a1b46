"""Stamp cards: stamps for purchases, full cards, stamps taken back by returns, expiry.

Stamps live in the ledger (``Unit.STAMPS``): earning posts issuance -> the member's available
stamps, a full card posts its stamps available -> redemption and gives the card's voucher, a
return posts available -> issuance, an expired card (or surplus without carry-over) available
-> breakage. ``stamp_cards.stamps`` of the open card mirrors the ledger, so the member's stamps
balance always equals the sum over their open cards (``treu ledger verify`` checks it).

:func:`after_activity` runs inside the activity's transaction with the member locked (called by
``treu.mechanics.service``); it never commits. This module must not import the mechanics or
activities services (they import it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, bindparam, func, insert, select, update

from treu.errors import Rejected
from treu.ids import new_id
from treu.ledger import postings
from treu.ledger.model import MemberAccount, SystemAccount, TransferKind, Unit, start_of_day
from treu.mechanics.model import ActivityDone, Effect
from treu.members.service import get_member
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.rewards.service import VoucherView, grant_voucher, withdraw_granted_voucher
from treu.rewards.tables import vouchers
from treu.stamps.model import StampCardDef, almost_complete, fill, stamps_for
from treu.stamps.tables import stamp_awards, stamp_cards
from treu.storage.locks import lock_members
from treu.storage.types import UTCDateTime
from treu.storage.uow import Event, UnitOfWork

MECHANIC = "stamps"


@dataclass(frozen=True)
class StampCardView:
    """One card of a member: the open one (``n`` of ``stamps_needed``) or a completed one with
    its voucher."""

    card_key: str
    name: str
    number: int
    stamps: int
    stamps_needed: int
    status: str
    reward: str
    voucher_code: str | None
    voucher_status: str | None
    first_stamp_at: datetime | None
    completed_at: datetime | None


# --- the hook ---------------------------------------------------------------------------------


def after_activity(uow: UnitOfWork, done: ActivityDone) -> list[Effect]:
    """Stamps for a purchase, stamps back for a return, on every card type of the programme."""
    cards = done.programme.document.stamp_cards
    if not cards or done.basket is None:
        return []
    effects: list[Effect] = []
    for card in cards:
        if done.type == "purchase":
            effects += _stamp(uow, done, card)
        elif done.type == "return" and done.purchase_id is not None:
            effects += _take_back(uow, done, card, done.purchase_id)
    return effects


def _stamp(uow: UnitOfWork, done: ActivityDone, card: StampCardDef) -> list[Effect]:
    programme, member_id = done.programme, done.member_id
    assert done.basket is not None
    day = programme.local_date(done.occurred_at)
    today = _stamped_on(uow, member_id, card.key, day) if card.caps.max_per_day else 0
    decision = stamps_for(card, done.basket, stamped_today=today)
    if decision.stamps == 0:
        # Nothing to record for a return to find: the effect carries the reason.
        number, stamps = _peek(uow, member_id, card.key)
        data = _card_data(card, number, stamps)
        return [Effect(MECHANIC, "stamps.not_earned", decision.explanation, data)]
    _record_award(
        uow,
        done,
        card,
        done.activity_id,
        day,
        decision.stamps,
        decision.explanation,
        units=decision.units,
    )
    open_card = _open_card(uow, programme, member_id, card)
    key = f"stamps:{done.activity_id}:{card.key}"
    _post_stamps(
        uow,
        done,
        TransferKind.EARN,
        into=SystemAccount.ISSUANCE,
        amount=decision.stamps,
        key=key,
        reason=decision.explanation,
    )
    sized = card.model_copy(update={"stamps_needed": open_card.stamps_needed})
    result = fill(sized, open_card.stamps, decision.stamps)
    effects: list[Effect] = []
    current = open_card
    for i in range(result.completed):
        effects.append(_complete(uow, done, card, current, f"{key}:complete:{i}"))
        current = _new_card(uow, programme, member_id, card)
    if result.forfeited:
        forfeit = f"{card.name}: {result.forfeited} surplus stamps do not carry over"
        effects.append(
            Effect(
                MECHANIC,
                "stamps.forfeited",
                forfeit,
                {"card": card.key},
                unit=Unit.STAMPS.value,
                amount=-result.forfeited,
            )
        )
        _post_stamps(
            uow,
            done,
            TransferKind.EXPIRE,
            out_of=SystemAccount.BREAKAGE,
            amount=result.forfeited,
            key=f"{key}:forfeit",
            reason=forfeit,
        )
    _set_stamps(uow, current.id, result.left, done.occurred_at)
    earned = Effect(
        MECHANIC,
        "stamps.earned",
        decision.explanation,
        _card_data(card, current.number, result.left, sized.stamps_needed),
        unit=Unit.STAMPS.value,
        amount=decision.stamps,
    )
    if almost_complete(sized, result.left):
        _almost_complete(uow, programme, member_id, card, current.id, current.number)
    return [earned, *effects]


def _post_stamps(
    uow: UnitOfWork,
    done: ActivityDone,
    kind: TransferKind,
    *,
    into: SystemAccount | None = None,
    out_of: SystemAccount | None = None,
    amount: int,
    key: str,
    reason: str,
) -> str:
    """Move stamps of this activity between the member's stamps and a system account: ``into``
    the member from it, or ``out_of`` the member into it. Returns the transfer id."""
    member = postings.member_acc(done.member_id, MemberAccount.AVAILABLE, Unit.STAMPS)
    system = into or out_of
    assert system is not None
    assert (into is None) != (out_of is None), "give exactly one of into, out_of"
    other = postings.system_acc(done.programme, system, Unit.STAMPS)
    return postings.post(
        uow,
        done.programme,
        kind=kind,
        debit=other if into else member,
        credit=member if into else other,
        amount=amount,
        key=key,
        member_id=done.member_id,
        at=done.occurred_at,
        activity_id=done.activity_id,
        reason=reason,
        unit=Unit.STAMPS,
    )


def _complete(
    uow: UnitOfWork, done: ActivityDone, card: StampCardDef, row: Any, key: str
) -> Effect:
    """A full card: its stamps go to redemption and its voucher is given (once per card)."""
    programme, member_id = done.programme, done.member_id
    reason = f"{card.name} #{row.number} complete"
    _post_stamps(
        uow,
        done,
        TransferKind.COMPLETE,
        out_of=SystemAccount.REDEMPTION,
        amount=row.stamps_needed,
        key=key,
        reason=reason,
    )
    voucher: VoucherView | None = None
    refusal: Rejected | None = None
    try:
        voucher, _ = grant_voucher(
            uow,
            programme,
            member_id=member_id,
            reward_key=card.reward,
            grant_key=f"stampcard:{row.id}",
            reason=reason,
        )
    except Rejected as exc:
        # Out of stock or withdrawn (grant_voucher refuses before it writes anything). The
        # purchase must not fail at the till for it: the card completes without a voucher, the
        # effect and event say so, and staff give one by hand.
        refusal = exc
    uow.conn.execute(
        update(stamp_cards)
        .where(stamp_cards.c.id == row.id)
        .values(
            status="completed",
            stamps=row.stamps_needed,
            voucher_id=voucher.id if voucher else None,
            completed_at=done.occurred_at,
            first_stamp_at=func.coalesce(stamp_cards.c.first_stamp_at, done.occurred_at),
        )
    )
    data = {
        "card": card.key,
        "number": row.number,
        "reward": card.reward,
        "voucher_id": voucher.id if voucher else None,
        "code": voucher.code if voucher else None,
    }
    if refusal is not None:
        data["voucher_error"] = refusal.code.value
    uow.publish(
        Event(programme.tenant_id, "stamp_card.completed", {"member_id": member_id, **data})
    )
    if voucher is not None:
        text = f"{reason}: voucher {voucher.reward_name} ({voucher.code})"
    else:
        text = f"{reason}: no voucher could be issued ({refusal.message if refusal else ''})"
    # unit/amount: the card's stamps left the member's balance (the history explains it)
    return Effect(
        MECHANIC, "card.completed", text, data, unit=Unit.STAMPS.value, amount=-row.stamps_needed
    )


def _almost_complete(
    uow: UnitOfWork,
    programme: Programme,
    member_id: str,
    card: StampCardDef,
    card_id: str,
    number: int,
) -> None:
    """The "Noch 1 Stempel" moment: published once per card instance, whatever returns do."""
    first = uow.conn.execute(
        update(stamp_cards)
        .where(stamp_cards.c.id == card_id, stamp_cards.c.almost_complete_at.is_(None))
        .values(almost_complete_at=uow.now())
    )
    if first.rowcount == 1:
        uow.publish(
            Event(
                programme.tenant_id,
                "stamps.almost_complete",
                {
                    "member_id": member_id,
                    "card": card.key,
                    "card_name": card.name,
                    "number": number,
                    "stamps": card.stamps_needed - 1,
                    "stamps_needed": card.stamps_needed,
                    "reward": card.reward,
                },
            )
        )


def _take_back(
    uow: UnitOfWork, done: ActivityDone, card: StampCardDef, purchase_id: str
) -> list[Effect]:
    """A return: the purchase keeps the stamps what is left of it earns (never more than it
    got); the others come off the open card. Stamps already spent into a completed card cancel
    that card's unused voucher (``on_return: cancel_voucher``) or are forgiven."""
    programme, member_id = done.programme, done.member_id
    assert done.basket is not None
    given, units = _given_for(uow, purchase_id, card.key)
    if given <= 0:
        return []
    decision = stamps_for(card, done.basket, units_before=units)
    take = given - min(given, decision.stamps)
    if take <= 0:
        return []
    key = f"stamps:{done.activity_id}:{card.key}"
    effects: list[Effect] = []
    open_card = _open_card(uow, programme, member_id, card)
    taken = _reverse(uow, done, card, open_card, min(take, open_card.stamps), f"{key}:open")
    forgiven = 0
    rest = take - taken
    reopened = 0
    while rest > 0:
        last = _last_completed(uow, member_id, card.key)
        if last is None or card.on_return == "keep_voucher" or not _withdraw(uow, last):
            forgiven = rest
            break
        effects.append(
            Effect(
                MECHANIC,
                "voucher.cancelled",
                f"{card.name} #{last.number}: voucher cancelled, the card reopened with its "
                f"{last.stamps_needed} stamps",
                {"card": card.key, "number": last.number, "voucher_id": last.voucher_id},
                # the reopened card's stamps come back to the balance (the return then takes
                # its own off them): the stamp effects of an activity add up to its change
                unit=Unit.STAMPS.value,
                amount=last.stamps_needed,
            )
        )
        reopened += 1
        _post_stamps(
            uow,
            done,
            TransferKind.RESTORE,
            into=SystemAccount.REDEMPTION,
            amount=last.stamps_needed,
            key=f"{key}:reopen:{reopened}",
            reason=f"{card.name} #{last.number} reopened by a return",
        )
        # The open card is empty now (its stamps were taken first): the reopened one replaces it.
        _close(uow, open_card.id, "cancelled")
        uow.conn.execute(
            update(stamp_cards)
            .where(stamp_cards.c.id == last.id)
            .values(status="open", voucher_id=None, completed_at=None)
        )
        open_card = _card(uow, last.id)
        step = _reverse(
            uow, done, card, open_card, min(rest, open_card.stamps), f"{key}:reopen:{reopened}:back"
        )
        rest -= step
        taken += step
        open_card = _card(uow, last.id)
    text = f"{card.name}: {take} {'stamp' if take == 1 else 'stamps'} taken back by the return"
    if forgiven:
        text += f" ({forgiven} already on a completed card, forgiven)"
    _record_award(
        uow,
        done,
        card,
        purchase_id,
        programme.local_date(done.occurred_at),
        -take,
        text,
        forgiven=forgiven,
    )
    returned = Effect(
        MECHANIC,
        "stamps.returned",
        text,
        {**_card_data(card, open_card.number, open_card.stamps), "forgiven": forgiven},
        unit=Unit.STAMPS.value,
        amount=-taken,
    )
    return [returned, *effects]


def _reverse(
    uow: UnitOfWork, done: ActivityDone, card: StampCardDef, row: Any, amount: int, key: str
) -> int:
    if amount <= 0:
        return 0
    _post_stamps(
        uow,
        done,
        TransferKind.REVERSE,
        out_of=SystemAccount.ISSUANCE,
        amount=amount,
        key=key,
        reason=f"{card.name}: returned",
    )
    uow.conn.execute(
        update(stamp_cards)
        .where(stamp_cards.c.id == row.id, stamp_cards.c.stamps >= amount)
        .values(stamps=stamp_cards.c.stamps - amount)
    )
    return amount


def _withdraw(uow: UnitOfWork, card: Any) -> bool:
    """Cancel a full card's voucher if it is still unused (the member keeps it otherwise)."""
    return withdraw_granted_voucher(
        uow, tenant_id=card.tenant_id, voucher_id=card.voucher_id, member_id=card.member_id
    )


# --- expiry of incomplete cards (a nightly step) ---------------------------------------------


def expire_stamp_cards(
    uow: UnitOfWork, *, programme_id: str, day: date, limit: int
) -> list[tuple[str, Effect]]:
    """Expire up to ``limit`` open cards whose first stamp is older than their card type's
    ``expires_after_days`` as of the start of ``day``: their stamps go to breakage. The caller
    commits; returns (member id, effect) per expired card (none: nothing left to do)."""
    programme = load_programme(uow, programme_id)
    as_of = start_of_day(day, programme.tz)
    done: list[tuple[str, Effect]] = []
    for card in programme.document.stamp_cards:
        if card.expires_after_days is None:
            continue
        due = uow.conn.execute(
            select(stamp_cards.c.id, stamp_cards.c.member_id)
            .where(
                stamp_cards.c.programme_id == programme_id,
                stamp_cards.c.card_key == card.key,
                stamp_cards.c.status == "open",
                stamp_cards.c.stamps > 0,
                stamp_cards.c.first_stamp_at <= as_of - timedelta(days=card.expires_after_days),
            )
            .order_by(stamp_cards.c.id)
            .limit(limit - len(done))
        ).all()
        if due:
            lock_members(uow, *{r.member_id for r in due})
        for card_id, member_id in due:
            row = _card(uow, card_id)
            if row.status != "open" or row.stamps == 0:
                continue
            postings.post(
                uow,
                programme,
                kind=TransferKind.EXPIRE,
                debit=postings.member_acc(member_id, MemberAccount.AVAILABLE, Unit.STAMPS),
                credit=postings.system_acc(programme, SystemAccount.BREAKAGE, Unit.STAMPS),
                amount=row.stamps,
                key=f"stamps:expire:{card_id}",
                member_id=member_id,
                at=uow.now(),
                reason=f"{card.name} #{row.number}: expired {card.expires_after_days} days "
                "after its first stamp",
                unit=Unit.STAMPS,
            )
            _close(uow, card_id, "expired")
            uow.publish(
                Event(
                    programme.tenant_id,
                    "stamps.expired",
                    {"member_id": member_id, "card": card.key, "stamps": row.stamps},
                )
            )
            done.append((member_id, _expired(card, row)))
        if len(done) >= limit:
            break
    return done


def _expired(card: StampCardDef, row: Any) -> Effect:
    return Effect(
        MECHANIC,
        "stamps.expired",
        f"{card.name} #{row.number}: {row.stamps} stamps expired {card.expires_after_days} days "
        "after the first",
        {"card": card.key, "number": row.number},
        unit=Unit.STAMPS.value,
        amount=-row.stamps,
    )


# --- reading ----------------------------------------------------------------------------------


def member_stamp_cards(uow: UnitOfWork, *, tenant_id: str, member_id: str) -> list[StampCardView]:
    """The member's current card of every card type (``n`` of ``N``; an untouched type shows
    0), then their completed cards with their vouchers, oldest first."""
    member = get_member(uow, member_id, tenant_id=tenant_id)
    programme = load_programme(uow, member.programme_id)
    rows = uow.conn.execute(
        select(stamp_cards, vouchers.c.code, vouchers.c.status.label("voucher_status"))
        .outerjoin(vouchers, vouchers.c.id == stamp_cards.c.voucher_id)
        .where(stamp_cards.c.member_id == member_id)
        .order_by(stamp_cards.c.card_key, stamp_cards.c.number)
    ).all()
    out: list[StampCardView] = []
    for card in programme.document.stamp_cards:
        mine = [r for r in rows if r.card_key == card.key]
        current = next((r for r in mine if r.status == "open"), None)
        if current is None:
            number = max((r.number for r in mine), default=0) + 1
            out.append(_view(card, None, number, 0, card.stamps_needed, "open"))
        else:
            out.append(_view(card, current))
    for card in programme.document.stamp_cards:
        out += [_view(card, r) for r in rows if r.card_key == card.key and r.status == "completed"]
    return out


def _view(
    card: StampCardDef,
    row: Any,
    number: int = 0,
    stamps: int = 0,
    needed: int = 0,
    status: str = "open",
) -> StampCardView:
    if row is None:
        return StampCardView(
            card.key, card.name, number, stamps, needed, status, card.reward, None, None, None, None
        )
    return StampCardView(
        card.key,
        card.name,
        row.number,
        row.stamps,
        row.stamps_needed,
        row.status,
        card.reward,
        row.code,
        row.voucher_status,
        row.first_stamp_at,
        row.completed_at,
    )


# --- internals ----------------------------------------------------------------------------------


def _card_data(
    card: StampCardDef, number: int, stamps: int, needed: int | None = None
) -> dict[str, Any]:
    return {
        "card": card.key,
        "name": card.name,
        "number": number,
        "stamps": stamps,
        "stamps_needed": needed or card.stamps_needed,
    }


def _stamped_on(uow: UnitOfWork, member_id: str, card_key: str, day: date) -> int:
    """Stamps this card type gave the member's purchases on ``day`` (a return does not give the
    day's stamp back: the cap counts visits, not what stayed)."""
    params = {"member_id": member_id, "card_key": card_key, "day": day}
    return int(uow.conn.execute(_STAMPED_ON, params).scalar_one())


# The purchase path runs these for every purchase: built once, so SQLAlchemy neither builds
# nor computes a cache key for a new statement each time.
_STAMPED_ON = select(func.coalesce(func.sum(stamp_awards.c.stamps), 0)).where(
    stamp_awards.c.member_id == bindparam("member_id"),
    stamp_awards.c.card_key == bindparam("card_key"),
    stamp_awards.c.local_day == bindparam("day", type_=Date()),
    stamp_awards.c.stamps > 0,
)
_CARDS_OF = select(stamp_cards.c.number, stamp_cards.c.stamps, stamp_cards.c.status).where(
    stamp_cards.c.member_id == bindparam("member_id"),
    stamp_cards.c.card_key == bindparam("card_key"),
)
_OPEN_CARD = select(stamp_cards).where(
    stamp_cards.c.member_id == bindparam("member_id"),
    stamp_cards.c.card_key == bindparam("card_key"),
    stamp_cards.c.status == "open",
)
_LAST_NUMBER = select(func.max(stamp_cards.c.number)).where(
    stamp_cards.c.member_id == bindparam("member_id"),
    stamp_cards.c.card_key == bindparam("card_key"),
)
# The new card comes back from the insert itself (SQLite 3.35+ and PostgreSQL both return it).
_INSERT_CARD = insert(stamp_cards).returning(*stamp_cards.c)
_INSERT_AWARD = insert(stamp_awards)
_CARD = select(stamp_cards).where(stamp_cards.c.id == bindparam("card_id"))
_SET_STAMPS = {
    # a card left empty (every stamp taken by a full card) has no first stamp yet
    filled: update(stamp_cards)
    .where(stamp_cards.c.id == bindparam("card_id"))
    .values(
        stamps=bindparam("stamps"),
        first_stamp_at=(
            func.coalesce(stamp_cards.c.first_stamp_at, bindparam("at", type_=UTCDateTime()))
            if filled
            else None
        ),
    )
    for filled in (False, True)
}


def _given_for(
    uow: UnitOfWork, purchase_id: str, card_key: str
) -> tuple[int, dict[int, tuple[int, int]]]:
    """What a purchase's stamps on this card come to after its returns so far, and the units
    the purchase itself was stamped for."""
    rows = uow.conn.execute(
        select(stamp_awards.c.activity_id, stamp_awards.c.stamps, stamp_awards.c.units).where(
            stamp_awards.c.purchase_id == purchase_id, stamp_awards.c.card_key == card_key
        )
    ).all()
    given = sum(int(r.stamps) for r in rows)
    units = next(
        (
            {int(i): (int(u), int(p)) for i, (u, p) in r.units.items()}
            for r in rows
            if r.activity_id == purchase_id
        ),
        {},
    )
    return given, units


def _record_award(
    uow: UnitOfWork,
    done: ActivityDone,
    card: StampCardDef,
    purchase_id: str,
    day: date,
    stamps: int,
    explanation: str,
    *,
    units: dict[int, tuple[int, int]] | None = None,
    forgiven: int = 0,
) -> None:
    uow.conn.execute(
        _INSERT_AWARD,
        {
            "id": new_id("stamp_award"),
            "tenant_id": done.programme.tenant_id,
            "programme_id": done.programme.id,
            "member_id": done.member_id,
            "activity_id": done.activity_id,
            "purchase_id": purchase_id,
            "card_key": card.key,
            "local_day": day,
            "stamps": stamps,
            "forgiven": forgiven,
            "explanation": explanation,
            "units": {str(i): list(v) for i, v in (units or {}).items()},
            "created_at": uow.now(),
        },
    )


def _peek(uow: UnitOfWork, member_id: str, card_key: str) -> tuple[int, int]:
    """(number, stamps) of the member's current card of this type, without starting one."""
    rows = uow.conn.execute(_CARDS_OF, {"member_id": member_id, "card_key": card_key}).all()
    current = next(((n, s) for n, s, status in rows if status == "open"), None)
    return current or (max((n for n, _, _ in rows), default=0) + 1, 0)


def _open_card(uow: UnitOfWork, programme: Programme, member_id: str, card: StampCardDef) -> Any:
    """The member's current card of this type, started now if they have none open."""
    row = uow.conn.execute(_OPEN_CARD, {"member_id": member_id, "card_key": card.key}).first()
    if row is not None:
        return row
    return _new_card(uow, programme, member_id, card)


def _new_card(uow: UnitOfWork, programme: Programme, member_id: str, card: StampCardDef) -> Any:
    """The member's next card of this type (numbered after every earlier one, including a
    card a return cancelled)."""
    last = uow.conn.execute(_LAST_NUMBER, {"member_id": member_id, "card_key": card.key}).scalar()
    return uow.conn.execute(
        _INSERT_CARD,
        {
            "id": new_id("stamp_card"),
            "tenant_id": programme.tenant_id,
            "programme_id": programme.id,
            "member_id": member_id,
            "card_key": card.key,
            "number": (last or 0) + 1,
            "stamps_needed": card.stamps_needed,
            "stamps": 0,
            "status": "open",
            "created_at": uow.now(),
        },
    ).one()


def _card(uow: UnitOfWork, card_id: str) -> Any:
    return uow.conn.execute(_CARD, {"card_id": card_id}).one()


def _set_stamps(uow: UnitOfWork, card_id: str, stamps: int, at: datetime) -> None:
    # The member is locked and the ledger moved by the same amounts in this transaction: the
    # count is the ledger's, written once (the CHECK keeps it within 0..stamps_needed).
    params = {"card_id": card_id, "stamps": stamps, "at": at}
    uow.conn.execute(_SET_STAMPS[stamps > 0], params)


def _close(uow: UnitOfWork, card_id: str, status: str) -> None:
    uow.conn.execute(
        update(stamp_cards)
        .where(stamp_cards.c.id == card_id, stamp_cards.c.status == "open")
        .values(status=status, closed_at=uow.now())
    )


def _last_completed(uow: UnitOfWork, member_id: str, card_key: str) -> Any:
    return uow.conn.execute(
        select(stamp_cards)
        .where(
            stamp_cards.c.member_id == member_id,
            stamp_cards.c.card_key == card_key,
            stamp_cards.c.status == "completed",
        )
        .order_by(stamp_cards.c.number.desc())
        .limit(1)
    ).first()
