"""Date-based triggers, for the nightly run: birthdays, anniversaries, inactivity, statements.

Each is decided on a day in the programme's timezone from the member row alone (birthday,
enrolment, first purchase, last activity), so one read of the programme's active members serves
every date automation. Occasions: the year (birthday, anniversaries), the day the inactive spell
began (inactivity: once per spell), the month (statement) — a second run of the same day, or a
run of a later day in the same year or month, finds the run rows and does nothing again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Row, select

from treu.automations.firing import Firing, consider
from treu.automations.model import (
    AutomationDef,
    TriggerEvent,
    anniversary_on,
    statement_due,
)
from treu.members.model import MemberStatus, birthday_on
from treu.members.tables import members
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.storage.locks import lock_members
from treu.storage.uow import UnitOfWork

BATCH = 500
T = TriggerEvent
M = members.c


def run_date_triggers(new_uow: Callable[[], UnitOfWork], programme_id: str, day: date) -> int:
    """Fire the programme's date-based automations for ``day`` (programme time); one
    transaction per batch of members. Returns how many runs were recorded now."""
    with new_uow() as uow:
        programme = load_programme(uow, programme_id)
        dated = [a for a in programme.document.automations if a.enabled and a.trigger.is_date]
        if not dated:
            return 0
        rows = uow.conn.execute(
            select(M.id, M.birthday, M.enrolled_at, M.first_purchase_at, M.last_activity_at)
            .where(M.programme_id == programme_id, M.status == MemberStatus.ACTIVE.value)
            .order_by(M.id)
        ).all()
    due = [f for automation in dated for f in _due(programme, automation, rows, day)]
    recorded = 0
    for start in range(0, len(due), BATCH):
        batch = due[start : start + BATCH]
        with new_uow() as uow:
            lock_members(uow, *{f.member_id for f in batch})
            recorded += sum(consider(uow, programme, f) is not None for f in batch)
            uow.commit()
    return recorded


def _due(
    programme: Programme, automation: AutomationDef, rows: Sequence[Row[Any]], day: date
) -> Iterator[Firing]:
    trigger = automation.trigger
    year = str(day.year)
    for r in rows:
        match trigger.event:
            case T.BIRTHDAY:
                if r.birthday is not None and birthday_on(r.birthday, day.year) == day:
                    yield Firing(automation, r.id, year)
            case T.ENROLMENT_ANNIVERSARY | T.FIRST_PURCHASE_ANNIVERSARY:
                at = (
                    r.enrolled_at
                    if trigger.event is T.ENROLMENT_ANNIVERSARY
                    else r.first_purchase_at
                )
                since = programme.local_date(at) if at is not None else None
                if since is not None and anniversary_on(since, day):
                    context = {"years": day.year - since.year, "since": since.isoformat()}
                    yield Firing(automation, r.id, year, context)
            case T.INACTIVITY:
                assert trigger.days is not None
                last = programme.local_date(r.last_activity_at or r.enrolled_at)
                if (day - last).days >= trigger.days:
                    context = {"days": (day - last).days, "last_activity_on": last.isoformat()}
                    yield Firing(automation, r.id, last.isoformat(), context)
            case T.STATEMENT:
                if statement_due(trigger.day or 1, day):
                    yield Firing(automation, r.id, f"{day:%Y-%m}", {"month": f"{day:%Y-%m}"})
