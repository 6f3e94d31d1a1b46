"""Use cases for activities: purchases, returns, custom actions, receipt claims, simulation.

Every activity is written once. Sending the same external id again is a no-op that returns the
first result (``replayed=True``), whether the retry arrives later or at the same moment: the
member lock serialises a member's activities, and the insert itself is ``ON CONFLICT DO NOTHING``
against the unique (programme, type, external id) for activities without a member.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import bindparam, func, insert, select, update

from treu.activities.model import (
    ActionIn,
    Basket,
    PurchaseIn,
    ReturnIn,
    build_basket,
    returned_per_line,
)
from treu.activities.tables import activities, awards
from treu.errors import ErrorCode, InvalidInput, NotFound, Rejected
from treu.ids import new_id
from treu.ledger import postings
from treu.ledger.model import MemberAccount, Unit, activates_at, expires_at
from treu.ledger.tables import accounts
from treu.mechanics import service as mechanics
from treu.mechanics.model import ActivityDone, Effect, Standing
from treu.members.model import MemberStatus
from treu.members.service import (
    LockedMember,
    resolve_member_for_write,
    resolve_member_id,
    resolve_member_ids,
    touch_member,
)
from treu.members.tables import members
from treu.programmes.model import Programme, ProgrammeDocument
from treu.programmes.service import load_programme, load_revision, store_ids
from treu.programmes.tables import rule_budgets
from treu.rules.model import Award, EarnContext, MemberFacts, Period, evaluate, limits_reached
from treu.storage.locks import lock_members
from treu.storage.sql import insert_or_skip
from treu.storage.uow import Event, UnitOfWork

# A till's clock may run a little ahead; anything further in the future is a mistake.
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class AwardLine:
    rule_key: str
    points: int
    explanation: str


@dataclass(frozen=True)
class ActivityResult:
    activity_id: str
    type: str
    external_id: str
    member_id: str | None
    points: int
    awards: list[AwardLine] = field(default_factory=list)
    replayed: bool = False
    pending: bool = False
    forgiven: int = 0
    effects: list[Effect] = field(default_factory=list)  # stamps, vouchers, tier, cashback ...


def record_purchase(
    uow: UnitOfWork,
    *,
    programme_id: str,
    purchase: PurchaseIn,
    member: str | None = None,
    accept_late: bool = False,
) -> ActivityResult:
    """Record a purchase, by a member (``member``: id or ``kind:value``) or by a guest.

    A purchase sent with its own ``occurred_at`` earns under the rules in force then. One older
    than the programme's ``offline_window_hours`` (a till offline for longer) is refused with
    ``activity_too_old`` — unless it was recorded before (a resend is a replay), or
    ``accept_late`` (a shop's webhook, which carries the order's time however late it comes).
    """
    now = uow.now()
    occurred = _occurred(purchase.occurred_at, now)
    programme = load_programme(uow, programme_id, at=occurred)
    window = None if accept_late else _late_window(uow, programme_id)
    if window is not None and now - occurred > window:
        replay = _replay(uow, programme_id, "purchase", purchase.external_id)
        if replay is not None:
            return replay
        raise Rejected(
            ErrorCode.ACTIVITY_TOO_OLD,
            f"the purchase is from {occurred.isoformat()}: this programme accepts purchases"
            f" up to {int(window.total_seconds() // 3600)} hours late",
        )
    locked = (
        resolve_member_for_write(uow, programme_id=programme_id, reference=member)
        if member is not None
        else None
    )
    member_id = locked.id if locked else None
    facts = (locked.status, locked.first_purchase_at is None, locked.attributes) if locked else None
    result = _record_purchase(uow, programme, purchase, member_id, occurred, facts)
    if result is None:  # the same purchase committed a moment ago by a concurrent request
        uow.rollback()
        return _replay(uow, programme_id, "purchase", purchase.external_id) or _gone(
            purchase.external_id
        )
    if not result.replayed:
        uow.commit()
    return result


def record_purchases(
    uow: UnitOfWork, *, programme_id: str, items: Sequence[tuple[str | None, PurchaseIn]]
) -> list[ActivityResult]:
    """Record many purchases in one transaction (bulk import): ``items`` are (member, purchase)
    pairs as :func:`record_purchase` takes them, results come back in the same order.

    Each purchase is recorded exactly as :func:`record_purchase` would, one after the other, and
    sees the ones before it (first purchase, caps, budgets); a purchase sent twice, within the
    batch or earlier, is a replay. All or nothing: a purchase that is rejected (unknown or
    blocked member, unknown store, a time in the future) rolls the whole batch back and raises,
    with a note naming the item. The members are locked up front, in id order, like every
    multi-member lock.
    """
    now = uow.now()
    references = [reference for reference, _ in items if reference is not None]
    member_ids = resolve_member_ids(uow, programme_id=programme_id, references=references)
    occurred: list[datetime] = []
    for index, (reference, purchase) in enumerate(items):
        with _naming_item(index, purchase):
            occurred.append(_occurred(purchase.occurred_at, now))
            if reference is not None and reference not in member_ids:
                # raises why the reference names no member (or finds one enrolled just now)
                member_ids[reference] = resolve_member_id(
                    uow, programme_id=programme_id, reference=reference
                )
    lock_members(uow, *member_ids.values())
    # Read under the locks, once for the batch; a recorded purchase ends a member's "first
    # purchase" (touch_member sets first_purchase_at), nothing here changes status or attributes.
    facts = _members_facts(uow, member_ids.values())
    results: list[ActivityResult] = []
    for index, ((reference, purchase), at) in enumerate(zip(items, occurred, strict=True)):
        with _naming_item(index, purchase):
            programme = load_programme(uow, programme_id, at=at)
            member_id = None if reference is None else member_ids[reference]
            known = None if member_id is None else facts[member_id]
            result = _record_purchase(uow, programme, purchase, member_id, at, known)
            if result is None:
                # A concurrent request committed this purchase after the replay check; nothing
                # of it was written here, and a new statement sees the committed row.
                result = _replay(uow, programme_id, "purchase", purchase.external_id) or _gone(
                    purchase.external_id
                )
            if member_id is not None and not result.replayed:
                status, _, attributes = facts[member_id]
                facts[member_id] = (status, False, attributes)
        results.append(result)
    uow.commit()
    return results


@contextmanager
def _naming_item(index: int, purchase: PurchaseIn) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        exc.add_note(f"record_purchases: item {index}, external id {purchase.external_id!r}")
        raise


def _record_purchase(
    uow: UnitOfWork,
    programme: Programme,
    purchase: PurchaseIn,
    member_id: str | None,
    occurred: datetime,
    facts: tuple[str, bool, dict[str, Any]] | None = None,
) -> ActivityResult | None:
    """Record one purchase of a locked member (or a guest) without committing.

    ``facts``: the member's (status, first purchase pending, attributes) if just read under the
    lock, None to read them here. Returns the earlier result (``replayed``) for a purchase already
    recorded (earlier, or a moment ago by a concurrent request), even if the member was blocked
    since: a retry is not a new purchase. None only if the purchase it conflicted with cannot be
    read (nothing written).
    """
    basket = build_basket(purchase, programme.currency, programme.document.earning_base)
    store_id = _store_id(uow, programme.id, purchase.store)
    status, first, attributes = None, False, None
    standing = None
    if member_id is not None:
        status, first, attributes = facts or _member_facts(uow, member_id)
        standing = mechanics.standing(uow, programme, member_id, occurred)
    # The insert is the replay check (ON CONFLICT DO NOTHING on the external id): no row means
    # the purchase exists already, recorded earlier or a moment ago by a concurrent request.
    activity_id = _insert_activity(
        uow,
        programme,
        type="purchase",
        external_id=purchase.external_id,
        member_id=member_id,
        store_id=store_id,
        channel=purchase.channel,
        occurred_at=occurred,
        basket=basket,
        first_purchase=first,
        payload=purchase.model_dump(mode="json"),
        member_attributes=attributes,
        standing=standing,
    )
    if activity_id is None:
        return _replay(uow, programme.id, "purchase", purchase.external_id)
    if member_id is not None and status is not None:
        _require_active(member_id, status)  # raising rolls the insert back
    result = ActivityResult(activity_id, "purchase", purchase.external_id, member_id, 0)
    if member_id is not None:
        assert standing is not None
        ctx = _context(
            uow,
            programme,
            member_id,
            occurred,
            first,
            basket=basket,
            channel=purchase.channel,
            store=purchase.store,
            attributes=attributes,
            standing=standing,
        )
        result = _earn(uow, programme, member_id, activity_id, ctx, occurred, result)
        touch_member(uow, member_id, occurred, purchase=True)
        done = ActivityDone(
            programme,
            member_id,
            activity_id,
            "purchase",
            occurred,
            result.points,
            standing,
            basket=basket,
            first_purchase=first,
        )
        result = replace(result, effects=mechanics.after_activity(uow, done))
    uow.publish(
        Event(
            programme.tenant_id,
            "activity.recorded",
            {"activity_id": activity_id, "type": "purchase", "member_id": member_id},
        )
    )
    return result


def record_action(
    uow: UnitOfWork, *, programme_id: str, member: str, action: ActionIn
) -> ActivityResult:
    """Record a custom action (review, check-in, birthday, ...) and award its points."""
    now = uow.now()
    occurred = _occurred(action.occurred_at, now)
    programme = load_programme(uow, programme_id, at=occurred)
    locked = resolve_member_for_write(uow, programme_id=programme_id, reference=member)
    member_id = locked.id
    replay = _replay(uow, programme_id, "action", action.external_id)
    if replay:
        return replay
    _require_active(member_id, locked.status)
    standing = mechanics.standing(uow, programme, member_id, occurred)
    activity_id = _insert_activity(
        uow,
        programme,
        type="action",
        external_id=action.external_id,
        member_id=member_id,
        store_id=_store_id(uow, programme_id, action.store),
        channel=action.channel,
        occurred_at=occurred,
        basket=None,
        first_purchase=False,
        payload=action.model_dump(mode="json"),
        action_type=action.type,
        standing=standing,
    )
    if activity_id is None:
        uow.rollback()
        return _replay(uow, programme_id, "action", action.external_id) or _gone(action.external_id)
    ctx = _context(
        uow,
        programme,
        member_id,
        occurred,
        False,
        action_type=action.type,
        channel=action.channel,
        store=action.store,
        standing=standing,
        target=action.target,
    )
    spent = limits_reached(mechanics.earning_rules(programme), ctx)
    if spent:  # farmed in a loop, or the same target again: refused, nothing is written
        raise Rejected(
            ErrorCode.ACTION_LIMIT_REACHED,
            f"{action.type}: the member's limits of rule(s) {', '.join(spent)} are reached",
        )
    result = _earn(
        uow,
        programme,
        member_id,
        activity_id,
        ctx,
        occurred,
        ActivityResult(activity_id, "action", action.external_id, member_id, 0),
    )
    touch_member(uow, member_id, occurred, purchase=False)
    done = ActivityDone(
        programme,
        member_id,
        activity_id,
        "action",
        occurred,
        result.points,
        standing,
        action_type=action.type,
    )
    result = replace(result, effects=mechanics.after_activity(uow, done))
    uow.publish(
        Event(
            programme.tenant_id,
            "activity.recorded",
            {"activity_id": activity_id, "type": "action", "member_id": member_id},
        )
    )
    uow.commit()
    return result


def record_return(uow: UnitOfWork, *, programme_id: str, ret: ReturnIn) -> ActivityResult:
    """Record a full or partial return and take back the points the purchase no longer earns.

    The purchase's points are recomputed under the rules it was earned with, on what is left of
    the basket; each rule gives back the difference (never more than it gave). How much of that
    the member actually loses follows the programme's return policy.
    """
    now = uow.now()
    occurred = _occurred(ret.occurred_at, now)
    purchase = _locked_purchase(uow, programme_id, ret.purchase_external_id)
    member_id = purchase.member_id
    replay = _replay(uow, programme_id, "return", ret.external_id)
    if replay:
        return replay
    programme = load_revision(uow, purchase.revision_id)
    basket = _stored_basket(purchase.payload, programme)
    already = _returned_so_far(uow, purchase.id, len(basket.lines))
    back = returned_per_line(basket, already, ret, programme.currency)
    payload = {**ret.model_dump(mode="json"), "returned_minor": back}
    activity_id = _insert_activity(
        uow,
        programme,
        type="return",
        external_id=ret.external_id,
        member_id=member_id,
        store_id=purchase.store_id,
        channel=purchase.channel,
        occurred_at=occurred,
        basket=None,
        first_purchase=False,
        payload=payload,
        purchase_id=purchase.id,
        paid_minor=sum(back),
    )
    if activity_id is None:
        uow.rollback()
        return _replay(uow, programme_id, "return", ret.external_id) or _gone(ret.external_id)
    result = ActivityResult(activity_id, "return", ret.external_id, member_id, 0)
    if member_id:
        net = basket.after_returns([a + b for a, b in zip(already, back, strict=True)])
        result = _reverse(uow, programme, purchase, net, activity_id, result)
        touch_member(uow, member_id, occurred, purchase=False)
        done = ActivityDone(
            programme,
            member_id,
            activity_id,
            "return",
            occurred,
            result.points,
            Standing.from_json(purchase.standing),
            basket=net,
            purchase_id=purchase.id,
            purchase_occurred_at=purchase.occurred_at,
        )
        result = replace(result, effects=mechanics.after_activity(uow, done))
    uow.publish(
        Event(
            programme.tenant_id,
            "activity.recorded",
            {"activity_id": activity_id, "type": "return", "member_id": member_id},
        )
    )
    uow.commit()
    return result


def claim_purchase(
    uow: UnitOfWork, *, programme_id: str, member: str, external_id: str
) -> ActivityResult:
    """A member claims a purchase recorded without them (the receipt), within the claim window."""
    locked = _locked_member(uow, programme_id, member)
    assert locked is not None
    member_id = locked.id
    row = _purchase_row(uow, programme_id, external_id, for_update=True)
    if row.member_id == member_id:
        return _result(uow, row, replayed=True)
    if row.member_id is not None:
        raise Rejected(ErrorCode.ALREADY_CLAIMED, "this purchase belongs to another member")
    programme = load_revision(uow, row.revision_id)
    window = timedelta(days=programme.document.returns.claim_window_days)
    if uow.now() - row.occurred_at > window:
        raise Rejected(
            ErrorCode.CLAIM_WINDOW_CLOSED, f"purchases can be claimed within {window.days} days"
        )
    first = locked.first_purchase_at is None
    standing = mechanics.standing(uow, programme, member_id, row.occurred_at)
    claimed = uow.conn.execute(
        update(activities)
        .where(activities.c.id == row.id, activities.c.member_id.is_(None))
        .values(
            member_id=member_id,
            first_purchase=first,
            member_attributes=locked.attributes,
            standing=standing.to_json(),
        )
    )
    if claimed.rowcount != 1:
        raise Rejected(ErrorCode.ALREADY_CLAIMED, "this purchase was claimed a moment ago")
    # Points for what the guest kept: returns made before the claim are already netted out.
    basket = _stored_basket(row.payload, programme)
    net = basket.after_returns(_returned_so_far(uow, row.id, len(basket.lines)))
    ctx = _context(
        uow,
        programme,
        member_id,
        row.occurred_at,
        first,
        basket=net,
        channel=row.channel,
        store=row.payload.get("store"),
        attributes=locked.attributes,
        standing=standing,
    )
    result = _earn(
        uow,
        programme,
        member_id,
        row.id,
        ctx,
        row.occurred_at,
        ActivityResult(row.id, "purchase", external_id, member_id, 0),
    )
    touch_member(uow, member_id, row.occurred_at, purchase=True)
    done = ActivityDone(
        programme,
        member_id,
        row.id,
        "purchase",
        row.occurred_at,
        result.points,
        standing,
        basket=net,
        first_purchase=first,
    )
    result = replace(result, effects=mechanics.after_activity(uow, done))
    uow.publish(
        Event(
            programme.tenant_id, "activity.claimed", {"activity_id": row.id, "member_id": member_id}
        )
    )
    uow.commit()
    return result


def simulate_purchase(
    uow: UnitOfWork,
    *,
    programme_id: str,
    purchase: PurchaseIn,
    member: str | None = None,
    draft: ProgrammeDocument | None = None,
) -> list[Award]:
    """What would this basket earn, and why? Writes nothing.

    ``draft``: a document not applied yet (the console's form before saving), earned under
    instead of the revision in force.
    """
    occurred = _occurred(purchase.occurred_at, uow.now())
    programme = load_programme(uow, programme_id, at=occurred)
    if draft is not None:
        programme = replace(programme, document=draft)
    basket = build_basket(purchase, programme.currency, programme.document.earning_base)
    if member is None:
        ctx = EarnContext(
            "purchase",
            programme.local_time(occurred),
            basket=basket,
            channel=purchase.channel,
            store=purchase.store,
            member=MemberFacts(is_first_purchase=True),
            rounding=programme.document.rounding,
        )
    else:
        member_id = resolve_member_id(uow, programme_id=programme_id, reference=member)
        ctx = _context(
            uow,
            programme,
            member_id,
            occurred,
            _first_purchase_pending(uow, member_id),
            basket=basket,
            channel=purchase.channel,
            store=purchase.store,
            lock_budgets=False,
        )
    return evaluate(mechanics.earning_rules(programme), ctx)


def get_activity(uow: UnitOfWork, *, tenant_id: str, activity_id: str) -> ActivityResult:
    row = uow.conn.execute(
        select(activities).where(
            activities.c.id == activity_id, activities.c.tenant_id == tenant_id
        )
    ).first()
    if row is None:
        raise NotFound(ErrorCode.NOT_FOUND, f"no activity {activity_id}")
    return _result(uow, row, replayed=False)


# --- internals ---------------------------------------------------------------------------


def _occurred(given: datetime | None, now: datetime) -> datetime:
    if given is None:
        return now
    if given > now + FUTURE_TOLERANCE:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "occurred_at is in the future",
            errors=[{"path": "occurred_at", "message": "is in the future"}],
        )
    return given


def _late_window(uow: UnitOfWork, programme_id: str) -> timedelta | None:
    """The offline window as the programme says today (not as it said when the purchase was)."""
    hours = load_programme(uow, programme_id).document.offline_window_hours
    return None if hours is None else timedelta(hours=hours)


def _locked_member(
    uow: UnitOfWork, programme_id: str, reference: str | None
) -> LockedMember | None:
    if reference is None:
        return None
    locked = resolve_member_for_write(uow, programme_id=programme_id, reference=reference)
    _require_active(locked.id, locked.status)
    return locked


def _require_active(member_id: str, status: str) -> None:
    if status != MemberStatus.ACTIVE.value:
        raise Rejected(ErrorCode.MEMBER_BLOCKED, f"member {member_id} is {status}")


_FIRST_PURCHASE_AT = select(members.c.first_purchase_at).where(
    members.c.id == bindparam("member_id")
)
_FACTS = select(members.c.status, members.c.first_purchase_at, members.c.attributes).where(
    members.c.id == bindparam("member_id")
)


_DEBT_OF_MEMBER = (
    select(accounts.c.balance)
    .where(
        accounts.c.tenant_id == members.c.tenant_id,
        accounts.c.programme_id == members.c.programme_id,
        accounts.c.member_id == members.c.id,
        accounts.c.kind == MemberAccount.DEBT.value,
        accounts.c.unit == Unit.POINTS.value,
    )
    .scalar_subquery()
)
_FACTS_OF_MANY = select(
    members.c.id,
    members.c.status,
    members.c.first_purchase_at,
    members.c.attributes,
    _DEBT_OF_MEMBER.label("debt"),
).where(members.c.id.in_(bindparam("member_ids", expanding=True)))


def _members_facts(
    uow: UnitOfWork, member_ids: Iterable[str]
) -> dict[str, tuple[str, bool, dict[str, Any]]]:
    """:func:`_member_facts` of many members already locked, a few hundred per statement. Their
    debt balances come along (read after the locks were taken, so current): earning settles
    debt first, and need not read each one again."""
    ids = sorted(set(member_ids))
    out: dict[str, tuple[str, bool, dict[str, Any]]] = {}
    for start in range(0, len(ids), 500):
        chunk = {"member_ids": ids[start : start + 500]}
        for row in uow.conn.execute(_FACTS_OF_MANY, chunk):
            out[row.id] = (row.status, row.first_purchase_at is None, row.attributes)
            if row.debt is not None:
                postings.remember_balance(uow, row.id, MemberAccount.DEBT, int(row.debt))
    return out


def _first_purchase_pending(uow: UnitOfWork, member_id: str) -> bool:
    first_at = uow.conn.execute(_FIRST_PURCHASE_AT, {"member_id": member_id}).scalar()
    return first_at is None


def _member_facts(uow: UnitOfWork, member_id: str) -> tuple[str, bool, dict[str, Any]]:
    """(status, first purchase still pending, attributes) in one read of the member row."""
    row = uow.conn.execute(_FACTS, {"member_id": member_id}).one()
    return row.status, row.first_purchase_at is None, row.attributes


def _store_id(uow: UnitOfWork, programme_id: str, key: str | None) -> str | None:
    if key is None:
        return None
    store_id = store_ids(uow, programme_id).get(key)
    if store_id is None:
        raise NotFound(ErrorCode.STORE_NOT_FOUND, f"no store {key!r} in this programme")
    return store_id


def _insert_activity(
    uow: UnitOfWork,
    programme: Programme,
    *,
    type: str,
    external_id: str,
    member_id: str | None,
    store_id: str | None,
    channel: str | None,
    occurred_at: datetime,
    basket: Basket | None,
    first_purchase: bool,
    payload: dict[str, Any],
    action_type: str | None = None,
    purchase_id: str | None = None,
    paid_minor: int | None = None,
    member_attributes: dict[str, Any] | None = None,
    standing: Standing | None = None,
) -> str | None:
    activity_id = new_id("activity")
    values = {
        "id": activity_id,
        "tenant_id": programme.tenant_id,
        "programme_id": programme.id,
        "revision_id": programme.revision_id,
        "member_id": member_id,
        "store_id": store_id,
        "type": type,
        "action_type": action_type,
        "external_id": external_id,
        "channel": channel,
        "occurred_at": occurred_at,
        "recorded_at": uow.now(),
        "currency": programme.currency if (basket or paid_minor is not None) else None,
        "paid_minor": basket.paid_minor if basket else paid_minor,
        "base_minor": basket.base_minor if basket else None,
        "first_purchase": first_purchase,
        "purchase_id": purchase_id,
        "payload": payload,
        "member_attributes": member_attributes,
        "standing": None if standing is None else standing.to_json(),
    }
    statement = insert_or_skip(
        activities,
        tuple(values),
        conflict=("programme_id", "type", "external_id", "tenant_id"),
        returning="id",
    )
    return activity_id if uow.conn.execute(statement, values).scalar() is not None else None


def _replay(
    uow: UnitOfWork, programme_id: str, type: str, external_id: str
) -> ActivityResult | None:
    row = uow.conn.execute(
        _ACTIVITY_BY_EXTERNAL_ID,
        {"programme_id": programme_id, "type": type, "external_id": external_id},
    ).first()
    return None if row is None else _result(uow, row, replayed=True)


_ACTIVITY_BY_EXTERNAL_ID = select(activities).where(
    activities.c.programme_id == bindparam("programme_id"),
    activities.c.type == bindparam("type"),
    activities.c.external_id == bindparam("external_id"),
)


_PURCHASE_BY_EXTERNAL_ID = select(activities).where(
    activities.c.programme_id == bindparam("programme_id"),
    activities.c.type == "purchase",
    activities.c.external_id == bindparam("external_id"),
)


def _purchase_row(
    uow: UnitOfWork, programme_id: str, external_id: str, *, for_update: bool = False
) -> Any:
    statement = _PURCHASE_BY_EXTERNAL_ID
    if for_update and uow.dialect == "postgresql":
        statement = statement.with_for_update()
    row = uow.conn.execute(
        statement, {"programme_id": programme_id, "external_id": external_id}
    ).first()
    if row is None:
        raise NotFound(ErrorCode.PURCHASE_NOT_FOUND, f"no purchase {external_id!r}")
    return row


def _locked_purchase(uow: UnitOfWork, programme_id: str, external_id: str) -> Any:
    """The purchase row for a return, locked after its member (the lock order everywhere:
    member, then purchase), so two returns of one purchase, or a return and a receipt claim,
    never both count the same units."""
    row = _purchase_row(uow, programme_id, external_id)
    if row.member_id:
        lock_members(uow, row.member_id)
    locked = _purchase_row(uow, programme_id, external_id, for_update=True)
    if locked.member_id != row.member_id and locked.member_id:
        lock_members(uow, locked.member_id)  # claimed between the two reads
    return locked


def _returned_so_far(uow: UnitOfWork, purchase_id: str, lines: int) -> list[int]:
    """Minor units already returned per basket line, over every earlier return."""
    already = [0] * lines
    for (payload,) in uow.conn.execute(_RETURNS_OF, {"purchase_id": purchase_id}):
        for i, amount in enumerate(payload["returned_minor"]):
            already[i] += amount
    return already


_RETURNS_OF = select(activities.c.payload).where(
    activities.c.purchase_id == bindparam("purchase_id"), activities.c.type == "return"
)


def _gone(external_id: str) -> ActivityResult:
    raise RuntimeError(f"activity {external_id!r} conflicted but cannot be read back")


_AWARDS_OF = (
    select(awards.c.rule_key, awards.c.points, awards.c.explanation)
    .where(awards.c.activity_id == bindparam("activity_id"))
    .order_by(awards.c.id)
)


def _result(uow: UnitOfWork, row: Any, *, replayed: bool) -> ActivityResult:
    lines = [
        AwardLine(r.rule_key, int(r.points), r.explanation)
        for r in uow.conn.execute(_AWARDS_OF, {"activity_id": row.id})
    ]
    return ActivityResult(
        row.id,
        row.type,
        row.external_id,
        row.member_id,
        sum(a.points for a in lines),
        lines,
        replayed=replayed,
        effects=mechanics.effects_of(uow, row.id),
    )


def _stored_basket(payload: dict[str, Any], programme: Programme) -> Basket:
    return build_basket(
        PurchaseIn.model_validate(payload), programme.currency, programme.document.earning_base
    )


def _context(
    uow: UnitOfWork,
    programme: Programme,
    member_id: str,
    occurred: datetime,
    first: bool,
    *,
    basket: Basket | None = None,
    action_type: str | None = None,
    channel: str | None = None,
    store: str | None = None,
    attributes: dict[str, Any] | None = None,
    standing: Standing | None = None,
    lock_budgets: bool = True,
    target: str | None = None,
) -> EarnContext:
    """What the rules need to know; ``attributes``/``standing``: the member's, if already read.
    ``lock_budgets``: lock the campaign budgets this earning will draw on (not for a simulation,
    which must not make tills wait)."""
    activity: Literal["purchase", "action"] = "purchase" if basket is not None else "action"
    if attributes is None:
        attributes = uow.conn.execute(
            select(members.c.attributes).where(members.c.id == member_id)
        ).scalar_one()
    if standing is None:
        standing = mechanics.standing(uow, programme, member_id, occurred)
    # Caps and budgets matter only for rules that can match this kind of activity.
    rules = [r for r in mechanics.earning_rules(programme) if r.when.activity == activity]
    used: dict[tuple[str, Period], int] = {}
    for rule in rules:
        for period in rule.caps.per_member:
            start, end = _period_bounds(programme, occurred, period)
            used[(rule.key, period)] = int(
                uow.conn.execute(
                    _USED_IN_PERIOD,
                    {"member_id": member_id, "rule_key": rule.key, "start": start, "end": end},
                ).scalar_one()
            )
    used_per_target = {
        rule.key: int(
            uow.conn.execute(
                _USED_ON_TARGET, {"member_id": member_id, "rule_key": rule.key, "target": target}
            ).scalar_one()
        )
        for rule in rules
        if target is not None and rule.caps.per_target is not None
    }
    budget_left: dict[str, int] = {}
    if any(r.caps.budget for r in rules):
        query = select(rule_budgets).where(rule_budgets.c.programme_id == programme.id)
        if lock_budgets and uow.dialect == "postgresql":
            query = query.order_by(rule_budgets.c.rule_key).with_for_update()
        for row in uow.conn.execute(query):
            budget_left[row.rule_key] = int(row.budget - row.used)
    return EarnContext(
        activity=activity,
        local_time=programme.local_time(occurred),
        basket=basket,
        action_type=action_type,
        channel=channel,
        store=store,
        member=_facts(dict(attributes), first, standing),
        used_per_member=used,
        target=target,
        used_per_target=used_per_target,
        budget_left=budget_left,
        rounding=programme.document.rounding,
    )


def _facts(attributes: dict[str, Any], first: bool, standing: Standing) -> MemberFacts:
    return MemberFacts(
        attributes=attributes,
        is_first_purchase=first,
        tier=standing.tier,
        memberships=standing.memberships,
        segments=standing.segments,
    )


_USED_IN_PERIOD = select(func.coalesce(func.sum(awards.c.points), 0)).where(
    awards.c.member_id == bindparam("member_id"),
    awards.c.rule_key == bindparam("rule_key"),
    awards.c.occurred_at >= bindparam("start"),
    awards.c.occurred_at < bindparam("end"),
)


# Actions on one target (the product reviewed) by the member, for Caps.per_target.
_USED_ON_TARGET = (
    select(func.coalesce(func.sum(awards.c.points), 0))
    .select_from(awards.join(activities, activities.c.id == awards.c.activity_id))
    .where(
        awards.c.member_id == bindparam("member_id"),
        awards.c.rule_key == bindparam("rule_key"),
        activities.c.type == "action",
        activities.c.payload["target"].as_string() == bindparam("target"),
    )
)
_EVER = (datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC))  # Period.LIFETIME


def _period_bounds(programme: Programme, at: datetime, period: Period) -> tuple[datetime, datetime]:
    from treu.ledger.model import add_months, start_of_day

    if period is Period.LIFETIME:
        return _EVER
    day = programme.local_date(at)
    if period is Period.DAY:
        first, last = day, day + timedelta(days=1)
    elif period is Period.WEEK:
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        last = add_months(first, 1)
    return start_of_day(first, programme.tz), start_of_day(last, programme.tz)


def _earn(
    uow: UnitOfWork,
    programme: Programme,
    member_id: str,
    activity_id: str,
    ctx: EarnContext,
    occurred: datetime,
    result: ActivityResult,
) -> ActivityResult:
    decided = evaluate(mechanics.earning_rules(programme), ctx)
    total = sum(a.points for a in decided)
    if total == 0:
        return result
    now = uow.now()
    doc = programme.document
    transfer_id, _lot = postings.earn(
        uow,
        programme,
        member_id=member_id,
        amount=total,
        key=f"earn:{activity_id}",
        at=now,
        activates_at=activates_at(doc.pending, occurred),
        expires_at=expires_at(doc.expiry, occurred, programme.tz),
        activity_id=activity_id,
    )
    _spend_budgets(uow, programme, decided)
    _insert_awards(
        uow,
        programme,
        activity_id,
        member_id,
        transfer_id,
        occurred,
        [(a.rule_key, a.points, a.explanation) for a in decided],
    )
    pending = doc.pending.mode != "immediate" and (
        activates_at(doc.pending, occurred) is None or activates_at(doc.pending, occurred) > now  # type: ignore[operator]
    )
    uow.publish(
        Event(
            programme.tenant_id,
            "points.earned",
            {
                "member_id": member_id,
                "activity_id": activity_id,
                "points": total,
                "pending": pending,
            },
        )
    )
    lines = [AwardLine(a.rule_key, a.points, a.explanation) for a in decided]
    return ActivityResult(
        result.activity_id,
        result.type,
        result.external_id,
        member_id,
        total,
        lines,
        pending=pending,
    )


def _spend_budgets(uow: UnitOfWork, programme: Programme, decided: list[Award]) -> None:
    for award in decided:
        rule = programme.rule(award.rule_key)
        if rule is None or rule.caps.budget is None:
            continue
        done = uow.conn.execute(
            update(rule_budgets)
            .where(
                rule_budgets.c.programme_id == programme.id,
                rule_budgets.c.rule_key == rule.key,
                rule_budgets.c.used + award.points <= rule_budgets.c.budget,
            )
            .values(used=rule_budgets.c.used + award.points)
        )
        if done.rowcount != 1:
            raise RuntimeError(f"budget of rule {rule.key} overspent despite the lock")


def _refund_budgets(
    uow: UnitOfWork, programme: Programme, rows: list[tuple[str, int, str]]
) -> None:
    for key, points, _ in rows:
        rule = programme.rule(key)
        if rule is None or rule.caps.budget is None:
            continue
        uow.conn.execute(
            update(rule_budgets)
            .where(
                rule_budgets.c.programme_id == programme.id,
                rule_budgets.c.rule_key == key,
                rule_budgets.c.used + points >= 0,
            )
            .values(used=rule_budgets.c.used + points)
        )


_INSERT_AWARDS = insert(awards)


def _insert_awards(
    uow: UnitOfWork,
    programme: Programme,
    activity_id: str,
    member_id: str,
    transfer_id: str | None,
    occurred: datetime,
    rows: list[tuple[str, int, str]],
) -> None:
    uow.conn.execute(
        _INSERT_AWARDS,
        [
            {
                "id": new_id("award"),
                "tenant_id": programme.tenant_id,
                "activity_id": activity_id,
                "member_id": member_id,
                "rule_key": key,
                "points": points,
                "explanation": text,
                "transfer_id": transfer_id,
                "occurred_at": occurred,
            }
            for key, points, text in rows
        ],
    )


def _reverse(
    uow: UnitOfWork,
    programme: Programme,
    purchase: Any,
    net: Basket,
    return_id: str,
    result: ActivityResult,
) -> ActivityResult:
    given: dict[str, int] = defaultdict(int)
    for r in uow.conn.execute(
        select(awards.c.rule_key, awards.c.points, awards.c.activity_id).where(
            awards.c.member_id == purchase.member_id,
            awards.c.activity_id.in_(
                select(activities.c.id).where(
                    (activities.c.id == purchase.id) | (activities.c.purchase_id == purchase.id)
                )
            ),
        )
    ):
        given[r.rule_key] += int(r.points)
    if not given:
        return result
    ctx = EarnContext(
        "purchase",
        programme.local_time(purchase.occurred_at),
        basket=net,
        channel=purchase.channel,
        store=purchase.payload.get("store"),
        member=_facts(
            dict(purchase.member_attributes or {}),
            bool(purchase.first_purchase),
            Standing.from_json(purchase.standing),
        ),
        rounding=programme.document.rounding,
    )
    recomputed = {a.rule_key: a.points for a in evaluate(mechanics.earning_rules(programme), ctx)}
    original = _original_awards(uow, purchase.id)
    rows: list[tuple[str, int, str]] = []
    for key, earned in original.items():
        target = min(earned, recomputed.get(key, 0))
        due = given[key] - target  # given = earned minus what earlier returns took back
        if due > 0:
            text = (
                f"Return: {key} recomputed on the remaining {net.format(net.paid_minor)}"
                f" gives {target} of {earned} points, {due} taken back"
            )
            rows.append((key, -due, text))
    total = -sum(points for _, points, _ in rows)
    if total == 0:
        return result
    outcome = postings.reverse(
        uow,
        programme,
        member_id=purchase.member_id,
        amount=total,
        purchase_id=purchase.id,
        return_id=return_id,
        at=uow.now(),
    )
    # Taken back in the period the points were earned in: a return frees no cap room today for
    # last month's points, and gives a campaign its budget back.
    _insert_awards(uow, programme, return_id, purchase.member_id, None, purchase.occurred_at, rows)
    _refund_budgets(uow, programme, rows)
    uow.publish(
        Event(
            programme.tenant_id,
            "points.reversed",
            {
                "member_id": purchase.member_id,
                "activity_id": return_id,
                "points": outcome.reversed,
                "forgiven": outcome.forgiven,
            },
        )
    )
    lines = [AwardLine(k, p, t) for k, p, t in rows]
    return ActivityResult(
        result.activity_id,
        "return",
        result.external_id,
        purchase.member_id,
        -outcome.reversed,
        lines,
        forgiven=outcome.forgiven,
    )


def _original_awards(uow: UnitOfWork, purchase_id: str) -> dict[str, int]:
    rows = uow.conn.execute(
        select(awards.c.rule_key, awards.c.points).where(awards.c.activity_id == purchase_id)
    )
    out: dict[str, int] = defaultdict(int)
    for key, points in rows:
        out[key] += int(points)
    return dict(out)


Kind = Literal["purchase", "return", "action"]
