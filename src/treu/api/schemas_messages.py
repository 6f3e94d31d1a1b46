"""Messages over HTTP: the message log, templates and previews, consents, bounces."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from treu.members.model import Channel, ConsentRecord
from treu.messaging.consent import ConsentState, LinkResult
from treu.messaging.model import Message, MessageKind, SuppressionReason, TemplateDef
from treu.messaging.service import Preview, Suppression

MEMBER_REF = "A member id (mbr_…) or kind:value (email:…, phone:…, card:…, external:…)"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageRead(BaseModel):
    object: Literal["message"] = "message"
    id: str
    member_id: str
    channel: str = Field(description="email, sms, push or webhook")
    template: str
    kind: str = Field(description="transactional or marketing")
    automation: str | None
    status: str = Field(description="queued, sending, sent, failed or suppressed")
    reason: str | None = Field(
        description="why suppressed or failed: no_consent, unconfirmed, frequency_cap, bounced, "
        "complained, unsubscribed, no_address, member_inactive, template_error"
    )
    locale: str | None
    to: str | None
    subject: str | None
    text: str
    html: str | None
    not_before: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, m: Message) -> MessageRead:
        return cls(
            id=m.id,
            member_id=m.member_id,
            channel=m.channel.value,
            template=m.template,
            kind=m.kind.value,
            automation=m.automation,
            status=m.status.value,
            reason=m.reason,
            locale=m.locale,
            to=m.to_address,
            subject=m.subject,
            text=m.body_text,
            html=m.body_html,
            not_before=m.not_before,
            attempts=m.attempts,
            next_attempt_at=m.next_attempt_at,
            last_error=m.last_error,
            sent_at=m.sent_at,
            created_at=m.created_at,
        )


class TemplateRead(BaseModel):
    object: Literal["template"] = "template"
    key: str
    source: Literal["built_in", "programme"]
    channel: str | None
    description: str | None
    languages: list[str]
    subject: dict[str, str]
    text: dict[str, str]
    html: dict[str, str]
    short: dict[str, str]
    variables: list[str]

    @classmethod
    def of(cls, t: TemplateDef, own: bool) -> TemplateRead:
        return cls(
            key=t.key,
            source="programme" if own else "built_in",
            channel=t.channel.value if t.channel else None,
            description=t.description,
            languages=t.languages(),
            subject=t.subject,
            text=t.text,
            html=t.html,
            short=t.short,
            variables=t.variables,
        )


class TemplatePreviewCreate(_In):
    member: str = Field(min_length=1, max_length=400, description=MEMBER_REF)
    programme: str | None = Field(
        default=None, max_length=64, description="the programme's key (default: the member's)"
    )
    template: str | None = Field(
        default=None, max_length=64, description="a template key (built-in or the programme's)"
    )
    definition: dict[str, Any] | None = Field(
        default=None, description="a template written out, as in the programme document"
    )
    context: dict[str, Any] = Field(
        default_factory=dict, description="extra variables, as an automation would pass them"
    )
    kind: MessageKind = Field(
        default=MessageKind.MARKETING, description="marketing e-mails end with an unsubscribe link"
    )


class TemplatePreviewRead(BaseModel):
    object: Literal["template_preview"] = "template_preview"
    template: str
    language: str
    subject: str | None
    text: str
    html: str | None
    short: str
    context: dict[str, Any] = Field(description="the variables the template was rendered with")

    @classmethod
    def of(cls, p: Preview, context: dict[str, Any]) -> TemplatePreviewRead:
        return cls(
            template=p.template,
            language=p.language,
            subject=p.rendered.subject,
            text=p.rendered.text,
            html=p.rendered.html,
            short=p.rendered.short,
            context=context,
        )


class BounceCreate(_In):
    address: str = Field(min_length=3, max_length=320, description="e-mail address or number")
    channel: Literal["email", "sms", "push"] = "email"
    reason: SuppressionReason = Field(
        default=SuppressionReason.BOUNCED,
        description="bounced (nothing goes there any more), complained or unsubscribed "
        "(no marketing)",
    )
    detail: str | None = Field(default=None, max_length=500)


class SuppressionRead(BaseModel):
    object: Literal["suppression"] = "suppression"
    channel: str
    address: str
    reason: str
    detail: str | None
    created_at: datetime

    @classmethod
    def of(cls, s: Suppression) -> SuppressionRead:
        return cls(
            channel=s.channel,
            address=s.address,
            reason=s.reason.value,
            detail=s.detail,
            created_at=s.created_at,
        )


class ConsentCreate(_In):
    channel: Channel
    granted: bool
    source: str = Field(
        default="api", min_length=1, max_length=64, description="where it was given"
    )
    text_version: str | None = Field(
        default=None, max_length=64, description="the wording agreed to (default: the programme's)"
    )


class ConsentStateRead(BaseModel):
    object: Literal["consent"] = "consent"
    channel: str
    granted: bool
    confirmed: bool = Field(description="confirmed by double opt-in")
    pending: bool = Field(description="granted, waiting for the double opt-in confirmation")
    message_id: str | None = Field(description="the confirmation e-mail queued just now")

    @classmethod
    def of(cls, s: ConsentState) -> ConsentStateRead:
        return cls(
            channel=s.channel,
            granted=s.granted,
            confirmed=s.confirmed,
            pending=s.pending,
            message_id=s.message_id,
        )


class ConsentRecordRead(BaseModel):
    object: Literal["consent_record"] = "consent_record"
    id: str | None
    channel: str
    granted: bool
    source: str
    recorded_at: datetime
    text_version: str | None
    evidence: dict[str, Any] | None

    @classmethod
    def of(cls, c: ConsentRecord) -> ConsentRecordRead:
        return cls(
            id=c.id,
            channel=c.channel,
            granted=c.granted,
            source=c.source,
            recorded_at=c.recorded_at,
            text_version=c.text_version,
            evidence=c.evidence,
        )


class LinkRead(BaseModel):
    object: Literal["consent_link"] = "consent_link"
    channel: str
    action: Literal["confirm", "unsubscribe"]
    done: bool = Field(description="the consent is (now) confirmed / withdrawn")
    changed: bool = Field(description="false: it had been done before")

    @classmethod
    def of(cls, r: LinkResult, action: Literal["confirm", "unsubscribe"], done: bool) -> LinkRead:
        return cls(channel=r.channel, action=action, done=done, changed=r.changed)
