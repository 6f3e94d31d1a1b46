"""Who may get what: the address of a member on a channel, the consent and respect checks run
when a message is queued and again before it is sent, and suppressed addresses (bounces,
complaints, unsubscriptions at the provider)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update

from treu.errors import ErrorCode, InvalidInput
from treu.ids import new_id
from treu.members.model import Member, MemberStatus
from treu.members.service import latest_consents
from treu.messaging.model import (
    CAP_WINDOW,
    Consent,
    MessageChannel,
    MessageKind,
    MessageStatus,
    Reason,
    SuppressionReason,
    consent_problem,
    over_cap,
    suppression_problem,
)
from treu.messaging.tables import message_suppressions, messages
from treu.programmes.model import Programme
from treu.storage.sql import insert_or_skip
from treu.storage.uow import UnitOfWork

M = messages.c
S = message_suppressions.c


def address_of(member: Member, channel: MessageChannel) -> str | None:
    """Where a message to the member goes: their e-mail address, phone number, or (push) the
    first of their device tokens (``attributes.push_tokens``; all of them get the push)."""
    if channel is MessageChannel.EMAIL:
        return member.identifiers.get("email")
    if channel is MessageChannel.SMS:
        return member.identifiers.get("phone")
    if channel is MessageChannel.PUSH:
        devices = push_tokens(member)
        return devices[0][:320] if devices else None
    return None


def push_tokens(member: Member) -> list[str]:
    found = member.attributes.get("push_tokens")
    if isinstance(found, str):
        found = [found]
    if not isinstance(found, list):
        single = member.attributes.get("push_token")
        found = [single] if isinstance(single, str) else []
    return [t for t in found if isinstance(t, str) and t]


def respect_problem(
    uow: UnitOfWork,
    programme: Programme,
    member: Member,
    channel: MessageChannel,
    kind: MessageKind,
    address: str | None,
    *,
    exclude: str | None,
    sending: bool = False,
) -> Reason | None:
    """Why the member may not get this message now (None: they may). ``exclude``: the message
    itself, when it is checked again before sending."""
    if member.status is not MemberStatus.ACTIVE:
        return Reason.MEMBER_INACTIVE
    if channel is not MessageChannel.WEBHOOK and address is None:
        return Reason.NO_ADDRESS
    if address is not None:
        suppressed = suppression_of(uow, programme.tenant_id, channel, address)
        problem = suppression_problem(kind, suppressed)
        if problem is not None:
            return problem
    settings = programme.document.messaging
    consent = _consent(uow, member.id, channel)
    problem = consent_problem(kind, channel, consent, double_opt_in=settings.double_opt_in)
    if problem is not None:
        return problem
    cap = settings.frequency_caps.of(channel)
    if kind is MessageKind.MARKETING and cap is not None:
        counted = count_marketing(uow, member.id, channel, uow.now(), exclude, sent_only=sending)
        if over_cap(kind, cap, counted):
            return Reason.FREQUENCY_CAP
    return None


def _consent(uow: UnitOfWork, member_id: str, channel: MessageChannel) -> Consent | None:
    record = latest_consents(uow, member_id).get(channel.value)
    if record is None:
        return None
    confirmed = bool(record.evidence and record.evidence.get("confirmed_at"))
    return Consent(record.granted, confirmed)


def count_marketing(
    uow: UnitOfWork,
    member_id: str,
    channel: MessageChannel,
    now: datetime,
    exclude: str | None,
    *,
    sent_only: bool = False,
) -> int:
    """The member's marketing messages on ``channel`` that count against the cap: sent in the
    last 7 days, and (unless ``sent_only``) those still waiting to go."""
    recent = and_(M.status == MessageStatus.SENT.value, M.sent_at > now - CAP_WINDOW)
    waiting = M.status.in_([MessageStatus.QUEUED.value, MessageStatus.SENDING.value])
    query = select(func.count()).where(
        M.member_id == member_id,
        M.channel == channel.value,
        M.kind == MessageKind.MARKETING.value,
        recent if sent_only else or_(recent, waiting),
    )
    if exclude is not None:
        query = query.where(M.id != exclude)
    return int(uow.conn.execute(query).scalar_one())


def suppression_of(
    uow: UnitOfWork, tenant_id: str, channel: MessageChannel, address: str
) -> SuppressionReason | None:
    found = uow.conn.execute(
        select(S.reason).where(
            S.tenant_id == tenant_id, S.channel == channel.value, S.address == address.lower()
        )
    ).scalar()
    return SuppressionReason(found) if found is not None else None


# --- suppressions (bounces, complaints) ------------------------------------------------------


@dataclass(frozen=True)
class Suppression:
    channel: str
    address: str
    reason: SuppressionReason
    detail: str | None
    created_at: datetime


def suppress_address(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    channel: MessageChannel,
    address: str,
    reason: SuppressionReason,
    detail: str | None = None,
) -> Suppression:
    """Stop sending to ``address`` (building block: never commits). A bounce outranks a
    complaint or an unsubscription already recorded; anything else keeps the first reason."""
    normal = address.strip().lower()
    now = uow.now()
    uow.conn.execute(
        _INSERT_SUPPRESSION,
        {
            "id": new_id("suppression"),
            "tenant_id": tenant_id,
            "channel": channel.value,
            "address": normal,
            "reason": reason.value,
            "detail": detail[:500] if detail else None,
            "created_at": now,
        },
    )
    if reason is SuppressionReason.BOUNCED:
        uow.conn.execute(
            update(message_suppressions)
            .where(S.tenant_id == tenant_id, S.channel == channel.value, S.address == normal)
            .values(reason=reason.value, detail=detail[:500] if detail else None)
        )
    row = uow.conn.execute(
        select(message_suppressions).where(
            S.tenant_id == tenant_id, S.channel == channel.value, S.address == normal
        )
    ).one()
    return Suppression(
        row.channel, row.address, SuppressionReason(row.reason), row.detail, row.created_at
    )


_INSERT_SUPPRESSION = insert_or_skip(
    message_suppressions,
    ("id", "tenant_id", "channel", "address", "reason", "detail", "created_at"),
    conflict=("tenant_id", "channel", "address"),
    returning="id",
)


def report_suppression(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    channel: MessageChannel,
    address: str,
    reason: SuppressionReason,
    detail: str | None = None,
) -> Suppression:
    """The mail provider reports a bounce, complaint or unsubscription (use case: commits)."""
    if not address.strip():
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "an address is needed",
            errors=[{"path": "address", "message": "empty"}],
        )
    found = suppress_address(
        uow, tenant_id=tenant_id, channel=channel, address=address, reason=reason, detail=detail
    )
    uow.commit()
    return found


def lift_suppression(
    uow: UnitOfWork, *, tenant_id: str, channel: MessageChannel, address: str, reasons: list[str]
) -> None:
    """A fresh, confirmed opt-in lifts an earlier unsubscription or complaint (building
    block)."""
    uow.conn.execute(
        message_suppressions.delete().where(
            S.tenant_id == tenant_id,
            S.channel == channel.value,
            S.address == address.lower(),
            S.reason.in_(reasons),
        )
    )
