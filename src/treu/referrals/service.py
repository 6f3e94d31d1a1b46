"""Use cases and mechanic hooks for referrals.

* :func:`on_enrolment` (called by ``treu.mechanics.service.after_enrolment``): every member gets a
  code; a friend who came with one becomes a referral, ``pending`` or ``held`` for review.
* :func:`on_activity` (``after_activity``): the friend's first qualifying purchase converts a
  pending referral and gives the rewards; a held one remembers the purchase for the review.
* :func:`approve_referral` / :func:`reject_referral`: staff decide about a held referral.

The hooks run inside the caller's transaction and never commit; this module must not import the
mechanics or activities services (they import it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update

from treu.errors import Conflict, ErrorCode, NotFound, Rejected
from treu.ids import new_id
from treu.ledger import postings
from treu.ledger.model import add_months, expires_at, start_of_day
from treu.mechanics.model import ActivityDone, Effect
from treu.members.service import get_member
from treu.members.tables import identifiers as member_identifiers
from treu.money import to_minor
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.referrals.model import (
    ReferralReward,
    ReferralSettings,
    ReferralStatus,
    SignUp,
    address_hash,
    new_referral_code,
    normalise_referral_code,
    referral_link,
    shared_identifiers,
    suspicions,
)
from treu.referrals.tables import referral_codes, referrals
from treu.rewards.service import grant_voucher
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork

MECHANIC = "referrals"
RING_DEPTH = 5  # how far up the chain of referrers the ring check looks
CONFIRM_BATCH = 200


@dataclass(frozen=True)
class ReferralView:
    id: str
    referrer_id: str
    friend_id: str
    status: ReferralStatus
    reasons: list[str]
    created_at: datetime
    converted_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None


@dataclass(frozen=True)
class ReferralCard:
    """What a member sees: their code, their link, the friends they brought."""

    member_id: str
    code: str
    link: str | None
    referrals: list[ReferralView]


# --- hooks ---------------------------------------------------------------------------------


def on_enrolment(
    uow: UnitOfWork,
    programme: Programme,
    member_id: str,
    at: datetime,
    *,
    referral_code: str | None,
    client_address: str | None,
) -> list[Effect]:
    """The new member's own code; and, if they came with a friend's code, the referral
    (``referral_code_not_found`` refuses the enrolment: a mistyped code would otherwise lose
    both their rewards silently)."""
    settings = programme.document.referral
    if settings is None:
        if referral_code:
            raise NotFound(ErrorCode.REFERRAL_CODE_NOT_FOUND, "this programme has no referrals")
        return []
    friend_address = address_hash(client_address)
    effects = []
    if referral_code:
        effects.append(_refer(uow, programme, member_id, referral_code, friend_address, at))
    _ensure_code(uow, programme, member_id, friend_address, at)
    return effects


def on_activity(uow: UnitOfWork, done: ActivityDone) -> list[Effect]:
    """A friend's first qualifying purchase converts (or qualifies) their referral; a return
    that takes it below the minimum before confirmation undoes the qualification."""
    settings = done.programme.document.referral
    if settings is None or done.basket is None:
        return []
    minimum = to_minor(settings.min_purchase, done.programme.currency, field="min_purchase")
    if done.type == "return":
        return _after_return(uow, done, minimum)
    if done.type != "purchase":
        return []
    row = uow.conn.execute(
        select(referrals).where(
            referrals.c.friend_id == done.member_id,
            referrals.c.purchase_id.is_(None),
            referrals.c.status.in_([ReferralStatus.PENDING.value, ReferralStatus.HELD.value]),
        )
    ).first()
    if row is None or done.basket.paid_minor < minimum:
        return []
    days = settings.confirm_after_days
    confirm_at = None if days is None else done.occurred_at + timedelta(days=days)
    held = row.status == ReferralStatus.HELD.value
    status = row.status if held or confirm_at is None else ReferralStatus.QUALIFIED.value
    uow.conn.execute(
        update(referrals)
        .where(referrals.c.id == row.id)
        .values(purchase_id=done.activity_id, confirm_at=confirm_at, status=status)
    )
    if held:
        why = "Qualifying purchase for a referral under review: rewards follow its approval"
    elif confirm_at is not None:
        why = f"Qualifying purchase for a referral: rewards follow in {days} days unless returned"
    else:
        return _convert(uow, done.programme, settings, row.id, row.referrer_id, done.member_id)
    return [Effect(MECHANIC, "referral.qualified", why, {"referral_id": row.id})]


def _after_return(uow: UnitOfWork, done: ActivityDone, minimum: int) -> list[Effect]:
    """A return that takes the qualifying purchase below the minimum before the conversion was
    confirmed: the referral waits for another qualifying purchase."""
    assert done.basket is not None
    row = uow.conn.execute(
        select(referrals.c.id, referrals.c.status).where(
            referrals.c.purchase_id == done.purchase_id,
            referrals.c.status.in_([ReferralStatus.QUALIFIED.value, ReferralStatus.HELD.value]),
        )
    ).first()
    if row is None or done.basket.paid_minor >= minimum:
        return []
    status = ReferralStatus.HELD.value if row.status == "held" else ReferralStatus.PENDING.value
    uow.conn.execute(
        update(referrals)
        .where(referrals.c.id == row.id)
        .values(purchase_id=None, confirm_at=None, status=status)
    )
    why = "The referral's qualifying purchase was returned: the next qualifying purchase counts"
    return [Effect(MECHANIC, "referral.unqualified", why, {"referral_id": row.id})]


def confirm_due_referrals(uow: UnitOfWork, *, programme_id: str, as_of: datetime) -> int:
    """Convert the qualified referrals whose return window has passed (the nightly step; a
    batch per call, committed). Returns how many it converted: 0 when none is left."""
    programme = load_programme(uow, programme_id)
    settings = programme.document.referral
    if settings is None:
        return 0
    due = uow.conn.execute(
        select(referrals.c.id, referrals.c.referrer_id, referrals.c.friend_id)
        .where(
            referrals.c.programme_id == programme_id,
            referrals.c.status == ReferralStatus.QUALIFIED.value,
            referrals.c.confirm_at <= as_of,
        )
        .order_by(referrals.c.id)
        .limit(CONFIRM_BATCH)
    ).all()
    for referral_id, referrer_id, friend_id in due:
        _convert(uow, programme, settings, referral_id, referrer_id, friend_id)
    uow.commit()
    return len(due)


# --- use cases -----------------------------------------------------------------------------


def referral_card(uow: UnitOfWork, *, tenant_id: str, member_id: str) -> ReferralCard:
    """The member's code (made now if they enrolled before the programme had referrals), link
    and referrals. Commits if it had to make the code."""
    member = get_member(uow, member_id, tenant_id=tenant_id)
    programme = load_programme(uow, member.programme_id)
    settings = programme.document.referral
    if settings is None:
        raise NotFound(ErrorCode.REFERRAL_CODE_NOT_FOUND, "this programme has no referrals")
    code = _code_of(uow, member_id)
    if code is None:
        code = _ensure_code(uow, programme, member_id, None, uow.now())
        uow.commit()
    rows = uow.conn.execute(
        select(referrals)
        .where(referrals.c.referrer_id == member_id)
        .order_by(referrals.c.created_at, referrals.c.id)
    )
    return ReferralCard(member_id, code, referral_link(settings, code), [_view(r) for r in rows])


def list_referrals(
    uow: UnitOfWork, *, programme_id: str, status: ReferralStatus | None = None
) -> list[ReferralView]:
    """The programme's referrals, oldest first; ``status=held`` is the review queue."""
    query = (
        select(referrals)
        .where(referrals.c.programme_id == programme_id)
        .order_by(referrals.c.created_at, referrals.c.id)
    )
    if status is not None:
        query = query.where(referrals.c.status == status.value)
    return [_view(r) for r in uow.conn.execute(query)]


def approve_referral(
    uow: UnitOfWork, *, tenant_id: str, referral_id: str, actor: str
) -> tuple[ReferralView, list[Effect]]:
    """A held referral is fine after all: rewarded now if the friend already made the
    qualifying purchase (and its return window has passed), else when they do (or it has)."""
    row = _held(uow, tenant_id, referral_id)
    programme = load_programme(uow, row.programme_id)
    settings = programme.document.referral
    now = uow.now()
    if row.purchase_id is None:
        status = ReferralStatus.PENDING
    elif row.confirm_at is not None and row.confirm_at > now:
        status = ReferralStatus.QUALIFIED  # the return window is still open
    else:
        status = ReferralStatus.CONVERTED
    uow.conn.execute(
        update(referrals)
        .where(referrals.c.id == referral_id)
        .values(
            status=(ReferralStatus.PENDING if status is ReferralStatus.CONVERTED else status).value,
            decided_at=now,
            decided_by=actor,
        )
    )
    effects: list[Effect] = []
    if status is ReferralStatus.CONVERTED and settings is not None:
        effects = _convert(uow, programme, settings, row.id, row.referrer_id, row.friend_id)
    view = _view(_row(uow, tenant_id, referral_id))
    uow.commit()
    return view, effects


def reject_referral(
    uow: UnitOfWork, *, tenant_id: str, referral_id: str, actor: str
) -> ReferralView:
    """A held referral is farming: nobody is rewarded, now or later."""
    _held(uow, tenant_id, referral_id)
    uow.conn.execute(
        update(referrals)
        .where(referrals.c.id == referral_id)
        .values(status=ReferralStatus.REJECTED.value, decided_at=uow.now(), decided_by=actor)
    )
    view = _view(_row(uow, tenant_id, referral_id))
    uow.publish(Event(tenant_id, "referral.rejected", _payload(view)))
    uow.commit()
    return view


# --- internals -----------------------------------------------------------------------------


def _refer(
    uow: UnitOfWork,
    programme: Programme,
    friend_id: str,
    code: str,
    friend_address: str | None,
    at: datetime,
) -> Effect:
    owner = uow.conn.execute(
        select(referral_codes.c.member_id, referral_codes.c.address_hash).where(
            referral_codes.c.programme_id == programme.id,
            referral_codes.c.code == normalise_referral_code(code),
        )
    ).first()
    if owner is None:
        raise NotFound(ErrorCode.REFERRAL_CODE_NOT_FOUND, f"no referral code {code!r}")
    referrer_id = owner.member_id
    if referrer_id == friend_id:
        raise Rejected(ErrorCode.SELF_REFERRAL, "a member cannot refer themself")
    signup = SignUp(
        friend_address=friend_address,
        referrer_address=owner.address_hash,
        shared_identifiers=tuple(
            shared_identifiers(_identifiers(uow, referrer_id), _identifiers(uow, friend_id))
        ),
        referrer_referrals_from_address=_referrals_from(uow, referrer_id, friend_address),
        chain_addresses=_chain_addresses(uow, referrer_id),
    )
    reasons = suspicions(signup)
    status = ReferralStatus.HELD if reasons else ReferralStatus.PENDING
    referral_id = new_id("referral")
    uow.conn.execute(
        insert(referrals).values(
            id=referral_id,
            tenant_id=programme.tenant_id,
            programme_id=programme.id,
            referrer_id=referrer_id,
            friend_id=friend_id,
            code=normalise_referral_code(code),
            status=status.value,
            reasons=reasons,
            address_hash=friend_address,
            referrer_rewarded=False,
            created_at=at,
        )
    )
    payload = {"referral_id": referral_id, "referrer_id": referrer_id, "friend_id": friend_id}
    uow.publish(Event(programme.tenant_id, "referral.created", payload))
    if reasons:
        uow.publish(Event(programme.tenant_id, "referral.held", {**payload, "reasons": reasons}))
        return Effect(
            MECHANIC,
            "referral.held",
            "Referral recorded; it waits for a review before anyone is rewarded",
            {**payload, "reasons": reasons},
        )
    return Effect(
        MECHANIC,
        "referral.created",
        "Referred by a friend: the first qualifying purchase rewards you both",
        payload,
    )


def _convert(
    uow: UnitOfWork,
    programme: Programme,
    settings: ReferralSettings,
    referral_id: str,
    referrer_id: str,
    friend_id: str,
) -> list[Effect]:
    now = uow.now()
    lock_members(uow, referrer_id, friend_id)
    referrer_ok = settings.referrer_reward is not None and _within_limits(
        uow, programme, settings, referrer_id, now
    )
    uow.conn.execute(
        update(referrals)
        .where(referrals.c.id == referral_id)
        .values(
            status=ReferralStatus.CONVERTED.value, converted_at=now, referrer_rewarded=referrer_ok
        )
    )
    effects = []
    if settings.friend_reward is not None:
        effects += _give(uow, programme, friend_id, settings.friend_reward, referral_id, "friend")
    if referrer_ok and settings.referrer_reward is not None:
        _give(uow, programme, referrer_id, settings.referrer_reward, referral_id, "referrer")
    payload = {
        "referral_id": referral_id,
        "referrer_id": referrer_id,
        "friend_id": friend_id,
        "referrer_rewarded": referrer_ok,
    }
    uow.publish(Event(programme.tenant_id, "referral.converted", payload))
    note = "" if referrer_ok or settings.referrer_reward is None else " (referrer limit reached)"
    effects.append(Effect(MECHANIC, "referral.converted", f"Referral converted{note}", payload))
    return effects


def _give(
    uow: UnitOfWork,
    programme: Programme,
    member_id: str,
    reward: ReferralReward,
    referral_id: str,
    role: str,
) -> list[Effect]:
    """The reward for one side; an effect for the friend's purchase (the referrer's shows in
    their history through the ledger or the voucher)."""
    key = f"referral:{referral_id}:{role}"
    why = "for a referred friend" if role == "referrer" else "for joining through a friend"
    if reward.points is not None:
        now = uow.now()
        postings.earn(
            uow,
            programme,
            member_id=member_id,
            amount=reward.points,
            key=key,
            at=now,
            activates_at=now,
            expires_at=expires_at(programme.document.expiry, now, programme.tz),
            reason=f"referral bonus {why}",
        )
        uow.publish(
            Event(
                programme.tenant_id,
                "points.earned",
                {"member_id": member_id, "points": reward.points, "reason": "referral"},
            )
        )
        return [
            Effect(
                MECHANIC,
                "points.earned",
                f"Referral bonus {why}: {reward.points} points",
                {"referral_id": referral_id, "member_id": member_id},
                unit="points",
                amount=reward.points,
            )
        ]
    assert reward.reward is not None
    try:
        voucher, _ = grant_voucher(
            uow,
            programme,
            member_id=member_id,
            reward_key=reward.reward,
            grant_key=key,
            reason=f"referral {why}",
        )
    except Rejected as exc:  # out of stock or withdrawn: the purchase still counts
        return [Effect(MECHANIC, "referral.reward_unavailable", exc.message, {"code": exc.code})]
    return [
        Effect(
            MECHANIC,
            "voucher.issued",
            f"Referral reward {why}: {voucher.reward_name}",
            {"referral_id": referral_id, "member_id": member_id, "code": voucher.code},
        )
    ]


def _within_limits(
    uow: UnitOfWork,
    programme: Programme,
    settings: ReferralSettings,
    referrer_id: str,
    now: datetime,
) -> bool:
    rewarded = referrals.c.referrer_id == referrer_id, referrals.c.referrer_rewarded.is_(True)
    if settings.per_referrer_total is not None:
        total = uow.conn.execute(select(func.count()).where(*rewarded)).scalar_one()
        if total >= settings.per_referrer_total:
            return False
    if settings.per_referrer_per_month is not None:
        first = programme.local_date(now).replace(day=1)
        start = start_of_day(first, programme.tz)
        end = start_of_day(add_months(first, 1), programme.tz)
        month = uow.conn.execute(
            select(func.count()).where(
                *rewarded, referrals.c.converted_at >= start, referrals.c.converted_at < end
            )
        ).scalar_one()
        if month >= settings.per_referrer_per_month:
            return False
    return True


def _ensure_code(
    uow: UnitOfWork, programme: Programme, member_id: str, address: str | None, at: datetime
) -> str:
    for _ in range(5):
        code = new_referral_code()
        taken = uow.conn.execute(
            select(referral_codes.c.member_id).where(
                referral_codes.c.programme_id == programme.id, referral_codes.c.code == code
            )
        ).first()
        if taken is None:
            break
    else:  # pragma: no cover - 5 collisions in 31^8 codes
        raise RuntimeError("no free referral code")
    uow.conn.execute(
        insert(referral_codes).values(
            member_id=member_id,
            tenant_id=programme.tenant_id,
            programme_id=programme.id,
            code=code,
            address_hash=address,
            created_at=at,
        )
    )
    return code


def _code_of(uow: UnitOfWork, member_id: str) -> str | None:
    code: str | None = uow.conn.execute(
        select(referral_codes.c.code).where(referral_codes.c.member_id == member_id)
    ).scalar()
    return code


def _identifiers(uow: UnitOfWork, member_id: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for kind, value in uow.conn.execute(
        select(member_identifiers.c.kind, member_identifiers.c.value).where(
            member_identifiers.c.member_id == member_id
        )
    ):
        found.setdefault(kind, set()).add(value)
    return found


def _referrals_from(uow: UnitOfWork, referrer_id: str, address: str | None) -> int:
    if address is None:
        return 0
    return int(
        uow.conn.execute(
            select(func.count()).where(
                referrals.c.referrer_id == referrer_id, referrals.c.address_hash == address
            )
        ).scalar_one()
    )


def _chain_addresses(uow: UnitOfWork, referrer_id: str) -> frozenset[str]:
    """Where the referrer's own referrer (and theirs, up to RING_DEPTH) signed up and were
    referred from: a friend from one of those addresses closes a ring."""
    found: set[str] = set()
    member: str | None = referrer_id
    for _ in range(RING_DEPTH):
        row = uow.conn.execute(
            select(referrals.c.referrer_id, referrals.c.address_hash).where(
                referrals.c.friend_id == member
            )
        ).first()
        if row is None:
            break
        if row.address_hash:
            found.add(row.address_hash)
        up = uow.conn.execute(
            select(referral_codes.c.address_hash).where(
                referral_codes.c.member_id == row.referrer_id
            )
        ).scalar()
        if up:
            found.add(up)
        member = row.referrer_id
    return frozenset(found)


def _row(uow: UnitOfWork, tenant_id: str, referral_id: str) -> Any:
    row = uow.conn.execute(
        select(referrals).where(referrals.c.id == referral_id, referrals.c.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound(ErrorCode.REFERRAL_NOT_FOUND, f"no referral {referral_id}")
    return row


def _held(uow: UnitOfWork, tenant_id: str, referral_id: str) -> Any:
    row = _row(uow, tenant_id, referral_id)
    lock_members(uow, row.referrer_id, row.friend_id)
    row = _row(uow, tenant_id, referral_id)
    if row.status != ReferralStatus.HELD.value:
        raise Conflict(ErrorCode.REFERRAL_NOT_HELD, f"referral {referral_id} is {row.status}")
    return row


def _view(row: Any) -> ReferralView:
    return ReferralView(
        row.id,
        row.referrer_id,
        row.friend_id,
        ReferralStatus(row.status),
        list(row.reasons),
        row.created_at,
        row.converted_at,
        row.decided_at,
        row.decided_by,
    )


def _payload(view: ReferralView) -> dict[str, Any]:
    return {
        "referral_id": view.id,
        "referrer_id": view.referrer_id,
        "friend_id": view.friend_id,
        "status": view.status.value,
    }
