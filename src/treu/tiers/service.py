"""Use cases for tiers: where a member stands, upgrades after an activity, the nightly period-end
evaluation, downgrade warnings and manual overrides.

The period's result is always recomputed from the activities themselves (purchases net of
returns, points awarded, visits), never kept as a running counter: the tier after a
re-evaluation is a pure function of the period's activities, a merged member brings their
purchases along, and activities recorded before the programme had tiers count too.

Building blocks (``after_activity``, ``reevaluate_tiers``, ``downgrade_warnings``) run inside
the caller's unit of work with the member locked and never commit; ``override_tier`` is a use
case and commits. This module must not import ``treu.mechanics.service`` or
``treu.rewards.service`` (they import it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.sql import Select

from treu.activities.model import PurchaseIn, build_basket
from treu.activities.tables import activities, awards
from treu.errors import Conflict, ErrorCode, InvalidInput
from treu.ids import new_id
from treu.ledger.model import start_of_day
from treu.mechanics.model import ActivityDone, Effect
from treu.members.tables import members
from treu.money import exponent
from treu.outbox.tables import outbox
from treu.programmes.model import Programme
from treu.programmes.service import load_revision
from treu.storage.locks import lock_members
from treu.storage.uow import Event, UnitOfWork
from treu.tiers.model import (
    Decision,
    PeriodKind,
    PeriodResult,
    TierDef,
    TierSettings,
    Window,
    evaluate_tier,
    finished_before,
    is_boundary,
    period_containing,
    upgrade_due,
)
from treu.tiers.tables import member_tiers, tier_history


@dataclass(frozen=True)
class TierStatus:
    """A member's tier and their progress in the running period."""

    member_id: str
    tier: TierDef
    since: datetime | None
    overridden: bool
    override_reason: str | None
    window: Window
    result: PeriodResult
    value: int  # the metric so far in the period (minor units for spend)
    next: TierDef | None
    missing: int | None  # what the next tier still needs, in the metric's units


@dataclass(frozen=True)
class TierChange:
    id: str
    member_id: str
    from_tier: str | None
    to_tier: str
    at: datetime
    reason: str
    explanation: str
    activity_id: str | None
    job_date: date | None
    actor: str | None


def settings_of(programme: Programme) -> TierSettings:
    """The programme's tier settings; ``tiers_not_configured`` if it has none."""
    settings = programme.document.tiers
    if settings is None:
        raise Conflict(ErrorCode.TIERS_NOT_CONFIGURED, "this programme has no tiers")
    return settings


# --- reading ------------------------------------------------------------------------------

_TIER_AT = (
    select(tier_history.c.to_tier)
    .where(tier_history.c.member_id == bindparam("member_id"), tier_history.c.at <= bindparam("at"))
    .order_by(tier_history.c.at.desc(), tier_history.c.id.desc())
    .limit(1)
)


def tier_at(uow: UnitOfWork, programme: Programme, member_id: str, at: datetime) -> str | None:
    """The key of the tier the member was in at ``at`` (None: the programme has no tiers).
    Read from the history, so a purchase recorded late earns with the tier of its time."""
    settings = programme.document.tiers
    if settings is None:
        return None
    key = uow.conn.execute(_TIER_AT, {"member_id": member_id, "at": at}).scalar()
    return key if settings.level(key) is not None else settings.lowest.key


def current_tier(uow: UnitOfWork, programme: Programme, member_id: str) -> TierDef | None:
    """The member's tier now (the lowest without a row); None if the programme has no tiers."""
    settings = programme.document.tiers
    if settings is None:
        return None
    row = _row(uow, member_id)
    return (settings.level(row.tier_key) if row else None) or settings.lowest


def tier_status(uow: UnitOfWork, programme: Programme, member_id: str) -> TierStatus:
    """The member's tier, and the running period's result against the next tier."""
    settings = settings_of(programme)
    row = _row(uow, member_id)
    tier = (settings.level(row.tier_key) if row else None) or settings.lowest
    day = programme.local_date(uow.now())
    window = period_containing(settings.period, day, _enrolled_on(uow, programme, member_id))
    result = period_results(uow, programme, [member_id], window).get(member_id, PeriodResult())
    value = result.value(settings.metric)
    above = settings.levels[settings.rank(tier.key) + 1 :]
    nxt = above[0] if above else None
    missing = None
    if nxt is not None:
        missing = max(0, settings.threshold_units(nxt, exponent(programme.currency)) - value)
    return TierStatus(
        member_id,
        tier,
        row.since if row else None,
        bool(row.overridden) if row else False,
        row.override_reason if row else None,
        window,
        result,
        value,
        nxt,
        missing,
    )


def tier_history_of(uow: UnitOfWork, member_id: str) -> list[TierChange]:
    """Every change of the member's tier, oldest first."""
    rows = uow.conn.execute(
        select(tier_history)
        .where(tier_history.c.member_id == member_id)
        .order_by(tier_history.c.at, tier_history.c.id)
    )
    return [
        TierChange(
            r.id,
            r.member_id,
            r.from_tier,
            r.to_tier,
            r.at,
            r.reason,
            r.explanation,
            r.activity_id,
            r.job_date,
            r.actor,
        )
        for r in rows
    ]


_returns = activities.alias("returns")


def period_results(
    uow: UnitOfWork, programme: Programme, member_ids: Iterable[str], window: Window
) -> dict[str, PeriodResult]:
    """Each member's result in ``window``: the earning base of their purchases net of every
    return recorded so far (a return counts in its purchase's period), the points awarded
    (awards of a return are dated at the purchase), and the purchases not returned in full."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    start, end = _instants(programme, window)
    out: dict[str, PeriodResult] = defaultdict(PeriodResult)
    returned = (
        select(func.coalesce(func.sum(_returns.c.paid_minor), 0))
        .where(_returns.c.purchase_id == activities.c.id, _returns.c.type == "return")
        .scalar_subquery()
    )
    query = select(
        activities.c.id,
        activities.c.member_id,
        activities.c.base_minor,
        activities.c.revision_id,
        activities.c.payload,
        returned.label("returned"),
    ).where(
        activities.c.programme_id == programme.id,
        activities.c.type == "purchase",
        activities.c.member_id.in_(ids),
    )
    for row in uow.conn.execute(_within(query, activities.c.occurred_at, start, end)):
        if int(row.returned) == 0:
            out[row.member_id] += PeriodResult(int(row.base_minor or 0), 0, 1)
            continue
        base, kept = _net_of_returns(uow, row)
        out[row.member_id] += PeriodResult(base, 0, 1 if kept else 0)
    points = select(awards.c.member_id, func.sum(awards.c.points)).where(
        awards.c.member_id.in_(ids)
    )
    points = _within(points, awards.c.occurred_at, start, end).group_by(awards.c.member_id)
    for member_id, total in uow.conn.execute(points):
        out[member_id] += PeriodResult(0, int(total), 0)
    return dict(out)


def _within(query: Select[Any], column: Any, start: datetime | None, end: datetime | None) -> Any:
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


def _net_of_returns(uow: UnitOfWork, row: Any) -> tuple[int, bool]:
    """(earning base left, any product left) of a purchase after its returns: the basket is
    rebuilt under the revision it was recorded with, as the points are on a return."""
    revision = load_revision(uow, row.revision_id)
    basket = build_basket(
        PurchaseIn.model_validate(row.payload),
        revision.currency,
        revision.document.earning_base,
    )
    back = [0] * len(basket.lines)
    for (payload,) in uow.conn.execute(
        select(activities.c.payload).where(
            activities.c.purchase_id == row.id, activities.c.type == "return"
        )
    ):
        for i, amount in enumerate(payload["returned_minor"]):
            back[i] += amount
    net = basket.after_returns(back)
    return net.base_minor, any(x.paid_minor > 0 for x in net.lines if not x.is_shipping)


# --- after an activity --------------------------------------------------------------------


def after_activity(uow: UnitOfWork, done: ActivityDone) -> list[Effect]:
    """Upgrade the member now if the activity's period reaches a higher tier (programmes that
    upgrade immediately). Never a downgrade: a return lowers the period's result, but the
    member keeps their tier until the period ends."""
    programme = done.programme
    settings = programme.document.tiers
    if settings is None or done.type == "return":
        return []
    day = programme.local_date(done.occurred_at)
    window = period_containing(settings.period, day, _enrolled_on(uow, programme, done.member_id))
    result = period_results(uow, programme, [done.member_id], window).get(
        done.member_id, PeriodResult()
    )
    current = current_tier(uow, programme, done.member_id)
    assert current is not None
    decision = upgrade_due(
        settings,
        current.key,
        result,
        exponent=exponent(programme.currency),
        currency=programme.currency,
        window=window,
    )
    if decision is None:
        return []
    return [
        _change(
            uow,
            programme,
            done.member_id,
            current.key,
            decision,
            at=done.occurred_at,
            activity_id=done.activity_id,
        )
    ]


# --- the nightly run ----------------------------------------------------------------------


def nightly_candidates(uow: UnitOfWork, programme: Programme, day: date) -> list[str]:
    """Members the run for ``day`` may have to move: everyone above the lowest tier, and
    everyone active in the last two years (an upgrade at the period end). Empty on days that
    are no period boundary for anybody (most days of a calendar-year programme)."""
    settings = programme.document.tiers
    if settings is None:
        return []
    grace = settings.downgrade.grace_days
    if settings.period is PeriodKind.LIFETIME and settings.upgrade == "immediately":
        return []  # no period ends, and every upgrade happened with its activity
    if settings.period is PeriodKind.CALENDAR_YEAR and not (
        is_boundary(settings.period, day, day)
        or is_boundary(settings.period, day - timedelta(days=grace), day)
    ):
        return []
    since = start_of_day(day - timedelta(days=2 * 366 + grace), programme.tz)
    above = select(member_tiers.c.member_id).where(member_tiers.c.programme_id == programme.id)
    active = (
        select(activities.c.member_id)
        .where(
            activities.c.programme_id == programme.id,
            activities.c.member_id.is_not(None),
            activities.c.occurred_at >= since,
        )
        .distinct()
    )
    found = {m for (m,) in uow.conn.execute(above)} | {m for (m,) in uow.conn.execute(active)}
    return sorted(found)


def reevaluate_tiers(
    uow: UnitOfWork, programme: Programme, day: date, member_ids: list[str]
) -> list[tuple[str, Effect]]:
    """Apply the period end(s) that ``day`` brings to each member (locked here, in id order).

    Upgrades (``next_period``, or members whose result predates the tiers) apply on the
    boundary; downgrades ``grace_days`` later, to the tier the finished period earns, never
    more than ``max_steps_down`` steps. A member already evaluated for ``day`` is skipped, so a
    second run of the same date changes nothing."""
    settings = settings_of(programme)
    lock_members(uow, *member_ids)
    changes = []
    for member_id in member_ids:
        effect = _reevaluate(uow, programme, settings, day, member_id)
        if effect is not None:
            changes.append((member_id, effect))
    return changes


def _reevaluate(
    uow: UnitOfWork, programme: Programme, settings: TierSettings, day: date, member_id: str
) -> Effect | None:
    row = _row(uow, member_id)
    if row is not None and row.evaluated_on is not None and row.evaluated_on >= day:
        return None
    current = (settings.level(row.tier_key) if row else None) or settings.lowest
    enrolled = _enrolled_on(uow, programme, member_id)
    kind, decision = settings.period, None
    down_on = day - timedelta(days=settings.downgrade.grace_days)
    if kind is not PeriodKind.LIFETIME and is_boundary(kind, down_on, enrolled):
        finished = finished_before(kind, down_on, enrolled)
        running = Window(down_on, day + timedelta(days=1))
        decision = _decide(uow, programme, settings, member_id, current, finished, running)
        if decision.reason != "downgrade":
            decision = None
    if decision is None and (kind is PeriodKind.LIFETIME or is_boundary(kind, day, enrolled)):
        finished = finished_before(kind, day, enrolled)
        decision = _decide(uow, programme, settings, member_id, current, finished, None)
        if decision.reason != "upgrade":
            decision = None
    effect = None
    if decision is not None:
        at = start_of_day(day, programme.tz)
        effect = _change(uow, programme, member_id, current.key, decision, at=at, job_date=day)
    if _row(uow, member_id) is not None:
        uow.conn.execute(
            update(member_tiers)
            .where(member_tiers.c.member_id == member_id)
            .values(evaluated_on=day)
        )
    return effect


def _decide(
    uow: UnitOfWork,
    programme: Programme,
    settings: TierSettings,
    member_id: str,
    current: TierDef,
    finished: Window,
    running: Window | None,
) -> Decision:
    results = period_results(uow, programme, [member_id], finished)
    now = None
    if running is not None:
        now = period_results(uow, programme, [member_id], running).get(member_id, PeriodResult())
    return evaluate_tier(
        settings,
        current.key,
        results.get(member_id, PeriodResult()),
        running=now,
        exponent=exponent(programme.currency),
        currency=programme.currency,
        window=finished,
    )


def downgrade_warnings(uow: UnitOfWork, programme: Programme, day: date) -> int:
    """Publish ``tier.will_downgrade`` once per member and period for members whose period so
    far earns a lower tier, ``will_downgrade_warning_days`` or fewer days before it ends."""
    settings = programme.document.tiers
    if settings is None or not settings.will_downgrade_warning_days:
        return 0
    if settings.period in (PeriodKind.LIFETIME, PeriodKind.ROLLING_12_MONTHS):
        return 0  # no period end to warn about
    rows = uow.conn.execute(
        select(member_tiers.c.member_id, member_tiers.c.tier_key).where(
            member_tiers.c.programme_id == programme.id,
            member_tiers.c.tier_key != settings.lowest.key,
        )
    ).all()
    sent = 0
    for member_id, key in rows:
        window = period_containing(settings.period, day, _enrolled_on(uow, programme, member_id))
        assert window.end is not None
        left = (window.end - day).days
        if not 0 < left <= settings.will_downgrade_warning_days:
            continue
        result = period_results(uow, programme, [member_id], window).get(member_id, PeriodResult())
        decision = evaluate_tier(
            settings,
            key,
            result,
            exponent=exponent(programme.currency),
            currency=programme.currency,
            window=window,
        )
        dedupe = f"tier.will_downgrade:{member_id}:{window.end.isoformat()}"
        if decision.reason != "downgrade" or _published(uow, programme.tenant_id, dedupe):
            continue
        payload = {
            "member_id": member_id,
            "tier": key,
            "to": decision.target.key,
            "period_ends_on": window.end.isoformat(),
            "explanation": decision.explanation,
        }
        uow.publish(Event(programme.tenant_id, "tier.will_downgrade", payload, dedupe_key=dedupe))
        sent += 1
    return sent


def _published(uow: UnitOfWork, tenant_id: str, dedupe: str) -> bool:
    return (
        uow.conn.execute(
            select(outbox.c.id).where(
                outbox.c.tenant_id == tenant_id, outbox.c.dedupe_key == dedupe
            )
        ).first()
        is not None
    )


# --- manual override ----------------------------------------------------------------------


def override_tier(
    uow: UnitOfWork,
    *,
    programme: Programme,
    member_id: str,
    tier: str,
    reason: str,
    actor: str,
) -> TierStatus:
    """Staff put a member into a tier by hand, with a reason (recorded in the history). The
    override holds until the next period end is evaluated; a qualifying upgrade lifts it."""
    settings = settings_of(programme)
    if not reason.strip():
        raise InvalidInput(
            ErrorCode.REASON_REQUIRED,
            "a manual tier change needs a reason",
            errors=[{"path": "reason", "message": "must not be empty"}],
        )
    target = settings.level(tier)
    if target is None:
        raise InvalidInput(
            ErrorCode.UNKNOWN_TIER,
            f"no tier {tier!r}; the tiers are {', '.join(settings.keys())}",
            errors=[{"path": "tier", "message": "unknown tier"}],
        )
    lock_members(uow, member_id)
    current = current_tier(uow, programme, member_id)
    assert current is not None
    if current.key != target.key:
        why = f"{target.name} set by hand: {reason.strip()}"
        _change(
            uow,
            programme,
            member_id,
            current.key,
            Decision(target, None, why),
            at=uow.now(),
            actor=actor,
            override_reason=reason.strip(),
        )
    status = tier_status(uow, programme, member_id)
    uow.commit()
    return status


# --- internals ----------------------------------------------------------------------------

_ROW = select(member_tiers).where(member_tiers.c.member_id == bindparam("member_id"))


def _row(uow: UnitOfWork, member_id: str) -> Any:
    return uow.conn.execute(_ROW, {"member_id": member_id}).first()


def _enrolled_on(uow: UnitOfWork, programme: Programme, member_id: str) -> date:
    enrolled = uow.conn.execute(
        select(members.c.enrolled_at).where(members.c.id == member_id)
    ).scalar_one()
    return programme.local_date(enrolled)


def _instants(programme: Programme, window: Window) -> tuple[datetime | None, datetime | None]:
    tz = programme.tz
    return (
        None if window.start is None else start_of_day(window.start, tz),
        None if window.end is None else start_of_day(window.end, tz),
    )


def _change(
    uow: UnitOfWork,
    programme: Programme,
    member_id: str,
    from_key: str,
    decision: Decision,
    *,
    at: datetime,
    activity_id: str | None = None,
    job_date: date | None = None,
    actor: str | None = None,
    override_reason: str | None = None,
) -> Effect:
    """Move the member to ``decision.target``: the current row, a history row, an event, and
    the effect the till and the member's history show."""
    to_key = decision.target.key
    reason = "override" if override_reason is not None else decision.reason
    assert reason is not None
    now = uow.now()
    values = {
        "tier_key": to_key,
        "since": at,
        "overridden": override_reason is not None,
        "override_reason": override_reason,
        "override_actor": actor if override_reason is not None else None,
        "updated_at": now,
    }
    if override_reason is not None:
        values["evaluated_on"] = programme.local_date(now)
    done = uow.conn.execute(
        update(member_tiers).where(member_tiers.c.member_id == member_id).values(**values)
    )
    if done.rowcount == 0:
        uow.conn.execute(
            insert(member_tiers).values(
                member_id=member_id,
                tenant_id=programme.tenant_id,
                programme_id=programme.id,
                **values,
            )
        )
    uow.conn.execute(
        insert(tier_history).values(
            id=new_id("tier_change"),
            tenant_id=programme.tenant_id,
            programme_id=programme.id,
            member_id=member_id,
            from_tier=from_key,
            to_tier=to_key,
            at=at,
            reason=reason,
            explanation=decision.explanation,
            activity_id=activity_id,
            job_date=job_date,
            actor=actor,
            created_at=now,
        )
    )
    settings = settings_of(programme)
    kind = "tier.upgraded" if settings.rank(to_key) > settings.rank(from_key) else "tier.downgraded"
    data = {"from": from_key, "to": to_key, "reason": reason}
    uow.publish(
        Event(
            programme.tenant_id,
            kind,
            {"member_id": member_id, **data, "at": at.isoformat(), "why": decision.explanation},
        )
    )
    return Effect("tiers", kind, decision.explanation, data)
