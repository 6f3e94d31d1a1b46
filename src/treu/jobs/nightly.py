"""The nightly run: fixed steps in a fixed order, idempotent per programme and date.

``treu jobs run --date D`` runs, for each programme, the steps below as of the start of day D in
the programme's timezone. Order (later issues plug their steps into the same list):

1. ``activate_pending``   pending points whose time has come become available
2. ``birthday_bonus``     members whose birthday is D get the ``birthday`` action
3. ``expire_points``      lots past their expiry date, and inactive members' points, to breakage
4. ``expire_vouchers``    issued vouchers past their date
5. ``expiry_reminders``   one ``points.expiring`` event per member and expiry date, ahead of time
6. ``reevaluate_tiers``   at a period end, each member to the tier the finished period earns
7. ``tier_warnings``      one ``tier.will_downgrade`` per member and period, ahead of its end
8. ``membership_status``  memberships whose paid period ran out: past_due, expired (events)
9. ``membership_dividends`` last year's dividend as store credit on the plan's pay date
10. ``expire_gift_cards``  gift cards past their date: the rest to breakage
11. ``expire_stamp_cards`` incomplete stamp cards past their ``expires_after_days``: to breakage
12. ``enrolment_anniversaries`` the anniversary gift, once per member and year
13. ``confirm_referrals`` referrals whose qualifying purchase outlived the return window: rewards
14. ``segments``         segment membership recomputed; changes publish ``segment.entered``/``left``
15. ``automations``      date-based automations (birthdays, anniversaries, inactivity, statements),
                         then every event published so far (the expiry reminders, tier warnings
                         and segment changes of the steps above) and delayed runs now due
16. ``messages``         a dispatch pass: the messages the automations queued are sent
17. ``analytics_store``  with ``TREU_ANALYTICS_DIR`` set, the programme's facts rewritten into
                         its columnar analytics store (atomically); otherwise nothing

Each step processes work in batches, one transaction per batch, and is idempotent on its own
(state checks, external ids, dedupe keys): a crash half-way and a re-run do every item once. A
finished step is recorded in ``job_runs`` so a second run of the same date skips it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from treu.activities.model import ActionIn
from treu.activities.service import record_action
from treu.analytics.service import STORE_STEP, store_directory, write_store
from treu.automations.dates import run_date_triggers
from treu.automations.service import process_events, run_due
from treu.campaigns import service as campaigns
from treu.errors import ErrorCode, InvalidInput, Rejected
from treu.ids import new_id
from treu.jobs.tables import job_runs
from treu.ledger import postings
from treu.ledger.model import add_months, expires_on, start_of_day
from treu.ledger.tables import lots
from treu.mechanics.service import record_effects
from treu.members.model import birthday_on
from treu.members.tables import members
from treu.memberships import service as memberships
from treu.messaging.dispatcher import MAX_SENDS as MESSAGES_PER_PASS
from treu.messaging.dispatcher import dispatch as dispatch_messages
from treu.outbox.tables import outbox
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.programmes.tables import programmes
from treu.referrals.service import confirm_due_referrals
from treu.rewards.service import expire_vouchers
from treu.segments.service import recompute_segments
from treu.stamps import service as stamps
from treu.storage.locks import lock_members
from treu.storage.sql import insert_or_skip
from treu.storage.uow import Event, UnitOfWork
from treu.tiers import service as tiers
from treu.wallet import gift_cards

BATCH = 500
UowFactory = Callable[[], UnitOfWork]
Step = Callable[[UowFactory, str, date], int]


@dataclass(frozen=True)
class StepResult:
    programme_id: str
    step: str
    processed: int
    skipped: bool


def activate_pending(new_uow: UowFactory, programme_id: str, day: date) -> int:
    done = 0
    while True:
        with new_uow() as uow:
            programme = load_programme(uow, programme_id)
            as_of = start_of_day(day, programme.tz)
            batch = uow.conn.execute(
                select(lots.c.id, lots.c.member_id)
                .where(
                    lots.c.programme_id == programme_id,
                    lots.c.status == "pending",
                    lots.c.activates_at <= as_of,
                )
                .order_by(lots.c.id)
                .limit(BATCH)
            ).all()
            if not batch:
                return done
            lock_members(uow, *{r.member_id for r in batch})
            for lot_id, _member in batch:
                postings.activate(uow, programme, lot_id=lot_id, at=uow.now())
            uow.commit()
            done += len(batch)


def birthday_bonus(new_uow: UowFactory, programme_id: str, day: date) -> int:
    with new_uow() as uow:
        programme = load_programme(uow, programme_id)
        if not _has_action_rule(programme, "birthday"):
            return 0
        candidates = uow.conn.execute(
            select(members.c.id, members.c.birthday).where(
                members.c.programme_id == programme_id,
                members.c.status == "active",
                members.c.birthday.is_not(None),
            )
        ).all()
    due = [m for m, born in candidates if birthday_on(born, day.year) == day]
    for member_id in due:
        # A birthday rule with a per-member limit (lifetime: 1) refuses the action: that is the
        # limit working, not a reason to stop tonight's run.
        with _suppress_limit(), new_uow() as uow:
            programme = load_programme(uow, programme_id)
            record_action(
                uow,
                programme_id=programme_id,
                member=member_id,
                action=ActionIn(
                    external_id=f"birthday:{member_id}:{day.year}",
                    type="birthday",
                    occurred_at=_earliest(uow, day, programme),
                ),
            )
    return len(due)


def expire_points(new_uow: UowFactory, programme_id: str, day: date) -> int:
    done = 0
    while True:
        with new_uow() as uow:
            programme = load_programme(uow, programme_id)
            as_of = start_of_day(day, programme.tz)
            query = select(lots.c.id, lots.c.member_id).where(
                lots.c.programme_id == programme_id,
                lots.c.status == "active",
                lots.c.remaining > 0,
            )
            policy = programme.document.expiry
            if policy.type == "inactivity":
                cutoff = start_of_day(add_months(day, -(policy.months or 0)), programme.tz)
                inactive = select(members.c.id).where(
                    members.c.programme_id == programme_id,
                    func.coalesce(members.c.last_activity_at, members.c.enrolled_at) < cutoff,
                )
                query = query.where(lots.c.member_id.in_(inactive))
            else:
                query = query.where(lots.c.expires_at <= as_of)
            batch = uow.conn.execute(query.order_by(lots.c.id).limit(BATCH)).all()
            if not batch:
                return done
            lock_members(uow, *{r.member_id for r in batch})
            per_member: dict[str, int] = {}
            for lot_id, member_id in batch:
                expired = postings.expire_lot(uow, programme, lot_id=lot_id, at=uow.now())
                per_member[member_id] = per_member.get(member_id, 0) + expired
            for member_id, points in per_member.items():
                if points:
                    uow.publish(
                        Event(
                            programme.tenant_id,
                            "points.expired",
                            {"member_id": member_id, "points": points, "date": day.isoformat()},
                        )
                    )
            uow.commit()
            done += len(batch)


def expire_vouchers_step(new_uow: UowFactory, programme_id: str, day: date) -> int:
    with new_uow() as uow:
        programme = load_programme(uow, programme_id)
        count = expire_vouchers(uow, programme_id=programme_id, at=start_of_day(day, programme.tz))
        uow.commit()
        return count


def expiry_reminders(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """Announce points that expire within the reminder lead time, once per member and date."""
    with new_uow() as uow:
        programme = load_programme(uow, programme_id)
        lead = programme.document.expiry.reminder_days
        if not lead:
            return 0
        tz = programme.tz
        window_end = start_of_day(day + timedelta(days=lead + 1), tz)
        rows = uow.conn.execute(
            select(lots.c.member_id, lots.c.expires_at, func.sum(lots.c.remaining))
            .where(
                lots.c.programme_id == programme_id,
                lots.c.status == "active",
                lots.c.remaining > 0,
                lots.c.expires_at > start_of_day(day + timedelta(days=1), tz),
                lots.c.expires_at <= window_end,
            )
            .group_by(lots.c.member_id, lots.c.expires_at)
        ).all()
        sent = 0
        for member_id, expiry, points in rows:
            on = expires_on(expiry, tz)
            assert on is not None
            key = f"points.expiring:{member_id}:{on.isoformat()}"
            seen = uow.conn.execute(
                select(outbox.c.id).where(
                    outbox.c.tenant_id == programme.tenant_id, outbox.c.dedupe_key == key
                )
            ).first()
            if seen:
                continue
            uow.publish(
                Event(
                    programme.tenant_id,
                    "points.expiring",
                    {"member_id": member_id, "points": int(points), "expires_on": on.isoformat()},
                    dedupe_key=key,
                )
            )
            sent += 1
        uow.commit()
        return sent


def reevaluate_tiers_step(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """Period ends: members move to the tier their finished period earns (treu.tiers)."""
    with new_uow() as uow:
        candidates = tiers.nightly_candidates(uow, load_programme(uow, programme_id), day)
    changed = 0
    for start in range(0, len(candidates), BATCH):
        with new_uow() as uow:
            programme = load_programme(uow, programme_id)
            batch = candidates[start : start + BATCH]
            for member_id, effect in tiers.reevaluate_tiers(uow, programme, day, batch):
                record_effects(uow, programme, member_id, None, [effect])
                changed += 1
            uow.commit()
    return changed


def tier_warnings(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """``tier.will_downgrade`` ahead of a period end, once per member and period."""
    with new_uow() as uow:
        sent = tiers.downgrade_warnings(uow, load_programme(uow, programme_id), day)
        uow.commit()
        return sent


def expire_gift_cards_step(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """Gift cards past their date: what is left goes to breakage."""
    with new_uow() as uow:
        programme = load_programme(uow, programme_id)
        at = start_of_day(day, programme.tz)
        count = gift_cards.expire_gift_cards(uow, programme_id=programme_id, at=at)
        uow.commit()
        return count


def membership_status(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """Memberships whose period ran out by the start of ``day``: past_due, then expired."""
    with new_uow() as uow:
        programme = load_programme(uow, programme_id)
        if not programme.document.memberships:
            return 0
        at = start_of_day(day, programme.tz)
        changed = memberships.advance_statuses(uow, programme_id=programme_id, at=at)
        uow.commit()
        return changed


def membership_dividends(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """Last year's dividends as store credit, on (or after a missed night, from) the plan's
    pay date; one transaction per member, each paid at most once per plan and year."""
    with new_uow() as uow:
        due = memberships.dividends_due(uow, programme_id=programme_id, day=day)
    paid = 0
    for one in due:
        with new_uow() as uow:
            paid += memberships.pay_dividend(uow, programme_id=programme_id, due=one)
    return paid


def expire_stamp_cards_step(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """Incomplete stamp cards past their card type's ``expires_after_days`` (treu.stamps)."""
    done = 0
    while True:
        with new_uow() as uow:
            batch = stamps.expire_stamp_cards(uow, programme_id=programme_id, day=day, limit=BATCH)
            programme = load_programme(uow, programme_id)
            for member_id, effect in batch:
                record_effects(uow, programme, member_id, None, [effect])
            uow.commit()
        done += len(batch)
        if len(batch) < BATCH:
            return done


def confirm_referrals(new_uow: UowFactory, programme_id: str, day: date) -> int:
    done = 0
    while True:
        with new_uow() as uow:
            as_of = start_of_day(day, load_programme(uow, programme_id).tz)
            confirmed = confirm_due_referrals(uow, programme_id=programme_id, as_of=as_of)
        if not confirmed:
            return done
        done += confirmed


def automations_step(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """Date-based automations for ``day``, then the events the earlier steps published
    (``points.expiring``, ``tier.will_downgrade``, ``segment.entered`` …) and delayed runs now
    due: the messages they queue go out in the ``messages`` step. Returns runs and events."""
    fired = run_date_triggers(new_uow, programme_id, day)
    with new_uow() as uow:
        tenant_id = load_programme(uow, programme_id).tenant_id
    events = process_events(new_uow, tenant_id=tenant_id)
    return fired + events + run_due(new_uow, tenant_id=tenant_id)


def messages_step(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """Dispatch passes for the programme's tenant until nothing is due: the messages the
    automations just queued are sent (``treu worker`` does the same all day)."""
    with new_uow() as uow:
        tenant_id = load_programme(uow, programme_id).tenant_id
    sent = 0
    while True:
        result = dispatch_messages(new_uow, tenant_id=tenant_id)
        sent += result.sent
        if result.claimed < MESSAGES_PER_PASS:
            return sent


def enrolment_anniversaries(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """The anniversary gift for members who joined on this day (treu.campaigns); once per
    member and year, one transaction per member."""
    with new_uow() as uow:
        due = campaigns.anniversaries_due(uow, programme_id=programme_id, day=day)
    given = 0
    for member_id in due:
        with new_uow() as uow:
            effects = campaigns.award_anniversary(
                uow, programme_id=programme_id, member_id=member_id, day=day
            )
            record_effects(uow, load_programme(uow, programme_id), member_id, None, effects)
            uow.commit()
        given += bool(effects)
    return given


def analytics_store(new_uow: UowFactory, programme_id: str, day: date) -> int:
    """Rewrite the programme's columnar analytics store, last, so it holds what tonight's steps
    changed (readers fall back to the database while it is older than them). Returns the
    activities copied; no store directory configured: nothing (0)."""
    directory = store_directory()
    if directory is None:
        return 0
    with new_uow() as uow:
        return write_store(uow, programme_id=programme_id, directory=directory).rows["activities"]


STEPS: list[tuple[str, Step]] = [
    ("activate_pending", activate_pending),
    ("birthday_bonus", birthday_bonus),
    ("expire_points", expire_points),
    ("expire_vouchers", expire_vouchers_step),
    ("expiry_reminders", expiry_reminders),
    ("reevaluate_tiers", reevaluate_tiers_step),
    ("tier_warnings", tier_warnings),
    ("membership_status", membership_status),
    ("membership_dividends", membership_dividends),
    ("expire_gift_cards", expire_gift_cards_step),
    ("expire_stamp_cards", expire_stamp_cards_step),
    ("enrolment_anniversaries", enrolment_anniversaries),
    ("confirm_referrals", confirm_referrals),
    ("segments", recompute_segments),
    ("automations", automations_step),
    ("messages", messages_step),
    (STORE_STEP, analytics_store),
]


def run_nightly(
    new_uow: UowFactory, *, day: date, programme_id: str | None = None
) -> list[StepResult]:
    """Run the steps for ``day`` for one programme or all of them.

    ``day`` must have begun in the programme's timezone: a run for a day still to come would
    activate and expire points early and then count that day as done. Running all programmes,
    those whose ``day`` has not begun yet (timezones behind) are left for later."""
    with new_uow() as uow:
        query = select(programmes.c.id, programmes.c.tenant_id).order_by(programmes.c.id)
        if programme_id:
            query = query.where(programmes.c.id == programme_id)
        targets = []
        for pid, tenant_id in uow.conn.execute(query).all():
            tz = load_programme(uow, pid).tz
            if start_of_day(day, tz) <= uow.now():
                targets.append((pid, tenant_id))
            elif programme_id:
                raise InvalidInput(
                    ErrorCode.VALIDATION_ERROR,
                    f"{day.isoformat()} has not begun yet in {tz.key}",
                    errors=[{"path": "date", "message": "is in the future"}],
                )
    results = []
    for pid, tenant_id in targets:
        for name, step in STEPS:
            with new_uow() as uow:
                finished = uow.conn.execute(
                    select(job_runs.c.processed).where(
                        job_runs.c.programme_id == pid,
                        job_runs.c.step == name,
                        job_runs.c.run_date == day,
                    )
                ).first()
            if finished:
                results.append(StepResult(pid, name, int(finished.processed), skipped=True))
                continue
            items = step(new_uow, pid, day)
            with new_uow() as uow:
                # Two runs of the same date at once both do the (idempotent) work; the first to
                # finish records it, the other's record is skipped.
                uow.conn.execute(
                    _RECORD_RUN,
                    {
                        "id": new_id("job_run"),
                        "tenant_id": tenant_id,
                        "programme_id": pid,
                        "step": name,
                        "run_date": day,
                        "processed": items,
                        "finished_at": uow.now(),
                    },
                )
                uow.commit()
            results.append(StepResult(pid, name, items, skipped=False))
    return results


_RECORD_RUN = insert_or_skip(
    job_runs,
    ("id", "tenant_id", "programme_id", "step", "run_date", "processed", "finished_at"),
    conflict=("programme_id", "step", "run_date", "tenant_id"),
    returning="id",
)


@contextmanager
def _suppress_limit() -> Iterator[None]:
    """Swallow ``action_limit_reached`` (and only that)."""
    try:
        yield
    except Rejected as exc:
        if exc.code is not ErrorCode.ACTION_LIMIT_REACHED:
            raise


def _has_action_rule(programme: Programme, action_type: str) -> bool:
    return any(
        r.when.activity == "action" and action_type in r.when.action_types
        for r in programme.document.rules
    )


def _earliest(uow: UnitOfWork, day: date, programme: Programme) -> datetime:
    # The job may run before the day starts in the programme's zone (a clock in tests, a
    # scheduler in another zone); the action never lies in the future.
    return min(uow.now(), start_of_day(day, programme.tz))
