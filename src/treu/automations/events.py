"""From an outbox event to the automations it fires: for whom, on which occasion, with what.

Each trigger reads its event's payload (and, for a first purchase and "so close" to a reward,
a little more: the activity, the member's balances); :func:`firings` returns one
:class:`~treu.automations.firing.Firing` per enabled automation the event meets. The template
variables each trigger adds to the member's personal content are in ``docs/automations.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from treu.activities.tables import activities
from treu.automations.firing import Firing
from treu.automations.model import (
    SOURCE_EVENT,
    AutomationDef,
    TriggerEvent,
    almost_reward,
    event_occasion,
)
from treu.ledger.service import get_balances
from treu.programmes.model import Programme
from treu.rewards.model import RewardKind
from treu.storage.uow import UnitOfWork

T = TriggerEvent


@dataclass(frozen=True)
class OutboxEvent:
    id: str
    tenant_id: str
    type: str
    payload: Mapping[str, Any]
    created_at: datetime

    @property
    def member_id(self) -> str | None:
        """The member the event is about (most events name one)."""
        found = self.payload.get("member_id")
        return found if isinstance(found, str) else None


def firings(uow: UnitOfWork, programme: Programme, event: OutboxEvent) -> list[Firing]:
    """The enabled automations of ``programme`` that ``event`` triggers."""
    member_id = event.member_id
    if member_id is None:
        return []
    found = []
    for automation in programme.document.automations:
        trigger = automation.trigger.event
        if not automation.enabled or SOURCE_EVENT.get(trigger) != event.type:
            continue
        met = _met(uow, programme, automation, event, member_id)
        if met is not None:
            occasion, context = met
            found.append(Firing(automation, member_id, occasion, context, event.id))
    return found


def _met(
    uow: UnitOfWork,
    programme: Programme,
    automation: AutomationDef,
    event: OutboxEvent,
    member_id: str,
) -> tuple[str, dict[str, Any]] | None:
    """(occasion, template variables) if ``event`` meets the automation's trigger, else None."""
    trigger, p = automation.trigger, event.payload
    occasion = event_occasion(trigger.event, event.id, p)
    match trigger.event:
        case T.FIRST_PURCHASE:
            if p.get("type") != "purchase" or not _first_purchase(uow, str(p["activity_id"])):
                return None
            return occasion, {"activity_id": p["activity_id"]}
        case T.ACTIVITY:
            if trigger.activities and p.get("type") not in trigger.activities:
                return None
            return occasion, {"activity_id": p["activity_id"], "activity_type": p.get("type")}
        case T.POINTS_ALMOST_REWARD:
            assert trigger.within is not None
            return _almost_reward(uow, programme, member_id, trigger.within)
        case T.STAMPS_ALMOST_COMPLETE:
            if trigger.cards and p.get("card") not in trigger.cards:
                return None
            left = int(p["stamps_needed"]) - int(p["stamps"])
            return occasion, {
                **_reward(programme, p.get("reward")),
                "card": p["card"],
                "card_name": p.get("card_name"),
                "stamps": p["stamps"],
                "stamps_needed": p["stamps_needed"],
                "stamps_left": left,
            }
        case T.TIER_UPGRADED:
            if trigger.tiers and p.get("to") not in trigger.tiers:
                return None
            return occasion, {"from_tier": p.get("from"), "to_tier": p.get("to")}
        case T.VOUCHER_ISSUED:
            if trigger.rewards and p.get("reward") not in trigger.rewards:
                return None
            keep = ("voucher_id", "code", "expires_at")
            return occasion, {**_reward(programme, p.get("reward")), **_pick(p, keep)}
        case T.SEGMENT_ENTERED:
            if p.get("segment") != trigger.segment:
                return None
            return occasion, {"segment": trigger.segment}
        case T.CART_ABANDONED | T.NEED_RECURRING | T.PRODUCT_NEW:
            return occasion, {"event_id": p["id"], "data": p.get("data") or {}}
        case T.TIER_WILL_DOWNGRADE:
            return occasion, _pick(p, ("tier", "to", "period_ends_on"))
        case T.POINTS_EXPIRING:
            return occasion, _pick(p, ("points", "expires_on"))
        case _:  # enrolled
            return occasion, {}


def _first_purchase(uow: UnitOfWork, activity_id: str) -> bool:
    first = uow.conn.execute(
        select(activities.c.first_purchase).where(activities.c.id == activity_id)
    ).scalar()
    return bool(first)


def _almost_reward(
    uow: UnitOfWork, programme: Programme, member_id: str, within: int
) -> tuple[str, dict[str, Any]] | None:
    """ "So close": at most ``within`` points short of the next reward. One occasion per reward
    and points spent so far: earning more toward the same reward is the same occasion, a
    redemption starts a new one."""
    balances = get_balances(uow, tenant_id=programme.tenant_id, member_id=member_id)
    costs = [
        (r.key, r.cost)
        for r in programme.document.rewards
        if r.cost is not None and r.active and r.kind is not RewardKind.DONATION
    ]
    near = almost_reward(balances.available, costs, within)
    if near is None:
        return None
    reward, missing = near
    context = {**_reward(programme, reward), "points_missing": missing}
    return f"{reward}:{balances.spent}", {**context, "balance": balances.available}


def _reward(programme: Programme, key: object) -> dict[str, Any]:
    found = next((r for r in programme.document.rewards if r.key == key), None)
    return {"reward": key, "reward_name": found.name if found else None}


def _pick(payload: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: payload[k] for k in keys if k in payload}
