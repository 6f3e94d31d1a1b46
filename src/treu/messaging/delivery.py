"""The dispatcher's steps, one transaction each: claim a due message (checking again that the
member may get it), record what sending it came to.

Claiming moves the message to ``sending`` with ``next_attempt_at`` one lease ahead: a
dispatcher that dies before recording the outcome leaves it to be claimed again once the lease
is over — at least once. The outcome is recorded right after the server or provider accepted
the message, so the window in which a crash sends a message twice is that of one statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Row

from treu.config import get_settings
from treu.members.service import get_member
from treu.messaging.channels import Outgoing, SendResult
from treu.messaging.model import (
    MAX_ATTEMPTS,
    MessageChannel,
    MessageKind,
    MessageStatus,
    Reason,
    SuppressionReason,
    after_quiet_hours,
    retry_delay,
)
from treu.messaging.service import (
    address_of,
    push_tokens,
    respect_problem,
    suppress_address,
    unsubscribe_url,
)
from treu.messaging.tables import messages
from treu.programmes.service import load_programme
from treu.storage.uow import Event, UnitOfWork

M = messages.c
REQUESTED_EVENT = "message.requested"


@dataclass(frozen=True)
class Claimed:
    """A message taken for one attempt. ``outgoing`` is None when the claim settled it
    already (suppressed on the second check, handed to webhooks, given up)."""

    message_id: str
    tenant_id: str
    channel: MessageChannel
    attempt: int
    status: MessageStatus
    reason: str | None
    outgoing: Outgoing | None


def claim_due_message(
    uow: UnitOfWork, *, lease: timedelta, tenant_id: str | None = None
) -> Claimed | None:
    """Take the message that has waited longest, if one is due (commits)."""
    now = uow.now()
    for _ in range(5):  # another dispatcher may take the row between the read and the update
        row = _next_due(uow, now, tenant_id)
        if row is None:
            uow.commit()
            return None
        attempt = row.attempts + 1
        taken = uow.conn.execute(
            update(messages)
            .where(
                M.id == row.id,
                M.status == row.status,
                M.attempts == row.attempts,
                M.next_attempt_at <= now,
            )
            .values(
                status=MessageStatus.SENDING.value, attempts=attempt, next_attempt_at=now + lease
            )
        )
        if taken.rowcount == 1:
            claimed = _settle_or_prepare(uow, row, attempt, now)
            uow.commit()
            return claimed
    uow.commit()
    return None


def _next_due(uow: UnitOfWork, now: datetime, tenant_id: str | None) -> Row[Any] | None:
    query = (
        select(messages)
        .where(
            M.status.in_([MessageStatus.QUEUED.value, MessageStatus.SENDING.value]),
            M.next_attempt_at <= now,
        )
        .order_by(M.next_attempt_at, M.id)
        .limit(1)
        # PostgreSQL: parallel dispatchers take different rows instead of queueing for one
        # (SQLite: BEGIN IMMEDIATE already lets one writer in at a time).
        .with_for_update(skip_locked=True)
    )
    if tenant_id is not None:
        query = query.where(M.tenant_id == tenant_id)
    return uow.conn.execute(query).first()


def _settle_or_prepare(uow: UnitOfWork, row: Row[Any], attempt: int, now: datetime) -> Claimed:
    channel = MessageChannel(row.channel)

    def settled(status: MessageStatus, reason: str | None, error: str | None = None) -> Claimed:
        uow.conn.execute(
            update(messages)
            .where(M.id == row.id)
            .values(
                status=status.value,
                reason=reason,
                next_attempt_at=None,
                last_error=error,
                **({"sent_at": now} if status is MessageStatus.SENT else {}),
            )
        )
        return Claimed(row.id, row.tenant_id, channel, attempt, status, reason, None)

    if attempt > MAX_ATTEMPTS:  # its last attempt's dispatcher died: never more than N tries
        return settled(MessageStatus.FAILED, None, row.last_error or "gave up")
    programme = load_programme(uow, row.programme_id)
    member = get_member(uow, row.member_id, tenant_id=row.tenant_id)
    kind = MessageKind(row.kind)
    quiet = programme.document.messaging.quiet_hours
    later = after_quiet_hours(channel, now, quiet, programme.tz, kind)
    if later > now:  # a retry or a delay that ran into the quiet hours: wait for their end
        uow.conn.execute(
            update(messages)
            .where(M.id == row.id)
            .values(status=MessageStatus.QUEUED.value, attempts=attempt - 1, next_attempt_at=later)
        )
        return Claimed(row.id, row.tenant_id, channel, attempt, MessageStatus.QUEUED, None, None)
    address = address_of(member, channel)
    problem = respect_problem(
        uow, programme, member, channel, kind, address, exclude=row.id, sending=True
    )
    if problem is not None:
        return settled(MessageStatus.SUPPRESSED, problem.value)
    if channel is MessageChannel.WEBHOOK:
        uow.publish(Event(row.tenant_id, REQUESTED_EVENT, _requested(row, member.identifiers)))
        return settled(MessageStatus.SENT, None)
    assert address is not None  # respect_problem refuses a message without an address
    settings = programme.document.messaging
    headers: dict[str, str] = {}
    if channel is MessageChannel.EMAIL and kind is MessageKind.MARKETING:
        targets = [f"<{unsubscribe_url(uow, programme, member.id, channel, row.id)}>"]
        if settings.unsubscribe_mailto:
            targets.append(f"<mailto:{settings.unsubscribe_mailto}?subject=unsubscribe>")
        headers["List-Unsubscribe"] = ", ".join(targets)
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    outgoing = Outgoing(
        message_id=row.id,
        tenant_id=row.tenant_id,
        channel=channel,
        to=address,
        subject=row.subject,
        text=row.body_text,
        html=row.body_html,
        at=now,
        from_email=settings.from_email or get_settings().smtp_from,
        from_name=settings.from_name or programme.document.name,
        reply_to=settings.reply_to,
        sender=settings.sms_sender,
        devices=tuple(push_tokens(member)) if channel is MessageChannel.PUSH else (),
        headers=headers,
    )
    return Claimed(row.id, row.tenant_id, channel, attempt, MessageStatus.SENDING, None, outgoing)


def _requested(row: Row[Any], identifiers: dict[str, str]) -> dict[str, Any]:
    """The ``message.requested`` event: the rendered message for the tenant's own systems."""
    return {
        "message_id": row.id,
        "member_id": row.member_id,
        "programme_id": row.programme_id,
        "template": row.template,
        "kind": row.kind,
        "automation": row.automation,
        "locale": row.locale,
        "subject": row.subject,
        "text": row.body_text,
        "html": row.body_html,
        "email": identifiers.get("email"),
        "phone": identifiers.get("phone"),
    }


def record_send(uow: UnitOfWork, *, claimed: Claimed, result: SendResult) -> MessageStatus:
    """What the attempt came to: sent, tried again later, or given up (a bounce also stops
    everything to the address). Guarded by the attempt number: if the lease ran out and
    another dispatcher took the message, this attempt only loses."""
    now = uow.now()
    reason: str | None = None
    next_at: datetime | None = None
    if result.sent:
        status = MessageStatus.SENT
    elif result.bounced:
        status, reason = MessageStatus.FAILED, Reason.BOUNCED.value
    elif result.permanent or claimed.attempt >= MAX_ATTEMPTS:
        status = MessageStatus.FAILED
    else:
        status, next_at = MessageStatus.QUEUED, now + retry_delay(claimed.attempt)
    changed = uow.conn.execute(
        update(messages)
        .where(
            M.id == claimed.message_id,
            M.status == MessageStatus.SENDING.value,
            M.attempts == claimed.attempt,
        )
        .values(
            status=status.value,
            reason=reason,
            next_attempt_at=next_at,
            last_error=result.error[:500] if result.error else None,
            **({"sent_at": now, "provider_id": result.provider_id} if result.sent else {}),
        )
    )
    if result.bounced and claimed.outgoing is not None and changed.rowcount == 1:
        suppress_address(
            uow,
            tenant_id=claimed.tenant_id,
            channel=claimed.channel,
            address=claimed.outgoing.to,
            reason=SuppressionReason.BOUNCED,
            detail=result.error,
        )
    uow.commit()
    return status
