"""Messaging, the pure part: settings and templates of a programme document, message kinds and
states, and the decisions about who may get what, when.

A message is rendered when it is queued (the row holds subject, text and HTML as sent), checked
for consent and respect when it is queued and again right before it is sent, and sent by the
dispatcher outside any transaction. The rules, each a function here:

- **Consent** (:func:`consent_problem`): marketing needs the member's latest consent for the
  channel to be granted; for e-mail with double opt-in that consent must be confirmed.
  Transactional messages (a voucher issued, a login code, the opt-in confirmation itself) need no
  marketing consent. Blocked, erased and merged members get nothing at all.
- **Suppression**: a bounced address gets nothing; an address that complained or unsubscribed
  at the mail provider gets no marketing.
- **Frequency caps** (:func:`over_cap`): at most N marketing messages per member and channel in
  any 7 days.
- **Quiet hours** (:func:`after_quiet_hours`): marketing SMS and push wait for the end of the
  quiet window in programme time; e-mail waits for nobody (it is read when the reader wants),
  nor does a transactional message the member is waiting for (a login code).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from treu.messaging import render

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)
CAP_WINDOW = timedelta(days=7)


class MessageKind(StrEnum):
    TRANSACTIONAL = "transactional"  # the member asked for it or needs it: no marketing consent
    MARKETING = "marketing"  # needs consent, counts against the frequency cap


class MessageStatus(StrEnum):
    QUEUED = "queued"  # waiting for its time (``next_attempt_at``)
    SENDING = "sending"  # claimed by a dispatcher for one attempt (a lease)
    SENT = "sent"  # the SMTP server / provider accepted it
    FAILED = "failed"  # gave up: permanent error or :data:`MAX_ATTEMPTS` tries
    SUPPRESSED = "suppressed"  # not sent, and never will be: ``reason`` says why


class MessageChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    WEBHOOK = "webhook"  # handed to the tenant's webhook endpoints (``message.requested``)


class Reason(StrEnum):
    """Why a message was suppressed (or failed without a send)."""

    NO_CONSENT = "no_consent"
    UNCONFIRMED = "unconfirmed"  # e-mail consent given but the double opt-in not confirmed
    FREQUENCY_CAP = "frequency_cap"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    NO_ADDRESS = "no_address"
    MEMBER_INACTIVE = "member_inactive"  # blocked, erased or merged
    TEMPLATE_ERROR = "template_error"  # the template did not render for this member


class SuppressionReason(StrEnum):
    BOUNCED = "bounced"  # permanent delivery failure: nothing goes there any more
    COMPLAINED = "complained"  # marked as spam: no marketing
    UNSUBSCRIBED = "unsubscribed"  # unsubscribed at the provider: no marketing


# --- the programme document's sections -------------------------------------------------------


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuietHours(_Doc):
    """A window in programme time, e.g. 21:00–08:00 (across midnight) or 12:00–14:00."""

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours need a start different from their end")
        return self

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class FrequencyCaps(_Doc):
    """Marketing messages per member and channel in any 7 days (``null``: no cap)."""

    email: int | None = Field(default=3, ge=0, le=1000)
    sms: int | None = Field(default=1, ge=0, le=1000)
    push: int | None = Field(default=5, ge=0, le=1000)
    webhook: int | None = Field(default=None, ge=0, le=1000)

    def of(self, channel: MessageChannel) -> int | None:
        cap: int | None = getattr(self, channel.value)
        return cap


class MessagingSettings(_Doc):
    """The ``messaging:`` section of a programme document."""

    from_email: str | None = Field(default=None, max_length=320, description="else TREU_SMTP_FROM")
    from_name: str | None = Field(default=None, max_length=200)
    reply_to: str | None = Field(default=None, max_length=320)
    double_opt_in: bool = True
    quiet_hours: QuietHours | None = Field(
        default_factory=lambda: QuietHours(start=time(21), end=time(8))
    )
    frequency_caps: FrequencyCaps = Field(default_factory=FrequencyCaps)
    consent_text_version: str | None = Field(
        default=None, max_length=64, description="the wording members agree to, e.g. 2026-01"
    )
    unsubscribe_mailto: str | None = Field(
        default=None, max_length=320, description="an address for List-Unsubscribe: <mailto:…>"
    )
    sms_sender: str | None = Field(
        default=None, max_length=20, description="sender id or number, else the provider's"
    )

    @field_validator("from_email", "reply_to", "unsubscribe_mailto")
    @classmethod
    def _looks_like_address(cls, value: str | None) -> str | None:
        if value is not None and ("@" not in value or any(c in value for c in " \r\n<>,")):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value


Localised = dict[str, str]  # language ("de", "en") → Jinja2 source


class TemplateDef(_Doc):
    """A message template: Jinja2 in one or more languages. ``text`` is the plain-text body
    (and the SMS/push text unless ``short`` is given), ``html`` the e-mail's HTML body (derived
    from ``text`` if absent), ``subject`` the e-mail subject and push title.

    ``variables`` names what the template expects from the automation that sends it (beyond the
    member's personal content), so that a typo is still an error when the document is applied.
    """

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    channel: MessageChannel | None = Field(default=None, description="what it was written for")
    description: str | None = Field(default=None, max_length=500)
    subject: Localised = Field(default_factory=dict)
    text: Localised = Field(min_length=1)
    html: Localised = Field(default_factory=dict)
    short: Localised = Field(default_factory=dict, description="SMS and push text")
    variables: list[str] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _renders(self) -> TemplateDef:
        for part in ("subject", "text", "html", "short"):
            for language, source in getattr(self, part).items():
                if len(source) > 100_000:
                    raise ValueError(f"{part}.{language}: longer than 100000 characters")
                _check_language(f"{part}.{language}", language)
        problem = render.check_template(self.parts(), self.variables)
        if problem is not None:
            raise ValueError(problem)
        return self

    def parts(self) -> dict[str, Mapping[str, str]]:
        return {"subject": self.subject, "text": self.text, "html": self.html, "short": self.short}

    def languages(self) -> list[str]:
        return list(self.text)


def _check_language(path: str, language: str) -> None:
    try:
        Locale.parse(language, sep="-" if "-" in language else "_")
    except (UnknownLocaleError, ValueError) as exc:
        raise ValueError(f"{path}: {language!r} is not a language such as de or en") from exc


def _unique_keys(templates: list[TemplateDef]) -> list[TemplateDef]:
    seen: set[str] = set()
    for index, template in enumerate(templates):
        if template.key in seen:
            raise ValueError(f"templates.{index}.key: {template.key!r} is used twice")
        seen.add(template.key)
    return templates


Templates = Annotated[list[TemplateDef], AfterValidator(_unique_keys)]


# --- what the services return --------------------------------------------------------------


@dataclass(frozen=True)
class QueuedMessage:
    id: str
    status: MessageStatus
    reason: str | None  # why suppressed (see :class:`Reason`)
    created: bool  # False: the dedupe key was seen before; nothing new was queued


@dataclass(frozen=True)
class Message:
    """One message as the log shows it."""

    id: str
    member_id: str
    programme_id: str
    channel: MessageChannel
    template: str
    kind: MessageKind
    automation: str | None
    dedupe_key: str
    status: MessageStatus
    reason: str | None
    locale: str | None
    to_address: str | None
    subject: str | None
    body_text: str
    body_html: str | None
    not_before: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Consent:
    """The member's latest consent decision for one channel, as the checks need it."""

    granted: bool
    confirmed: bool  # by double opt-in (or imported with proof of it)


# --- the decisions ---------------------------------------------------------------------------


def consent_problem(
    kind: MessageKind,
    channel: MessageChannel,
    consent: Consent | None,
    *,
    double_opt_in: bool,
) -> Reason | None:
    """Why a message may not go for lack of consent (None: it may)."""
    if kind is MessageKind.TRANSACTIONAL or channel is MessageChannel.WEBHOOK:
        # the tenant's own systems decide what to do with a webhook message; they get the kind
        return None
    if consent is None or not consent.granted:
        return Reason.NO_CONSENT
    if channel is MessageChannel.EMAIL and double_opt_in and not consent.confirmed:
        return Reason.UNCONFIRMED
    return None


def suppression_problem(kind: MessageKind, reason: SuppressionReason | None) -> Reason | None:
    """A suppressed address: bounced stops everything, the others stop marketing."""
    if reason is None:
        return None
    if reason is SuppressionReason.BOUNCED or kind is MessageKind.MARKETING:
        return Reason(reason.value)
    return None


def over_cap(kind: MessageKind, cap: int | None, counted: int) -> bool:
    """``counted``: the member's other marketing messages on the channel in the window."""
    return kind is MessageKind.MARKETING and cap is not None and counted >= cap


def after_quiet_hours(
    channel: MessageChannel,
    at: datetime,
    quiet: QuietHours | None,
    tz: ZoneInfo,
    kind: MessageKind = MessageKind.MARKETING,
) -> datetime:
    """When a message due at ``at`` may go: marketing SMS and push wait until the quiet window
    (in programme time) is over; e-mail and webhooks are never held, and neither is what the
    member is waiting for right now (a login code at 22:00, the voucher just redeemed)."""
    if quiet is None or kind is MessageKind.TRANSACTIONAL:
        return at
    if channel not in (MessageChannel.SMS, MessageChannel.PUSH):
        return at
    local = at.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return at
    day = local.date()
    if quiet.start > quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
        day += timedelta(days=1)  # 22:30 in 21:00–08:00: until 08:00 tomorrow
    end = datetime.combine(day, quiet.end)
    # A wall-clock time in a DST gap does not exist: fold=0 maps it to the instant after it.
    return end.replace(tzinfo=tz).astimezone(at.tzinfo)


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th temporary failure: 1, 2, 4, … minutes, at most 6
    hours (8 attempts span about 4 hours)."""
    return min(FIRST_RETRY * (1 << min(max(attempts - 1, 0), 20)), LONGEST_RETRY)


def language_of(member_locale: str | None, programme_locale: str, available: list[str]) -> str:
    """The template language for a member: their locale's language, else the programme's,
    else English, else the template's first."""
    wanted = [member_locale, programme_locale, "en"]
    for candidate in wanted:
        if not candidate:
            continue
        if candidate in available:
            return candidate
        language = candidate.replace("_", "-").split("-", 1)[0].lower()
        if language in available:
            return language
    return available[0]


def preview_context(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The sample personal content templates are checked against (also documented)."""
    return {**render.sample_context(), **(extra or {})}
