"""What the console's member page shows beyond the member's own card (``portal_views``): the
tier history and the message log, read through the tiers and messaging services and said in
the page's language.

The words for a tier change's reason and a message's status and reason are here, keyed by the
services' stable codes; a code without a word (a newer one) is shown as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from treu.members.model import Member
from treu.messaging.service import list_messages
from treu.programmes.model import Programme
from treu.storage.uow import UnitOfWork
from treu.tiers.service import tier_history_of
from treu.web.i18n import Formats

MESSAGES_SHOWN = 20


def _(message: str) -> str:
    """Marks a string for the catalogue; it is translated where it is shown."""
    return message


TIER_REASONS = {
    "upgrade": _("upgrade"),
    "downgrade": _("downgrade"),
    "override": _("set by hand"),
}

MESSAGE_STATUSES = {
    "queued": _("queued"),
    "sending": _("sending"),
    "sent": _("sent"),
    "failed": _("failed"),
    "suppressed": _("not sent"),
}

MESSAGE_REASONS = {
    "no_consent": _("no consent"),
    "unconfirmed": _("consent not confirmed yet"),
    "frequency_cap": _("too many messages lately"),
    "bounced": _("address bounced"),
    "complained": _("marked as spam"),
    "unsubscribed": _("unsubscribed"),
    "no_address": _("no address"),
    "member_inactive": _("member blocked, deleted or merged"),
    "template_error": _("the template did not work for this member"),
}


@dataclass(frozen=True)
class TierLine:
    when: datetime
    from_name: str | None  # None: the member's first tier
    to_name: str
    reason: str
    explanation: str


@dataclass(frozen=True)
class MessageLine:
    when: datetime  # when it went, or when it was queued
    channel: str
    template: str
    subject: str | None
    status: str  # the code: the page styles by it
    status_text: str
    reason: str | None


def tier_lines(
    uow: UnitOfWork, programme: Programme, member: Member, fmt: Formats
) -> list[TierLine] | None:
    """Every tier change of the member, newest first; None if the programme has no tiers."""
    settings = programme.document.tiers
    if settings is None:
        return None
    names = {level.key: level.name for level in settings.levels}
    return [
        TierLine(
            change.at,
            names.get(change.from_tier, change.from_tier) if change.from_tier else None,
            names.get(change.to_tier, change.to_tier),
            _word(TIER_REASONS, change.reason, fmt),
            change.explanation,
        )
        for change in reversed(tier_history_of(uow, member.id))
    ]


def message_lines(
    uow: UnitOfWork, member: Member, fmt: Formats, limit: int = MESSAGES_SHOWN
) -> list[MessageLine]:
    """The member's latest ``limit`` messages, newest first."""
    found = list_messages(
        uow, tenant_id=member.tenant_id, member_id=member.id, limit=limit, newest_first=True
    )
    return [
        MessageLine(
            m.sent_at or m.created_at,
            m.channel.value,
            m.template,
            m.subject,
            m.status.value,
            _word(MESSAGE_STATUSES, m.status.value, fmt),
            _word(MESSAGE_REASONS, m.reason, fmt) if m.reason else None,
        )
        for m in found
    ]


def _word(words: dict[str, str], code: str, fmt: Formats) -> str:
    return fmt.gettext(words[code]) if code in words else code
