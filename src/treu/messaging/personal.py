"""A member's personal content: what templates know about them, read through the services of
the ledger, rewards, stamps, tiers and memberships (read-only)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from treu.errors import Rejected
from treu.ledger.service import get_balances, list_lots
from treu.members.service import get_member
from treu.memberships.service import active_plans, list_memberships
from treu.messaging.model import language_of
from treu.money import exponent, from_minor
from treu.programmes.model import Programme
from treu.rewards.model import RewardState, check_redeemable
from treu.rewards.service import list_rewards, list_vouchers
from treu.segments.service import member_segments
from treu.stamps.service import member_stamp_cards
from treu.storage.uow import UnitOfWork
from treu.tiers.service import current_tier, tier_status

SAVINGS_WINDOW = timedelta(days=730)  # "in the last two years"


def personal_context(uow: UnitOfWork, programme: Programme, member_id: str) -> dict[str, Any]:
    """What templates know about a member (read-only): balance, the next reward and what it
    still costs, rewards and vouchers usable now, stamp cards, tier and progress, points
    expiring next, memberships and perks, member since, points earned, money saved in the last
    two years. Documented in docs/messaging.md; the sample is ``render.sample_context``."""
    tenant_id = programme.tenant_id
    member = get_member(uow, member_id, tenant_id=tenant_id)
    doc = programme.document
    now = uow.now()
    today = programme.local_date(now)
    balances = get_balances(uow, tenant_id=tenant_id, member_id=member_id)
    since = programme.local_date(member.enrolled_at)
    rewards_now, next_reward = _rewards(uow, programme, member_id, balances.available, now)
    vouchers = _vouchers(uow, programme, member_id, now)
    cards = _cards(uow, programme, member_id)
    card = min(
        (c for c in cards if c["stamps"] > 0), key=lambda c: c["stamps_left"], default=None
    ) or (cards[0] if cards else None)
    first_name = member.name.split()[0] if member.name and member.name.split() else None
    return {
        "member_id": member.id,
        "first_name": first_name,
        "name": member.name,
        "locale": member.locale or doc.locale,
        "language": language_of(member.locale, doc.locale, ["de", "en"]),
        "programme": {
            "key": doc.key,
            "name": doc.name,
            "point_name": doc.point_name,
            "currency": doc.currency,
        },
        "point_name": doc.point_name,
        "currency": doc.currency,
        "member_since": since,
        "years_member": _full_years(since, today),
        "balance": balances.available,
        "pending": balances.pending,
        "points_earned": balances.lifetime_earned,
        "points_spent": balances.spent,
        "saved": _saved(uow, programme, member_id, now),
        "saved_since": programme.local_date(now - SAVINGS_WINDOW),
        "next_reward": next_reward,
        "points_to_next_reward": next_reward["points_needed"] if next_reward else None,
        "rewards_now": rewards_now,
        "vouchers": vouchers,
        "voucher": vouchers[-1] if vouchers else None,
        "stamp_cards": cards,
        "card": card,
        "stamps_left": card["stamps_left"] if card else None,
        "tier": _tier(uow, programme, member_id),
        "expiring": _expiring(uow, programme, member_id, now),
        "memberships": _memberships(uow, programme, member_id),
        "today": today,
    }


def _full_years(since: date, today: date) -> int:
    return today.year - since.year - ((today.month, today.day) < (since.month, since.day))


def _rewards(
    uow: UnitOfWork, programme: Programme, member_id: str, balance: int, now: datetime
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Rewards the member can redeem now (cost within the balance) and the cheapest one they
    cannot afford yet (their next reward); a reward limited to segments counts for a member in
    one of them."""
    tiers = programme.document.tiers
    segments = member_segments(uow, member_id)
    tier = current_tier(uow, programme, member_id)
    plans = active_plans(uow, programme, member_id, now)
    eligible: list[dict[str, Any]] = []
    for line in list_rewards(uow, programme_id=programme.id):
        if line.cost is None or line.stock == 0:
            continue
        definition = line.definition
        state = RewardState(
            line.id,
            line.key,
            line.name,
            line.cost,
            line.active,
            line.stock,
            None,
            _instant(definition.get("available_from")),
            _instant(definition.get("available_until")),
            tuple(definition.get("tiers") or ()),
            tuple(definition.get("segments") or ()),
            definition.get("min_tier"),
            tuple(definition.get("memberships") or ()),
        )
        try:
            check_redeemable(
                state,
                now=now,
                redeemed_by_member=0,
                member_tier=tier.key if tier else None,
                member_segments=segments,
                tier_order=tiers.keys() if tiers else (),
                member_plans=plans,
            )
        except Rejected:
            continue
        eligible.append({"key": line.key, "name": line.name, "cost": line.cost})
    now_usable = [r for r in eligible if r["cost"] <= balance]
    ahead = sorted((r for r in eligible if r["cost"] > balance), key=lambda r: r["cost"])
    nxt = {**ahead[0], "points_needed": ahead[0]["cost"] - balance} if ahead else None
    return now_usable, nxt


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _vouchers(
    uow: UnitOfWork, programme: Programme, member_id: str, now: datetime
) -> list[dict[str, Any]]:
    found = list_vouchers(uow, tenant_id=programme.tenant_id, member_id=member_id)
    return [
        {
            "code": v.code,
            "reward_key": v.reward_key,
            "reward_name": v.reward_name,
            "issued_at": v.issued_at,
            "expires_at": v.expires_at,
            "expires_on": programme.local_date(v.expires_at) if v.expires_at else None,
        }
        for v in found
        if v.status.value == "issued" and (v.expires_at is None or v.expires_at > now)
    ]


def _cards(uow: UnitOfWork, programme: Programme, member_id: str) -> list[dict[str, Any]]:
    names = {r.key: r.name for r in programme.document.rewards}
    return [
        {
            "key": c.card_key,
            "name": c.name,
            "reward": c.reward,
            "reward_name": names.get(c.reward, c.reward),
            "stamps": c.stamps,
            "stamps_needed": c.stamps_needed,
            "stamps_left": max(0, c.stamps_needed - c.stamps),
        }
        for c in member_stamp_cards(uow, tenant_id=programme.tenant_id, member_id=member_id)
        if c.status == "open"
    ]


def _tier(uow: UnitOfWork, programme: Programme, member_id: str) -> dict[str, Any] | None:
    settings = programme.document.tiers
    if settings is None:
        return None
    status = tier_status(uow, programme, member_id)
    missing: Any = status.missing
    metric = str(settings.metric.value)
    if missing is not None and metric == "spend":
        missing = from_minor(missing, programme.currency)
    return {
        "key": status.tier.key,
        "name": status.tier.name,
        "next_key": status.next.key if status.next else None,
        "next_name": status.next.name if status.next else None,
        "missing": missing,
        "metric": metric,
    }


def _expiring(
    uow: UnitOfWork, programme: Programme, member_id: str, now: datetime
) -> dict[str, Any] | None:
    """The points that expire next: the earliest expiry day ahead and what expires on it."""
    days: dict[date, int] = {}
    for lot in list_lots(uow, tenant_id=programme.tenant_id, member_id=member_id, open_only=True):
        if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at > now:
            day = lot.expires_on or programme.local_date(lot.expires_at)
            days[day] = days.get(day, 0) + lot.remaining
    if not days:
        return None
    first = min(days)
    return {"points": days[first], "date": first}


def _memberships(uow: UnitOfWork, programme: Programme, member_id: str) -> list[dict[str, Any]]:
    return [
        {
            "plan": m.plan.key,
            "name": m.plan.name,
            "status": m.status.value,
            "paid_until": m.paid_until,
            "perks": m.plan.perks.labels(),
        }
        for m in list_memberships(uow, tenant_id=programme.tenant_id, member_id=member_id)
    ]


def _saved(uow: UnitOfWork, programme: Programme, member_id: str, now: datetime) -> Decimal:
    """Money saved with vouchers used in the last two years: a fixed discount's value, else
    the points it cost at the programme's point value."""
    total = Decimal(0)
    since = now - SAVINGS_WINDOW
    point_value = programme.document.point_value
    for v in list_vouchers(uow, tenant_id=programme.tenant_id, member_id=member_id):
        if v.status.value != "used" or v.used_at is None or v.used_at < since:
            continue
        value = v.definition.get("value")
        cost = v.definition.get("cost")
        if value is not None:
            total += Decimal(str(value))
        elif cost:
            total += Decimal(int(cost)) * point_value
    return total.quantize(Decimal(1).scaleb(-exponent(programme.currency)))
