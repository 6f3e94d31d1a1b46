"""The hooks the activities and members use cases call (see the package docstring).

Every function runs inside the caller's unit of work and never commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, insert, select

from treu.activities.tables import activity_effects
from treu.campaigns import service as campaigns
from treu.ids import new_id
from treu.mechanics.model import ActivityDone, Effect, Standing
from treu.memberships import service as memberships
from treu.memberships.model import implied_rules
from treu.programmes.model import Programme
from treu.referrals import service as referrals
from treu.rules.model import Rule
from treu.segments import service as segments
from treu.stamps import service as stamps
from treu.storage.uow import UnitOfWork
from treu.tiers import service as tiers
from treu.tiers.model import implied_rules as implied_tier_rules
from treu.wallet import service as wallet


def standing(uow: UnitOfWork, programme: Programme, member_id: str, at: datetime) -> Standing:
    """The member's tier and active membership plans at ``at``, and their segments (as the
    last recompute left them) if any earning rule is limited to segments."""
    return Standing(
        tier=tiers.tier_at(uow, programme, member_id, at),
        memberships=memberships.active_plans(uow, programme, member_id, at),
        segments=(
            segments.member_segments(uow, member_id)
            if any(rule.when.segments for rule in earning_rules(programme))
            else frozenset()
        ),
    )


def earning_rules(programme: Programme) -> list[Rule]:
    """The programme's rules plus those its tiers and membership plans imply."""
    return (
        list(programme.document.rules)
        + implied_tier_rules(programme.document.tiers)
        + implied_rules(programme.document.memberships)
    )


def after_activity(uow: UnitOfWork, done: ActivityDone) -> list[Effect]:
    """Let every mechanic react to a recorded activity; store and return what they did."""
    effects: list[Effect] = []
    effects += stamps.after_activity(uow, done)
    effects += campaigns.after_activity(uow, done)
    effects += tiers.after_activity(uow, done)
    effects += referrals.on_activity(uow, done)
    effects += wallet.cashback_after(uow, done)
    record_effects(uow, done.programme, done.member_id, done.activity_id, effects)
    return effects


def after_enrolment(
    uow: UnitOfWork,
    programme: Programme,
    member_id: str,
    at: datetime,
    *,
    referral_code: str | None = None,
    client_address: str | None = None,
) -> list[Effect]:
    """Welcome gifts, launch bonuses, referral bookkeeping for a member enrolled just now."""
    effects: list[Effect] = []
    effects += campaigns.after_enrolment(uow, programme, member_id, at)
    effects += referrals.on_enrolment(
        uow, programme, member_id, at, referral_code=referral_code, client_address=client_address
    )
    record_effects(uow, programme, member_id, None, effects)
    return effects


_INSERT_EFFECTS = insert(activity_effects)


def record_effects(
    uow: UnitOfWork,
    programme: Programme,
    member_id: str,
    activity_id: str | None,
    effects: Iterable[Effect],
) -> None:
    """Store effects (of an activity, or of an enrolment or a job when ``activity_id`` is None)."""
    rows = [
        {
            "id": new_id("effect"),
            "tenant_id": programme.tenant_id,
            "programme_id": programme.id,
            "member_id": member_id,
            "activity_id": activity_id,
            "mechanic": e.mechanic,
            "kind": e.kind,
            "unit": e.unit,
            "amount": e.amount,
            "explanation": e.explanation,
            "data": e.data,
            "created_at": uow.now(),
        }
        for e in effects
    ]
    if rows:
        uow.conn.execute(_INSERT_EFFECTS, rows)


_EFFECTS_OF = (
    select(activity_effects)
    .where(activity_effects.c.activity_id == bindparam("activity_id"))
    .order_by(activity_effects.c.id)
)


def effects_of(uow: UnitOfWork, activity_id: str) -> list[Effect]:
    """What an activity did beyond its points, in the order it happened (a replay returns it)."""
    return [
        Effect(r.mechanic, r.kind, r.explanation, dict(r.data), r.unit, r.amount)
        for r in uow.conn.execute(_EFFECTS_OF, {"activity_id": activity_id})
    ]
