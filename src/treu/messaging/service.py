"""Use cases for messages: queue one (rendered, checked), previews, the message log.

:func:`enqueue_message` is the building block automations and the consent flow call inside
their own unit of work: it never commits. The checks of :mod:`treu.messaging.respect` run here
when a message is queued, and again in :mod:`treu.messaging.delivery` right before it is sent,
so a withdrawal or a bounce between the two still wins. What templates know about a member is
:func:`treu.messaging.personal.personal_context` (also importable from here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Row

from treu.config import get_settings
from treu.errors import ErrorCode, InvalidInput, NotFound
from treu.ids import new_id
from treu.members.model import Channel, Member, MemberStatus
from treu.members.service import get_member
from treu.messaging import tokens
from treu.messaging.catalogue import find_template, templates_of
from treu.messaging.model import (
    Message,
    MessageChannel,
    MessageKind,
    MessageStatus,
    QueuedMessage,
    Reason,
    TemplateDef,
    after_quiet_hours,
    language_of,
)
from treu.messaging.personal import personal_context
from treu.messaging.render import Locality, Rendered, TemplateProblem, render_message
from treu.messaging.respect import (
    Suppression,
    address_of,
    lift_suppression,
    push_tokens,
    report_suppression,
    respect_problem,
    suppress_address,
)
from treu.messaging.tables import messages
from treu.programmes.model import Programme
from treu.programmes.service import tenant_secret
from treu.storage.sql import insert_or_skip
from treu.storage.uow import UnitOfWork

M = messages.c

__all__ = [
    "MessageKind",
    "MessageStatus",
    "QueuedMessage",
    "Suppression",
    "address_of",
    "enqueue_message",
    "lift_suppression",
    "personal_context",
    "push_tokens",
    "report_suppression",
    "respect_problem",
    "suppress_address",
]


# --- queueing --------------------------------------------------------------------------------


def enqueue_message(
    uow: UnitOfWork,
    programme: Programme,
    *,
    member_id: str,
    template: str,
    channel: Channel | MessageChannel | str,
    kind: MessageKind,
    dedupe_key: str,
    automation: str | None = None,
    context: Mapping[str, Any] | None = None,
    not_before: datetime | None = None,
) -> QueuedMessage:
    """Queue ``template`` for a member on ``channel`` (building block: never commits).

    A second call with the same ``dedupe_key`` (per tenant) changes nothing and returns the
    first message with ``created=False``. The message is rendered now, with the member's
    personal content and ``context``; if the member may not get it (consent, address, status,
    suppression, frequency cap) it is stored as ``suppressed`` with the reason, and never sent.
    Marketing SMS and push falling into the programme's quiet hours wait until they are over.
    """
    found = _by_dedupe_key(uow, programme.tenant_id, dedupe_key)
    if found is not None:
        return QueuedMessage(found.id, MessageStatus(found.status), found.reason, created=False)
    chosen = _channel(channel)
    definition = find_template(programme.document.templates, template)
    member = get_member(uow, member_id, tenant_id=programme.tenant_id)
    if member.programme_id != programme.id:
        raise NotFound(ErrorCode.MEMBER_NOT_FOUND, f"no member {member_id}")
    now = uow.now()
    message_id = new_id("message")
    address = address_of(member, chosen)
    reason = respect_problem(uow, programme, member, chosen, kind, address, exclude=None)
    rendered: Rendered | None = None
    language = None
    error = None
    if member.status is MemberStatus.ACTIVE:
        extra = dict(context or {})
        if kind is MessageKind.MARKETING and chosen is MessageChannel.EMAIL:
            link = unsubscribe_url(uow, programme, member.id, chosen, message_id)
            extra.setdefault("unsubscribe_url", link)
        try:
            rendered, language = render_for(uow, programme, member, definition, extra)
        except TemplateProblem as exc:
            error = str(exc)
    status = MessageStatus.QUEUED
    if reason is not None:
        status = MessageStatus.SUPPRESSED
    elif error is not None:
        status, reason = MessageStatus.FAILED, Reason.TEMPLATE_ERROR
    wanted = max(not_before or now, now)
    quiet = programme.document.messaging.quiet_hours
    due = after_quiet_hours(chosen, wanted, quiet, programme.tz, MessageKind(kind))
    row = {
        "id": message_id,
        "tenant_id": programme.tenant_id,
        "programme_id": programme.id,
        "member_id": member.id,
        "channel": chosen.value,
        "template": definition.key,
        "kind": MessageKind(kind).value,
        "automation": automation,
        "dedupe_key": dedupe_key,
        "status": status.value,
        "reason": reason.value if reason is not None else None,
        "locale": language,
        "to_address": address,
        "subject": rendered.subject[:500] if rendered and rendered.subject else None,
        "body_text": _body_text(rendered, chosen),
        "body_html": rendered.html if rendered and chosen is MessageChannel.EMAIL else None,
        "not_before": wanted,
        "attempts": 0,
        "next_attempt_at": due if status is MessageStatus.QUEUED else None,
        "last_error": error[:500] if error else None,
        "created_at": now,
    }
    inserted = uow.conn.execute(_INSERT, row).first()
    if inserted is None:  # a concurrent enqueue with the same key was first
        first = _by_dedupe_key(uow, programme.tenant_id, dedupe_key)
        assert first is not None
        return QueuedMessage(first.id, MessageStatus(first.status), first.reason, created=False)
    return QueuedMessage(message_id, status, reason.value if reason else None, created=True)


_COLUMNS = (
    "id",
    "tenant_id",
    "programme_id",
    "member_id",
    "channel",
    "template",
    "kind",
    "automation",
    "dedupe_key",
    "status",
    "reason",
    "locale",
    "to_address",
    "subject",
    "body_text",
    "body_html",
    "not_before",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
)
_INSERT = insert_or_skip(messages, _COLUMNS, conflict=("tenant_id", "dedupe_key"), returning="id")


def _body_text(rendered: Rendered | None, channel: MessageChannel) -> str:
    if rendered is None:
        return ""
    return (
        rendered.text
        if channel in (MessageChannel.EMAIL, MessageChannel.WEBHOOK)
        else (rendered.short)
    )


def _channel(channel: Channel | MessageChannel | str) -> MessageChannel:
    try:
        return MessageChannel(str(channel))
    except ValueError:
        known = ", ".join(c.value for c in MessageChannel)
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"messages go by {known}, not {channel!s}",
            errors=[{"path": "channel", "message": f"one of {known}"}],
        ) from None


def _by_dedupe_key(uow: UnitOfWork, tenant_id: str, key: str) -> Row[Any] | None:
    return uow.conn.execute(
        select(M.id, M.status, M.reason).where(M.tenant_id == tenant_id, M.dedupe_key == key)
    ).first()


# --- rendering -------------------------------------------------------------------------------


def render_for(
    uow: UnitOfWork,
    programme: Programme,
    member: Member,
    definition: TemplateDef,
    extra: Mapping[str, Any] | None = None,
) -> tuple[Rendered, str]:
    """The template rendered for the member (their language, their personal content plus
    ``extra``), and the language it was rendered in."""
    language = language_of(member.locale, programme.document.locale, definition.languages())
    context = {**personal_context(uow, programme, member.id), **(extra or {})}
    where = Locality(
        _format_locale(member.locale or programme.document.locale, language),
        programme.currency,
        programme.document.timezone,
    )
    return render_message(definition.parts(), language, context, where), language


def _format_locale(locale: str, language: str) -> str:
    """Numbers and dates as the member writes them (de-AT, en-GB) when the text is in their
    language; in the text's language otherwise (no French dates in an English e-mail)."""
    same = locale.replace("_", "-").split("-", 1)[0].lower() == language.split("-", 1)[0].lower()
    return locale if same else language


def unsubscribe_url(
    uow: UnitOfWork,
    programme: Programme,
    member_id: str,
    channel: MessageChannel,
    message_id: str,
) -> str:
    """The unsubscribe link of one message (the same in its text and its headers)."""
    token = link_token(
        uow, programme.tenant_id, tokens.UNSUBSCRIBE, member_id, channel.value, subject=message_id
    )
    return f"{public_url()}/v1/unsubscribe/{token}"


def link_token(
    uow: UnitOfWork,
    tenant_id: str,
    purpose: str,
    member_id: str,
    channel: str,
    *,
    subject: str | None,
) -> str:
    key = tokens.key_for(tenant_secret(uow, tenant_id), get_settings().token_secret, purpose)
    ttl = tokens.CONFIRM_TTL if purpose == tokens.CONFIRM else None
    return tokens.encode_link(
        key,
        purpose=purpose,
        tenant_id=tenant_id,
        member_id=member_id,
        channel=channel,
        subject=subject,
        now=uow.now(),
        ttl=ttl,
    )


def public_url() -> str:
    return get_settings().public_url.rstrip("/")


@dataclass(frozen=True)
class Preview:
    template: str
    language: str
    rendered: Rendered
    context: dict[str, Any]


def preview_template(
    uow: UnitOfWork,
    programme: Programme,
    *,
    member_id: str,
    template: str | None = None,
    definition: TemplateDef | None = None,
    context: Mapping[str, Any] | None = None,
    kind: MessageKind = MessageKind.MARKETING,
) -> Preview:
    """Render a template (by key, or one given whole) for a member, without queueing it (a
    marketing e-mail with its unsubscribe link); a template that does not render is
    ``template_error`` with the reason."""
    if definition is None:
        if template is None:
            raise InvalidInput(
                ErrorCode.VALIDATION_ERROR,
                "name a template or give one",
                errors=[{"path": "template", "message": "required"}],
            )
        definition = find_template(programme.document.templates, template)
    member = get_member(uow, member_id, tenant_id=programme.tenant_id)
    extra = dict(context or {})
    if kind is MessageKind.MARKETING:
        extra.setdefault("unsubscribe_url", f"{public_url()}/v1/unsubscribe/PREVIEW")
    try:
        rendered, language = render_for(uow, programme, member, definition, extra)
    except TemplateProblem as exc:
        raise InvalidInput(
            ErrorCode.TEMPLATE_ERROR,
            f"template {definition.key!r} does not render: {exc}",
            errors=[{"path": str(exc).split(":", 1)[0], "message": str(exc)}],
        ) from None
    shown = {**personal_context(uow, programme, member.id), **extra}
    return Preview(definition.key, language, rendered, shown)


def list_templates(programme: Programme) -> list[tuple[TemplateDef, bool]]:
    """Every template the programme can send and whether it is the programme's own."""
    own = {t.key for t in programme.document.templates}
    return [(t, t.key in own) for t in templates_of(programme.document.templates).values()]


# --- the message log -------------------------------------------------------------------------


def list_messages(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    member_id: str,
    starting_after: str | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> list[Message]:
    """The member's messages, oldest first (``limit`` after the cursor), or newest first
    (``limit`` before it: the console shows the latest few)."""
    get_member(uow, member_id, tenant_id=tenant_id)
    query = (
        select(messages)
        .where(M.tenant_id == tenant_id, M.member_id == member_id)
        .order_by(M.id.desc() if newest_first else M.id)
        .limit(limit)
    )
    if starting_after is not None:
        query = query.where(M.id < starting_after if newest_first else M.id > starting_after)
    return [message_of(r) for r in uow.conn.execute(query)]


def get_message(uow: UnitOfWork, *, tenant_id: str, message_id: str) -> Message:
    row = uow.conn.execute(
        select(messages).where(M.id == message_id, M.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound(ErrorCode.NOT_FOUND, f"no message {message_id}")
    return message_of(row)


def forget_messages(uow: UnitOfWork, member_id: str) -> None:
    """Erasure (GDPR art. 17): the member's messages keep their facts (template, channel,
    status, times) and lose what identifies or concerns the person — address, subject, text;
    those still waiting never go (building block: never commits)."""
    uow.conn.execute(
        update(messages)
        .where(
            M.member_id == member_id,
            M.status.in_([MessageStatus.QUEUED.value, MessageStatus.SENDING.value]),
        )
        .values(
            status=MessageStatus.SUPPRESSED.value,
            reason=Reason.MEMBER_INACTIVE.value,
            next_attempt_at=None,
        )
    )
    uow.conn.execute(
        update(messages)
        .where(M.member_id == member_id)
        .values(to_address=None, subject=None, body_text="", body_html=None, last_error=None)
    )


def message_of(r: Row[Any]) -> Message:
    return Message(
        id=r.id,
        member_id=r.member_id,
        programme_id=r.programme_id,
        channel=MessageChannel(r.channel),
        template=r.template,
        kind=MessageKind(r.kind),
        automation=r.automation,
        dedupe_key=r.dedupe_key,
        status=MessageStatus(r.status),
        reason=r.reason,
        locale=r.locale,
        to_address=r.to_address,
        subject=r.subject,
        body_text=r.body_text,
        body_html=r.body_html,
        not_before=r.not_before,
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        last_error=r.last_error,
        sent_at=r.sent_at,
        created_at=r.created_at,
    )
