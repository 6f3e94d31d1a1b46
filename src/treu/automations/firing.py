"""Firing an automation for one member and occasion: the building blocks (they never commit).

:func:`consider` decides (not in the audience → ``skipped``; in the control group →
``held_out``; a delay → ``pending`` until ``due_at``; else carry it out at once) and claims the
occasion by inserting the run row with that outcome (``ON CONFLICT DO NOTHING``: only the
transaction that inserted it goes on, so a replayed event or a second processor does nothing);
the action itself (:func:`carry_out`) comes only after the claim.

:func:`carry_out` does the action inside a savepoint: a refusal (out of stock, a message the
member must not get) rolls back only the action and is recorded as ``skipped`` with its
reason; the rest of the batch goes on. Every action is keyed by the occasion
(:func:`occasion_key`): the message dedupe key, the points' idempotency key, the voucher's grant
key — so even a run carried out twice would give once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, update

from treu.automations.model import (
    AutomationDef,
    MessageAction,
    Outcome,
    PointsAction,
    VoucherAction,
    WebhookAction,
    held_out,
)
from treu.automations.tables import automation_runs
from treu.errors import TreuError
from treu.ids import new_id
from treu.ledger import postings
from treu.ledger.model import activates_at, expires_at
from treu.members.model import MemberStatus
from treu.members.tables import members
from treu.messaging.model import MessageChannel, MessageKind, MessageStatus
from treu.messaging.service import enqueue_message
from treu.programmes.model import Programme
from treu.rewards.service import grant_voucher
from treu.segments.service import member_matches
from treu.storage.sql import insert_or_skip
from treu.storage.uow import Event, UnitOfWork

RUNS = automation_runs.c


@dataclass(frozen=True)
class Firing:
    """An automation met its trigger for a member: what :func:`consider` decides about."""

    automation: AutomationDef
    member_id: str
    occasion: str
    context: Mapping[str, Any] = field(default_factory=dict)  # template variables, webhook data
    event_id: str | None = None


@dataclass(frozen=True)
class Done:
    outcome: Outcome
    reason: str | None = None


def occasion_key(automation: str, member_id: str, occasion: str) -> str:
    """The key of one automation's occasion for one member, unique per tenant (member ids are):
    the message dedupe key, the points' idempotency key, the voucher's grant key."""
    key = f"automation:{automation}:{member_id}:{occasion}"
    if len(key) <= 200:
        return key
    return f"automation:{hashlib.sha256(key.encode()).hexdigest()}"


def consider(uow: UnitOfWork, programme: Programme, firing: Firing) -> Outcome | None:
    """Claim ``firing``'s occasion and act on it; None if it was claimed before. The caller
    holds the member's lock."""
    automation, member_id = firing.automation, firing.member_id
    decided: Done | None = None  # decided without acting: recorded as the run's outcome
    if not in_audience(uow, programme, automation, member_id):
        decided = Done(Outcome.SKIPPED, "not_in_audience")
    elif held_out(automation.key, member_id, automation.control_group):
        decided = Done(Outcome.HELD_OUT, f"control group of {automation.control_group}%")
    run_id = _claim(uow, programme, firing, decided)
    if run_id is None:
        return None
    if decided is not None:
        return decided.outcome
    if automation.wait:
        return Outcome.PENDING
    done = carry_out(uow, programme, automation, member_id, firing.occasion, firing.context)
    finish(uow, run_id, done)
    return done.outcome


def _claim(
    uow: UnitOfWork, programme: Programme, firing: Firing, decided: Done | None
) -> str | None:
    """Insert the run row (``pending``, or already ``decided``); None if the occasion was
    claimed before."""
    now, run_id = uow.now(), new_id("automation_run")
    outcome = decided.outcome if decided else Outcome.PENDING
    claimed = uow.conn.execute(
        _INSERT_RUN,
        {
            "id": run_id,
            "tenant_id": programme.tenant_id,
            "programme_id": programme.id,
            "automation": firing.automation.key,
            "member_id": firing.member_id,
            "occasion": firing.occasion,
            "trigger": firing.automation.trigger.event.value,
            "outcome": outcome.value,
            "reason": decided.reason if decided else None,
            "context": dict(firing.context),
            "event_id": firing.event_id,
            "due_at": now + firing.automation.wait,
            "created_at": now,
            "completed_at": now if decided else None,
        },
    ).first()
    return run_id if claimed is not None else None


def finish(uow: UnitOfWork, run_id: str, done: Done) -> None:
    uow.conn.execute(
        _FINISH,
        {
            "run_id": run_id,
            "outcome": done.outcome.value,
            "reason": done.reason,
            "completed_at": uow.now(),
        },
    )


_FINISH = (
    update(automation_runs)
    .where(RUNS.id == bindparam("run_id"))
    .values(
        outcome=bindparam("outcome"),
        reason=bindparam("reason"),
        completed_at=bindparam("completed_at"),
    )
)


def in_audience(
    uow: UnitOfWork, programme: Programme, automation: AutomationDef, member_id: str
) -> bool:
    segment = automation.audience.segment
    return segment is None or member_matches(uow, programme, segment, member_id, at=uow.now())


def carry_out(
    uow: UnitOfWork,
    programme: Programme,
    automation: AutomationDef,
    member_id: str,
    occasion: str,
    context: Mapping[str, Any],
) -> Done:
    """Do the automation's action for the member (in a savepoint: a refusal undoes only it)."""
    status = uow.conn.execute(select(members.c.status).where(members.c.id == member_id)).scalar()
    if status != MemberStatus.ACTIVE.value:
        return Done(Outcome.SKIPPED, "member_inactive")
    key = occasion_key(automation.key, member_id, occasion)
    action = automation.action
    savepoint = uow.conn.begin_nested()
    try:
        match action:
            case MessageAction():
                done = _message(uow, programme, automation, action, member_id, key, context)
            case PointsAction():
                done = _points(uow, programme, automation, action, member_id, key)
            case VoucherAction():
                done = _voucher(uow, programme, automation, action, member_id, key)
            case WebhookAction():
                done = _webhook(uow, programme, automation, action, member_id, occasion, context)
    except TreuError as exc:
        # Refusals come before anything is published (grant_voucher, enqueue_message).
        savepoint.rollback()
        return Done(Outcome.SKIPPED, exc.code.value)
    savepoint.commit()
    return done


def _message(
    uow: UnitOfWork,
    programme: Programme,
    automation: AutomationDef,
    action: MessageAction,
    member_id: str,
    key: str,
    context: Mapping[str, Any],
) -> Done:
    queued = enqueue_message(
        uow,
        programme,
        member_id=member_id,
        template=action.template,
        channel=MessageChannel(action.channel),
        kind=MessageKind(action.kind),
        dedupe_key=key,
        automation=automation.key,
        context=context,
    )
    if queued.status is MessageStatus.SUPPRESSED:
        return Done(Outcome.SKIPPED, queued.reason or "suppressed")
    return Done(Outcome.DONE, f"message {queued.id}")


def _points(
    uow: UnitOfWork,
    programme: Programme,
    automation: AutomationDef,
    action: PointsAction,
    member_id: str,
    key: str,
) -> Done:
    doc, now = programme.document, uow.now()
    reason = action.reason or automation.name
    postings.earn(
        uow,
        programme,
        member_id=member_id,
        amount=action.points,
        key=key,
        at=now,
        activates_at=activates_at(doc.pending, now),
        expires_at=expires_at(doc.expiry, now, programme.tz),
        reason=f"{reason}: {action.points} {doc.point_name}",
    )
    payload = {"member_id": member_id, "points": action.points, "automation": automation.key}
    uow.publish(Event(programme.tenant_id, "points.earned", payload))
    return Done(Outcome.DONE, f"{action.points} {doc.point_name}")


def _voucher(
    uow: UnitOfWork,
    programme: Programme,
    automation: AutomationDef,
    action: VoucherAction,
    member_id: str,
    key: str,
) -> Done:
    voucher, _ = grant_voucher(
        uow,
        programme,
        member_id=member_id,
        reward_key=action.reward,
        grant_key=key,
        reason=automation.name,
    )
    return Done(Outcome.DONE, f"voucher {voucher.code}")


def _webhook(
    uow: UnitOfWork,
    programme: Programme,
    automation: AutomationDef,
    action: WebhookAction,
    member_id: str,
    occasion: str,
    context: Mapping[str, Any],
) -> Done:
    payload = {
        "automation": automation.key,
        "name": automation.name,
        "trigger": automation.trigger.event.value,
        "member_id": member_id,
        "programme_id": programme.id,
        "occasion": occasion,
        "context": dict(context),
        "data": action.data,
    }
    uow.publish(Event(programme.tenant_id, "automation.fired", payload))
    return Done(Outcome.DONE, "automation.fired")


_INSERT_RUN = insert_or_skip(
    automation_runs,
    (
        "id",
        "tenant_id",
        "programme_id",
        "automation",
        "member_id",
        "occasion",
        "trigger",
        "outcome",
        "reason",
        "context",
        "event_id",
        "due_at",
        "created_at",
        "completed_at",
    ),
    conflict=("programme_id", "automation", "member_id", "occasion", "tenant_id"),
    returning="id",
)
