"""Automations: processing the outbox, delayed runs, the run log, events sent by the shop.

:func:`process_events` is the outbox consumer. It reads events not yet automated
(``outbox.automated_at IS NULL``) in id order, a batch per transaction — on PostgreSQL claimed
with ``FOR UPDATE SKIP LOCKED``, so two workers never take the same event; SQLite's
``BEGIN IMMEDIATE`` lets one writer in at a time — fires the automations each event meets
(:mod:`treu.automations.events`, :mod:`treu.automations.firing`) and marks the events processed
in the same transaction. A worker killed half-way leaves the batch unprocessed and unmarked;
the next pass does it whole. Besides the programme's automations one built-in one always runs:
``member.login_code`` → the ``login_code`` message (transactional).

:func:`run_due` carries out delayed runs whose time has come. Date-based triggers are in
:mod:`treu.automations.dates` (the nightly run).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from treu.auth.tokens import LOGIN_CODE_TTL
from treu.automations.events import OutboxEvent, firings
from treu.automations.firing import Done, carry_out, consider, finish, in_audience
from treu.automations.model import SOURCE_EVENT, AutomationDef, Outcome, TriggerEvent
from treu.automations.tables import automation_runs
from treu.errors import ErrorCode, NotFound, TreuError
from treu.ids import new_id
from treu.members.tables import members
from treu.messaging.model import MessageChannel, MessageKind
from treu.messaging.service import enqueue_message
from treu.outbox.tables import outbox
from treu.programmes.model import Programme
from treu.programmes.service import load_programme
from treu.storage.locks import lock_members
from treu.storage.sql import insert_or_skip
from treu.storage.uow import UnitOfWork

log = logging.getLogger("treu.automations")

BATCH = 500
LOGIN_CODE_EVENT = "member.login_code"  # treu.auth.member_login publishes it
OUT = outbox.c
RUNS = automation_runs.c
UowFactory = Callable[[], UnitOfWork]


# --- the outbox consumer ----------------------------------------------------------------------


def process_events(new_uow: UowFactory, *, limit: int = BATCH, tenant_id: str | None = None) -> int:
    """Fire the automations of every event not processed yet, ``limit`` events per
    transaction; returns how many events were processed."""
    done = 0
    while True:
        with new_uow() as uow:
            count = _process_batch(uow, limit=limit, tenant_id=tenant_id)
        done += count
        if count < limit:
            return done


def _process_batch(uow: UnitOfWork, *, limit: int, tenant_id: str | None) -> int:
    query = (
        select(OUT.id, OUT.tenant_id, OUT.type, OUT.payload, OUT.created_at)
        .where(OUT.automated_at.is_(None))
        .order_by(OUT.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if tenant_id is not None:
        query = query.where(OUT.tenant_id == tenant_id)
    events = [OutboxEvent(*row) for row in uow.conn.execute(query)]
    if not events:
        return 0
    programmes = _Programmes(uow)
    owners = _owners(uow, events)
    about = [(owners[e.member_id], e) for e in events if e.member_id in owners]
    work = [(programmes.get(pid), e) for pid, e in about]
    work = [(p, e) for p, e in work if e.type == LOGIN_CODE_EVENT or e.type in _listened(p)]
    lock_members(uow, *{e.member_id for _, e in work if e.member_id})
    for programme, event in work:
        if event.type == LOGIN_CODE_EVENT:
            _send_login_code(uow, programme, event)
            continue
        for firing in firings(uow, programme, event):
            consider(uow, programme, firing)
    uow.conn.execute(
        update(outbox).where(OUT.id.in_([e.id for e in events])).values(automated_at=uow.now())
    )
    uow.commit()
    return len(events)


def _listened(programme: Programme) -> set[str]:
    """The outbox event types the programme's enabled automations listen to."""
    return {
        SOURCE_EVENT[a.trigger.event]
        for a in programme.document.automations
        if a.enabled and a.trigger.event in SOURCE_EVENT
    }


def _owners(uow: UnitOfWork, events: list[OutboxEvent]) -> dict[str, str]:
    """Member id → programme id, for the members the events are about."""
    wanted = list({e.member_id for e in events if e.member_id})
    if not wanted:
        return {}
    rows = uow.conn.execute(
        select(members.c.id, members.c.programme_id).where(members.c.id.in_(wanted))
    )
    return {member_id: programme_id for member_id, programme_id in rows}


class _Programmes:
    """Each programme loaded once per batch."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.loaded: dict[str, Programme] = {}

    def get(self, programme_id: str) -> Programme:
        if programme_id not in self.loaded:
            self.loaded[programme_id] = load_programme(self.uow, programme_id)
        return self.loaded[programme_id]


def _send_login_code(uow: UnitOfWork, programme: Programme, event: OutboxEvent) -> None:
    """The built-in automation: a login code goes to the address it was asked for, always
    (transactional: no marketing consent needed), once per code — unless it has expired
    meanwhile (a worker that was down): the member asks for a new one."""
    p = event.payload
    expires = datetime.fromisoformat(str(p["expires_at"]))
    if expires <= uow.now():
        return
    phone = str(p["identifier"]).startswith("phone:")
    try:
        enqueue_message(
            uow,
            programme,
            member_id=str(p["member_id"]),
            template="login_code",
            channel=MessageChannel.SMS if phone else MessageChannel.EMAIL,
            kind=MessageKind.TRANSACTIONAL,
            dedupe_key=f"login_code:{event.id}",
            context={"code": p["code"], "minutes": LOGIN_CODE_TTL // timedelta(minutes=1)},
        )
    except TreuError as exc:  # never hold up the other events for one code
        log.warning("login code %s not queued: %s", event.id, exc)


# --- delayed runs ------------------------------------------------------------------------------


def run_due(new_uow: UowFactory, *, limit: int = BATCH, tenant_id: str | None = None) -> int:
    """Carry out the delayed runs whose ``due_at`` has come, ``limit`` per transaction, with
    the automation as the programme defines it now (removed or switched off: skipped)."""
    done = 0
    while True:
        with new_uow() as uow:
            query = (
                select(automation_runs)
                .where(RUNS.outcome == Outcome.PENDING.value, RUNS.due_at <= uow.now())
                .order_by(RUNS.due_at, RUNS.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            if tenant_id is not None:
                query = query.where(RUNS.tenant_id == tenant_id)
            runs = uow.conn.execute(query).all()
            lock_members(uow, *{r.member_id for r in runs})
            programmes = _Programmes(uow)
            for run in runs:
                programme = programmes.get(run.programme_id)
                finish(uow, run.id, _carry_out_due(uow, programme, run))
            uow.commit()
        done += len(runs)
        if len(runs) < limit:
            return done


def _carry_out_due(uow: UnitOfWork, programme: Programme, run: Any) -> Done:
    automation = _automation(programme, run.automation)
    if automation is None:
        return Done(Outcome.SKIPPED, "automation_removed")
    if not automation.enabled:
        return Done(Outcome.SKIPPED, "automation_disabled")
    if not in_audience(uow, programme, automation, run.member_id):
        return Done(Outcome.SKIPPED, "not_in_audience")
    return carry_out(uow, programme, automation, run.member_id, run.occasion, dict(run.context))


def _automation(programme: Programme, key: str) -> AutomationDef | None:
    return next((a for a in programme.document.automations if a.key == key), None)


# --- the run log -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    id: str
    automation: str
    member_id: str
    occasion: str
    trigger: str
    outcome: Outcome
    reason: str | None
    event_id: str | None
    due_at: datetime
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True)
class AutomationSummary:
    definition: AutomationDef
    runs: dict[Outcome, int]  # every outcome, 0 if none


def get_automation(programme: Programme, key: str) -> AutomationDef:
    found = _automation(programme, key)
    if found is None:
        raise NotFound(ErrorCode.AUTOMATION_NOT_FOUND, f"no automation {key!r} in this programme")
    return found


def list_runs(
    uow: UnitOfWork,
    programme: Programme,
    *,
    automation: str | None = None,
    outcome: Outcome | None = None,
    member_id: str | None = None,
    starting_after: str | None = None,
    limit: int = 100,
) -> list[Run]:
    """The programme's runs in id (creation) order, optionally of one automation, outcome or
    member; ``starting_after``: a run id (cursor)."""
    query = select(automation_runs).where(RUNS.programme_id == programme.id)
    for column, value in (
        (RUNS.automation, automation),
        (RUNS.outcome, outcome.value if outcome else None),
        (RUNS.member_id, member_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if starting_after is not None:
        query = query.where(RUNS.id > starting_after)
    rows = uow.conn.execute(query.order_by(RUNS.id).limit(limit))
    return [
        Run(
            r.id,
            r.automation,
            r.member_id,
            r.occasion,
            r.trigger,
            Outcome(r.outcome),
            r.reason,
            r.event_id,
            r.due_at,
            r.created_at,
            r.completed_at,
        )
        for r in rows
    ]


def automation_summaries(uow: UnitOfWork, programme: Programme) -> list[AutomationSummary]:
    """Every automation of the programme with its number of runs per outcome."""
    counted = Counter[tuple[str, str]]()
    rows = uow.conn.execute(
        select(RUNS.automation, RUNS.outcome, func.count())
        .where(RUNS.programme_id == programme.id)
        .group_by(RUNS.automation, RUNS.outcome)
    )
    for key, outcome, count in rows:
        counted[(key, outcome)] = int(count)
    return [
        AutomationSummary(a, {o: counted[(a.key, o.value)] for o in Outcome})
        for a in programme.document.automations
    ]


# --- events the shop sends ---------------------------------------------------------------------


@dataclass(frozen=True)
class ShopEvent:
    event_id: str  # the outbox event's id
    type: str
    id: str  # the shop's id
    created: bool  # False: this id was sent before; nothing new was stored


def record_shop_event(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    programme_id: str,
    member_id: str,
    type: TriggerEvent,
    id: str,
    data: dict[str, Any],
) -> ShopEvent:
    """Store an event the shop sent about a member (an abandoned cart, a recurring need, a new
    product of a favourite brand) as an outbox event for automations; idempotent by the shop's
    ``id`` per member and type."""
    dedupe = f"shop:{member_id}:{type.value}:{id}"
    payload = {"member_id": member_id, "programme_id": programme_id, "id": id, "data": data}
    event_id = new_id("event")
    inserted = uow.conn.execute(
        _INSERT_EVENT,
        {
            "id": event_id,
            "tenant_id": tenant_id,
            "type": type.value,
            "payload": payload,
            "dedupe_key": dedupe,
            "created_at": uow.now(),
        },
    ).first()
    if inserted is None:
        event_id = uow.conn.execute(
            select(OUT.id).where(OUT.tenant_id == tenant_id, OUT.dedupe_key == dedupe)
        ).scalar_one()
    uow.commit()
    return ShopEvent(event_id, type.value, id, inserted is not None)


_INSERT_EVENT = insert_or_skip(
    outbox,
    ("id", "tenant_id", "type", "payload", "dedupe_key", "created_at"),
    conflict=("tenant_id", "dedupe_key"),
    returning="id",
)
