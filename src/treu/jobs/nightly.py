"""The nightly run: fixed steps in a fixed order, idempotent per programme and date.

``treu jobs run --date D`` runs, for each programme, the steps below as of the start of day D in
the programme's timezone. Order (later issues plug their steps into the same list):

1. ``activate_pending``   pending points whose time has come become available
2. ``birthday_bonus``     members whose birthday is D get the ``birthday`` action
3. ``expire_points``      lots past their expiry date, and inactive members' points, to breakage
4. ``expire_vouchers``    issued vouchers past their date
5. ``expiry_reminders``   one ``points.expiring`` event per member and expiry date, ahead of time

Each step processes work in batches, one transaction per batch, and is idempotent on its own
(state checks, external ids, dedupe keys): a crash half-way and a re-run do every item once. A
finished step is recorded in ``job_runs`` so a second run of the same date skips it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from treu.activities.model import ActionIn
from treu.activities.service import record_action
from treu.errors import ErrorCode, InvalidInput
from treu.ids import new_id
from treu.jobs.tables import job_runs
from treu.ledger import postings
from treu.ledger.model import add_months, expires_on, start_of_day
from treu.ledger.tables import lots
from treu.members.model import birthday_on
from treu.members.tables import members
from treu.outbox.tables import outbox
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.programmes.tables import programmes
from treu.rewards.service import expire_vouchers
from treu.storage.locks import lock_members
from treu.storage.sql import insert_or_skip
from treu.storage.uow import Event, UnitOfWork

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
        with new_uow() as uow:
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


STEPS: list[tuple[str, Step]] = [
    ("activate_pending", activate_pending),
    ("birthday_bonus", birthday_bonus),
    ("expire_points", expire_points),
    ("expire_vouchers", expire_vouchers_step),
    ("expiry_reminders", expiry_reminders),
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
    conflict=("programme_id", "step", "run_date"),
    returning="id",
)


def _has_action_rule(programme: Programme, action_type: str) -> bool:
    return any(
        r.when.activity == "action" and action_type in r.when.action_types
        for r in programme.document.rules
    )


def _earliest(uow: UnitOfWork, day: date, programme: Programme) -> datetime:
    # The job may run before the day starts in the programme's zone (a clock in tests, a
    # scheduler in another zone); the action never lies in the future.
    return min(uow.now(), start_of_day(day, programme.tz))
