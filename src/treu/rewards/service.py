"""Use cases for rewards and vouchers: catalogue, redeem, validate, consume, cancel, expire.

A redemption is one transaction: lock the member, take one from stock (guarded update), hold the
points (drawn from lots, soonest expiry first), issue the voucher, capture the hold. If any step
fails, nothing of it remains. The redemption's idempotency key makes a retried request return
the first voucher instead of buying a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from treu.errors import Conflict, ErrorCode, NotFound, Rejected
from treu.ids import new_id
from treu.ledger import postings
from treu.ledger.model import MemberAccount, SystemAccount, TransferKind, start_of_day
from treu.ledger.tables import holds, transfers
from treu.members.model import MemberStatus
from treu.members.service import get_member, touch_member
from treu.memberships import service as memberships
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.rewards.model import (
    RewardState,
    VoucherStatus,
    check_redeemable,
    check_voucher,
    new_voucher_code,
    normalise_code,
)
from treu.rewards.tables import redemptions, rewards, vouchers
from treu.segments import service as segment_service
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork, is_unique_violation
from treu.tiers import service as tiers


@dataclass(frozen=True)
class RewardLine:
    id: str
    key: str
    name: str
    kind: str
    cost: int | None
    stock: int | None
    active: bool
    definition: dict[str, Any]


@dataclass(frozen=True)
class VoucherView:
    id: str
    code: str
    status: VoucherStatus
    member_id: str
    reward_key: str
    reward_name: str
    issued_at: datetime
    expires_at: datetime | None
    used_at: datetime | None
    definition: dict[str, Any]


@dataclass(frozen=True)
class RedemptionResult:
    redemption_id: str
    points: int
    voucher: VoucherView
    replayed: bool = False


def list_rewards(
    uow: UnitOfWork, *, programme_id: str, active_only: bool = True
) -> list[RewardLine]:
    query = (
        select(rewards)
        .where(rewards.c.programme_id == programme_id)
        .order_by(rewards.c.cost, rewards.c.key)
    )
    if active_only:
        query = query.where(rewards.c.active.is_(True))
    return [
        RewardLine(r.id, r.key, r.name, r.kind, r.cost, r.stock, r.active, dict(r.definition))
        for r in uow.conn.execute(query)
    ]


def _segments_if_asked(uow: UnitOfWork, reward: RewardState, member_id: str) -> frozenset[str]:
    """The member's segments, read only for a reward limited to segments."""
    return segment_service.member_segments(uow, member_id) if reward.segments else frozenset()


def redeem_reward(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    reward_key: str,
    idempotency_key: str,
    tier: str | None = None,
    segments: frozenset[str] = frozenset(),
) -> RedemptionResult:
    member = get_member(uow, member_id, tenant_id=tenant_id)
    lock_members(uow, member_id)
    replay = _replay(uow, tenant_id, idempotency_key, member_id, reward_key)
    if replay:
        return replay
    if member.status is not MemberStatus.ACTIVE:
        raise Rejected(ErrorCode.MEMBER_BLOCKED, f"member {member_id} is {member.status}")
    programme = load_programme(uow, member.programme_id)
    reward = _reward(uow, member.programme_id, reward_key)
    now = uow.now()
    redeemed = uow.conn.execute(
        select(func.count())
        .select_from(redemptions)
        .where(
            redemptions.c.member_id == member_id,
            redemptions.c.reward_id == reward.id,
            redemptions.c.status == "completed",
        )
    ).scalar_one()
    tier_settings = programme.document.tiers
    if tier is None and tier_settings is not None:
        current = tiers.current_tier(uow, programme, member_id)
        tier = None if current is None else current.key
    check_redeemable(
        reward,
        now=now,
        redeemed_by_member=int(redeemed),
        member_tier=tier,
        member_segments=segments or _segments_if_asked(uow, reward, member_id),
        tier_order=() if tier_settings is None else tier_settings.keys(),
        member_plans=memberships.active_plans(uow, programme, member_id, now),
    )
    cost = reward.cost
    assert cost is not None  # check_redeemable refuses rewards that are only given
    if reward.stock is not None:
        taken = uow.conn.execute(
            update(rewards)
            .where(rewards.c.id == reward.id, rewards.c.stock > 0)
            .values(stock=rewards.c.stock - 1)
        )
        if taken.rowcount != 1:
            raise Rejected(ErrorCode.OUT_OF_STOCK, f"{reward.name} is out of stock")
    redemption_id = new_id("redemption")
    try:
        hold_id = postings.hold(
            uow,
            programme,
            member_id=member_id,
            amount=cost,
            key=f"redeem:{idempotency_key}",
            at=now,
        )
        uow.conn.execute(
            insert(redemptions).values(
                id=redemption_id,
                tenant_id=tenant_id,
                programme_id=programme.id,
                member_id=member_id,
                reward_id=reward.id,
                points=cost,
                hold_id=hold_id,
                status="completed",
                idempotency_key=idempotency_key,
                created_at=now,
            )
        )
    except IntegrityError as exc:
        # The member lock serialises one member's requests, not two members' requests that
        # share a key: the other one committed first. Answer as if it had come first.
        if not is_unique_violation(exc):
            raise
        uow.rollback()
        replay = _replay(uow, tenant_id, idempotency_key, member_id, reward_key)
        if replay is None:
            raise
        return replay
    definition = _definition(uow, reward.id)
    valid_days = definition.get("voucher_valid_days")
    voucher_id = _issue_voucher(
        uow,
        tenant_id=tenant_id,
        programme_id=programme.id,
        member_id=member_id,
        reward_id=reward.id,
        redemption_id=redemption_id,
        now=now,
        expires=_voucher_expiry(programme, now, valid_days),
    )
    postings.capture(uow, programme, hold_id=hold_id, at=now)
    touch_member(uow, member_id, now, purchase=False)  # redeeming is activity too
    uow.publish(
        Event(
            tenant_id,
            "points.redeemed",
            {
                "member_id": member_id,
                "reward": reward.key,
                "points": cost,
                "redemption_id": redemption_id,
            },
        )
    )
    voucher = _voucher_by(uow, tenant_id, id=voucher_id)
    uow.publish(
        Event(
            tenant_id,
            "voucher.issued",
            {
                "member_id": member_id,
                "voucher_id": voucher_id,
                "code": voucher.code,  # the shop shows it to the member
                "reward": reward.key,
                "expires_at": voucher.expires_at.isoformat() if voucher.expires_at else None,
            },
        )
    )
    result = RedemptionResult(redemption_id, cost, voucher)
    uow.commit()
    return result


def grant_voucher(
    uow: UnitOfWork,
    programme: Programme,
    *,
    member_id: str,
    reward_key: str,
    grant_key: str,
    reason: str,
) -> tuple[VoucherView, bool]:
    """Give a member a voucher for ``reward_key`` without spending points (welcome gift, full
    stamp card, surprise, referral): for mechanics, inside their caller's transaction, member
    locked. ``grant_key`` names the occasion; a second grant for it returns the first voucher.
    Takes stock like a redemption; out of stock raises ``out_of_stock``. Returns (voucher,
    granted now)."""
    existing = uow.conn.execute(
        select(vouchers.c.id).where(
            vouchers.c.tenant_id == programme.tenant_id, vouchers.c.grant_key == grant_key
        )
    ).scalar()
    if existing is not None:
        return _voucher_by(uow, programme.tenant_id, id=existing), False
    reward = _reward(uow, programme.id, reward_key)
    if not reward.active:
        raise Rejected(ErrorCode.REWARD_UNAVAILABLE, f"{reward.name} is not offered any more")
    if reward.stock is not None:
        taken = uow.conn.execute(
            update(rewards)
            .where(rewards.c.id == reward.id, rewards.c.stock > 0)
            .values(stock=rewards.c.stock - 1)
        )
        if taken.rowcount != 1:
            raise Rejected(ErrorCode.OUT_OF_STOCK, f"{reward.name} is out of stock")
    now = uow.now()
    voucher_id = _issue_voucher(
        uow,
        tenant_id=programme.tenant_id,
        programme_id=programme.id,
        member_id=member_id,
        reward_id=reward.id,
        redemption_id=None,
        now=now,
        expires=_voucher_expiry(
            programme, now, _definition(uow, reward.id).get("voucher_valid_days")
        ),
        grant_key=grant_key,
        reason=reason,
    )
    voucher = _voucher_by(uow, programme.tenant_id, id=voucher_id)
    uow.publish(
        Event(
            programme.tenant_id,
            "voucher.issued",
            {
                "member_id": member_id,
                "voucher_id": voucher_id,
                "code": voucher.code,
                "reward": reward.key,
                "expires_at": voucher.expires_at.isoformat() if voucher.expires_at else None,
                "reason": reason,
            },
        )
    )
    return voucher, True


def withdraw_granted_voucher(
    uow: UnitOfWork, *, tenant_id: str, voucher_id: str, member_id: str
) -> bool:
    """Take back a voucher a mechanic gave (a return reopened the full stamp card that earned
    it), inside the caller's transaction: cancelled if still unused and unexpired, stock back, no
    points to refund (it was given, not bought). False if it was used or has expired: the member
    keeps it. The guarded update makes it safe against a till consuming it at this moment;
    :func:`cancel_voucher` is the staff use case for bought vouchers (it commits and refunds)."""
    now = uow.now()
    done = uow.conn.execute(
        update(vouchers)
        .where(
            vouchers.c.id == voucher_id,
            vouchers.c.tenant_id == tenant_id,
            vouchers.c.status == VoucherStatus.ISSUED.value,
            or_(vouchers.c.expires_at.is_(None), vouchers.c.expires_at > now),
        )
        .values(status=VoucherStatus.CANCELLED.value, cancelled_at=now)
    )
    if done.rowcount != 1:
        return False
    reward_id = uow.conn.execute(
        select(vouchers.c.reward_id).where(vouchers.c.id == voucher_id)
    ).scalar_one()
    uow.conn.execute(
        update(rewards)
        .where(rewards.c.id == reward_id, rewards.c.stock.is_not(None))
        .values(stock=rewards.c.stock + 1)
    )
    uow.publish(
        Event(tenant_id, "voucher.cancelled", {"voucher_id": voucher_id, "member_id": member_id})
    )
    return True


def get_voucher(uow: UnitOfWork, *, tenant_id: str, code: str) -> VoucherView:
    return _voucher_by(uow, tenant_id, code=normalise_code(code))


def list_vouchers(uow: UnitOfWork, *, tenant_id: str, member_id: str) -> list[VoucherView]:
    ids = uow.conn.execute(
        select(vouchers.c.id)
        .where(vouchers.c.tenant_id == tenant_id, vouchers.c.member_id == member_id)
        .order_by(vouchers.c.id)
    ).scalars()
    return [_voucher_by(uow, tenant_id, id=i) for i in ids]


def validate_voucher(uow: UnitOfWork, *, tenant_id: str, code: str) -> VoucherView:
    """Is this code usable now? Raises the reason if not; changes nothing."""
    voucher = get_voucher(uow, tenant_id=tenant_id, code=code)
    check_voucher(voucher.status, voucher.expires_at, uow.now())
    return voucher


def consume_voucher(
    uow: UnitOfWork, *, tenant_id: str, code: str, store_id: str | None = None
) -> VoucherView:
    """Use a voucher, once. A second attempt gets ``voucher_already_used``."""
    voucher = validate_voucher(uow, tenant_id=tenant_id, code=code)
    now = uow.now()
    done = uow.conn.execute(
        update(vouchers)
        .where(vouchers.c.id == voucher.id, vouchers.c.status == VoucherStatus.ISSUED.value)
        .values(status=VoucherStatus.USED.value, used_at=now, used_store_id=store_id)
    )
    if done.rowcount != 1:  # used or cancelled by a concurrent request since validated
        validate_voucher(uow, tenant_id=tenant_id, code=code)  # raises which of the two
        raise Rejected(ErrorCode.VOUCHER_ALREADY_USED, "this voucher has already been used")
    uow.publish(
        Event(tenant_id, "voucher.used", {"voucher_id": voucher.id, "member_id": voucher.member_id})
    )
    result = _voucher_by(uow, tenant_id, id=voucher.id)
    uow.commit()
    return result


def _voucher_expiry(programme: Programme, now: datetime, valid_days: int | None) -> datetime | None:
    """Valid for ``valid_days`` days after today, to the end of that day in programme time (a
    voucher issued on 10 March for 30 days is good all of 9 April, wherever the server is)."""
    if not valid_days:
        return None
    last_day = programme.local_date(now) + timedelta(days=valid_days)
    return start_of_day(last_day + timedelta(days=1), programme.tz)


def cancel_voucher(
    uow: UnitOfWork, *, tenant_id: str, code: str, actor: str, reason: str = "cancelled by staff"
) -> VoucherView:
    """Cancel an unused, unexpired voucher: its points go back to the lots they came from (and
    keep their expiry), the stock goes back. An expired voucher stays expired: its points would
    only return into lots past their date; goodwill is an adjustment."""
    voucher = get_voucher(uow, tenant_id=tenant_id, code=code)
    lock_members(uow, voucher.member_id)
    now = uow.now()
    # Guarded: the voucher may have been used (consuming takes no member lock) or cancelled by a
    # concurrent request since it was read; only one of them may win.
    done = uow.conn.execute(
        update(vouchers)
        .where(
            vouchers.c.id == voucher.id,
            vouchers.c.status == VoucherStatus.ISSUED.value,
            or_(vouchers.c.expires_at.is_(None), vouchers.c.expires_at > now),
        )
        .values(status=VoucherStatus.CANCELLED.value, cancelled_at=now)
    )
    if done.rowcount != 1:
        status = get_voucher(uow, tenant_id=tenant_id, code=code).status
        if status is VoucherStatus.USED:
            raise Rejected(ErrorCode.VOUCHER_ALREADY_USED, "a used voucher cannot be cancelled")
        if status is VoucherStatus.CANCELLED:
            raise Rejected(ErrorCode.VOUCHER_CANCELLED, "this voucher is already cancelled")
        raise Rejected(ErrorCode.VOUCHER_EXPIRED, "an expired voucher cannot be cancelled")
    row = uow.conn.execute(
        select(vouchers.c.redemption_id, vouchers.c.reward_id).where(vouchers.c.id == voucher.id)
    ).one()
    if row.redemption_id is not None:
        _refund(uow, tenant_id, row.redemption_id, voucher.member_id, actor, reason, now)
    uow.conn.execute(
        update(rewards)
        .where(rewards.c.id == row.reward_id, rewards.c.stock.is_not(None))
        .values(stock=rewards.c.stock + 1)
    )
    uow.publish(
        Event(
            tenant_id,
            "voucher.cancelled",
            {"voucher_id": voucher.id, "member_id": voucher.member_id},
        )
    )
    result = _voucher_by(uow, tenant_id, id=voucher.id)
    uow.commit()
    return result


def expire_vouchers(uow: UnitOfWork, *, programme_id: str, at: datetime) -> int:
    """Mark issued vouchers past their date as expired (no points back). Caller commits."""
    tenant_id = load_programme(uow, programme_id).tenant_id
    ids = uow.conn.execute(
        select(vouchers.c.id, vouchers.c.member_id).where(
            vouchers.c.programme_id == programme_id,
            vouchers.c.status == VoucherStatus.ISSUED.value,
            vouchers.c.expires_at <= at,
        )
    ).all()
    for voucher_id, member_id in ids:
        uow.conn.execute(
            update(vouchers)
            .where(vouchers.c.id == voucher_id, vouchers.c.status == VoucherStatus.ISSUED.value)
            .values(status=VoucherStatus.EXPIRED.value)
        )
        uow.publish(
            Event(tenant_id, "voucher.expired", {"voucher_id": voucher_id, "member_id": member_id})
        )
    return len(ids)


# --- internals ---------------------------------------------------------------------------


def _refund(
    uow: UnitOfWork,
    tenant_id: str,
    redemption_id: str,
    member_id: str,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    redemption = uow.conn.execute(
        select(redemptions).where(redemptions.c.id == redemption_id)
    ).one()
    programme = load_programme(uow, redemption.programme_id)
    hold = uow.conn.execute(select(holds).where(holds.c.id == redemption.hold_id)).one()
    capture_id = uow.conn.execute(
        select(transfers.c.id).where(
            transfers.c.hold_id == hold.id, transfers.c.kind == TransferKind.CAPTURE.value
        )
    ).scalar_one()
    postings.give_back(
        uow,
        programme,
        of_transfer=hold.transfer_id,
        kind=TransferKind.RESTORE,
        debit=postings.system_acc(programme, SystemAccount.REDEMPTION),
        member_id=member_id,
        key=f"restore:{redemption_id}",
        at=now,
        corrects_id=capture_id,
        reason=reason,
        actor=actor,
    )
    uow.conn.execute(
        update(redemptions).where(redemptions.c.id == redemption_id).values(status="cancelled")
    )
    uow.publish(
        Event(
            tenant_id,
            "points.restored",
            {
                "member_id": member_id,
                "redemption_id": redemption_id,
                "points": int(redemption.points),
            },
        )
    )


def _reward(uow: UnitOfWork, programme_id: str, key: str) -> RewardState:
    r = uow.conn.execute(
        select(rewards).where(rewards.c.programme_id == programme_id, rewards.c.key == key)
    ).first()
    if r is None:
        raise NotFound(ErrorCode.REWARD_NOT_FOUND, f"no reward {key!r}")
    definition = dict(r.definition)
    return RewardState(
        r.id,
        r.key,
        r.name,
        None if r.cost is None else int(r.cost),
        bool(r.active),
        r.stock,
        r.per_member_limit,
        r.available_from,
        r.available_until,
        tuple(definition.get("tiers", [])),
        tuple(definition.get("segments", [])),
        definition.get("min_tier"),
        tuple(definition.get("memberships", [])),
    )


def _definition(uow: UnitOfWork, reward_id: str) -> dict[str, Any]:
    return dict(
        uow.conn.execute(select(rewards.c.definition).where(rewards.c.id == reward_id)).scalar_one()
    )


def _issue_voucher(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    programme_id: str,
    member_id: str,
    reward_id: str,
    redemption_id: str | None,
    now: datetime,
    expires: datetime | None,
    grant_key: str | None = None,
    reason: str | None = None,
) -> str:
    voucher_id = new_id("voucher")
    uow.conn.execute(
        insert(vouchers).values(
            id=voucher_id,
            tenant_id=tenant_id,
            programme_id=programme_id,
            member_id=member_id,
            reward_id=reward_id,
            redemption_id=redemption_id,
            code=new_voucher_code(),
            status=VoucherStatus.ISSUED.value,
            issued_at=now,
            expires_at=expires,
            extra={"reason": reason} if reason else {},
            grant_key=grant_key,
        )
    )
    return voucher_id


def _voucher_by(
    uow: UnitOfWork, tenant_id: str, *, id: str | None = None, code: str | None = None
) -> VoucherView:
    query = (
        select(
            vouchers,
            rewards.c.key.label("reward_key"),
            rewards.c.name.label("reward_name"),
            rewards.c.definition,
        )
        .join(rewards, rewards.c.id == vouchers.c.reward_id)
        .where(vouchers.c.tenant_id == tenant_id)
    )
    query = query.where(vouchers.c.id == id) if id else query.where(vouchers.c.code == code)
    r = uow.conn.execute(query).first()
    if r is None:
        raise NotFound(ErrorCode.VOUCHER_NOT_FOUND, "no such voucher")
    return VoucherView(
        r.id,
        r.code,
        VoucherStatus(r.status),
        r.member_id,
        r.reward_key,
        r.reward_name,
        r.issued_at,
        r.expires_at,
        r.used_at,
        dict(r.definition),
    )


def _replay(
    uow: UnitOfWork, tenant_id: str, key: str, member_id: str, reward_key: str
) -> RedemptionResult | None:
    row = uow.conn.execute(
        select(redemptions, rewards.c.key.label("reward_key"))
        .join(rewards, rewards.c.id == redemptions.c.reward_id)
        .where(redemptions.c.tenant_id == tenant_id, redemptions.c.idempotency_key == key)
    ).first()
    if row is None:
        return None
    if row.member_id != member_id or row.reward_key != reward_key:
        raise Conflict(
            ErrorCode.IDEMPOTENCY_KEY_REUSE,
            f"idempotency key {key!r} was used for a different redemption",
        )
    voucher_id = uow.conn.execute(
        select(vouchers.c.id).where(vouchers.c.redemption_id == row.id)
    ).scalar_one()
    return RedemptionResult(
        row.id, int(row.points), _voucher_by(uow, tenant_id, id=voucher_id), replayed=True
    )


def member_available(uow: UnitOfWork, member_id: str) -> int:
    return postings.balance(uow, member_id, MemberAccount.AVAILABLE)
