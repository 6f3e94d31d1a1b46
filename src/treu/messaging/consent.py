"""Consent to marketing messages: double opt-in for e-mail, confirmation and unsubscribe links.

Consent decisions are rows of ``member_consents`` (append-only, see :mod:`treu.members`); the
latest per channel counts. With ``messaging.double_opt_in`` (the default) an e-mail consent
given at enrolment or through the API is *unconfirmed*: it is recorded as given, with its source
and wording, and a transactional ``optin_confirm`` e-mail carries a signed link. Opening the
link records a second, confirming row — ``source: double_opt_in``, with evidence: when, from
which address and user agent, with which token, confirming which request. Only a confirmed
latest consent lets marketing e-mail go (``treu.messaging.model.consent_problem``).

Unsubscribing (the link in every marketing e-mail, RFC 8058 one-click) records a withdrawal at
once (``source: unsubscribe_link``); the next marketing message is suppressed, also one already
queued (the dispatcher checks again before sending).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import NoResultFound

from treu.config import get_settings
from treu.errors import ErrorCode, InvalidInput, Rejected
from treu.members.model import Channel, ConsentRecord, Member, MemberStatus
from treu.members.service import add_consent, get_member, latest_consents
from treu.messaging import tokens
from treu.messaging.model import MessageChannel, MessageKind, QueuedMessage, SuppressionReason
from treu.messaging.service import (
    enqueue_message,
    lift_suppression,
    link_token,
    public_url,
)
from treu.programmes.model import Programme
from treu.programmes.service import load_programme, tenant_secret
from treu.storage.uow import UnitOfWork

CONFIRM_TEMPLATE = "optin_confirm"
CONFIRMED_BY = "double_opt_in"
UNSUBSCRIBED_BY = "unsubscribe_link"


@dataclass(frozen=True)
class ConsentState:
    channel: str
    granted: bool
    confirmed: bool  # e-mail with double opt-in: the member opened the confirmation link
    pending: bool  # granted, waiting for the confirmation
    message_id: str | None = None  # the confirmation e-mail queued now


@dataclass(frozen=True)
class LinkResult:
    """What a confirmation or unsubscribe link did, for the page that answers it."""

    member_id: str
    channel: str
    changed: bool  # False: it had been done before (a second click)
    done: bool  # the consent is now confirmed / withdrawn
    programme_name: str
    language: str


def needs_confirmation(programme: Programme, record: ConsentRecord | None) -> bool:
    return (
        record is not None
        and record.channel == Channel.EMAIL.value
        and record.granted
        and programme.document.messaging.double_opt_in
        and not _confirmed(record)
    )


def _confirmed(record: ConsentRecord) -> bool:
    return bool(record.evidence and record.evidence.get("confirmed_at"))


def request_confirmation(
    uow: UnitOfWork, programme: Programme, member_id: str
) -> QueuedMessage | None:
    """Queue the ``optin_confirm`` e-mail if the member's latest e-mail consent waits for its
    confirmation (building block: never commits; once per consent decision)."""
    record = latest_consents(uow, member_id).get(Channel.EMAIL.value)
    if record is None or record.id is None or not needs_confirmation(programme, record):
        return None
    token = link_token(
        uow, programme.tenant_id, tokens.CONFIRM, member_id, "email", subject=record.id
    )
    return enqueue_message(
        uow,
        programme,
        member_id=member_id,
        template=CONFIRM_TEMPLATE,
        channel=MessageChannel.EMAIL,
        kind=MessageKind.TRANSACTIONAL,
        dedupe_key=f"optin_confirm:{record.id}",
        context={"confirm_url": f"{public_url()}/v1/consents/confirm/{token}"},
    )


def set_consent(
    uow: UnitOfWork,
    programme: Programme,
    *,
    member_id: str,
    channel: Channel,
    granted: bool,
    source: str,
    text_version: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> ConsentState:
    """Record a consent decision (use case: commits). E-mail consent under double opt-in asks
    for confirmation; granting what is granted and confirmed already changes nothing."""
    member = get_member(uow, member_id, tenant_id=programme.tenant_id)
    _check_active(member)
    latest = latest_consents(uow, member_id).get(Channel(channel).value)
    message_id = None
    if latest is None or latest.granted != granted:  # the same decision again: nothing new
        add_consent(
            uow,
            tenant_id=programme.tenant_id,
            member_id=member_id,
            channel=channel,
            granted=granted,
            source=source,
            text_version=text_version or programme.document.messaging.consent_text_version,
            evidence=evidence,
        )
        queued = request_confirmation(uow, programme, member_id) if granted else None
        message_id = queued.id if queued else None
    state = consent_state(uow, programme, member_id, channel)
    uow.commit()
    return ConsentState(state.channel, state.granted, state.confirmed, state.pending, message_id)


def consent_state(
    uow: UnitOfWork, programme: Programme, member_id: str, channel: Channel
) -> ConsentState:
    record = latest_consents(uow, member_id).get(Channel(channel).value)
    granted = record is not None and record.granted
    confirmed = record is not None and _confirmed(record)
    pending = needs_confirmation(programme, record)
    return ConsentState(Channel(channel).value, granted, confirmed, pending)


def confirm_consent(
    uow: UnitOfWork, token: str, *, address: str | None, user_agent: str | None
) -> LinkResult:
    """The member opened the confirmation link (use case: commits). A second click changes
    nothing; a link to a consent since withdrawn or replaced is ``invalid_token``."""
    claims, member, programme = _open(uow, token, tokens.CONFIRM)
    record = latest_consents(uow, member.id).get(Channel.EMAIL.value)
    evidence = record.evidence if record is not None else None
    if evidence and evidence.get("confirmed_at") and evidence.get("confirms") == claims.subject:
        return _result(programme, member, "email", changed=False, done=True)
    if record is None or record.id != claims.subject or not record.granted:
        raise InvalidInput(
            ErrorCode.INVALID_TOKEN,
            "this confirmation link was replaced by a later decision; ask for a new one",
        )
    now = uow.now()
    add_consent(
        uow,
        tenant_id=programme.tenant_id,
        member_id=member.id,
        channel=Channel.EMAIL,
        granted=True,
        source=CONFIRMED_BY,
        text_version=record.text_version or programme.document.messaging.consent_text_version,
        evidence={
            "confirmed_at": now.isoformat(),
            "confirms": record.id,
            "requested_at": record.recorded_at.isoformat(),
            "requested_source": record.source,
            "ip": address,
            "user_agent": (user_agent or "")[:500] or None,
            "token_id": claims.token_id,
        },
    )
    email = member.identifiers.get("email")
    if email:  # a fresh, confirmed opt-in outweighs an old unsubscription at the provider
        lift_suppression(
            uow,
            tenant_id=programme.tenant_id,
            channel=MessageChannel.EMAIL,
            address=email,
            reasons=[SuppressionReason.UNSUBSCRIBED.value, SuppressionReason.COMPLAINED.value],
        )
    uow.commit()
    return _result(programme, member, "email", changed=True, done=True)


def unsubscribe(
    uow: UnitOfWork, token: str, *, address: str | None, user_agent: str | None
) -> LinkResult:
    """Withdraw the consent the link is for, at once (use case: commits); again: nothing."""
    claims, member, programme = _open(uow, token, tokens.UNSUBSCRIBE)
    channel = Channel(claims.channel)
    record = latest_consents(uow, member.id).get(channel.value)
    if record is None or not record.granted:
        return _result(programme, member, channel.value, changed=False, done=True)
    add_consent(
        uow,
        tenant_id=programme.tenant_id,
        member_id=member.id,
        channel=channel,
        granted=False,
        source=UNSUBSCRIBED_BY,
        evidence={
            "withdrawn_at": uow.now().isoformat(),
            "message_id": claims.subject,
            "ip": address,
            "user_agent": (user_agent or "")[:500] or None,
        },
    )
    uow.commit()
    return _result(programme, member, channel.value, changed=True, done=True)


def link_details(uow: UnitOfWork, token: str, purpose: str) -> LinkResult:
    """What a link is for, without using it (the page behind a GET)."""
    claims, member, programme = _open(uow, token, purpose)
    record = latest_consents(uow, member.id).get(claims.channel)
    if purpose == tokens.CONFIRM:
        done = record is not None and _confirmed(record) and record.granted
    else:
        done = record is None or not record.granted
    return _result(programme, member, claims.channel, changed=False, done=done)


def _open(uow: UnitOfWork, token: str, purpose: str) -> tuple[tokens.LinkClaims, Member, Programme]:
    tenant_id = tokens.tenant_of(token)
    try:
        secret = tenant_secret(uow, tenant_id)
    except NoResultFound:  # no such tenant: the same answer as a bad signature
        raise InvalidInput(ErrorCode.INVALID_TOKEN, "this link is not valid") from None
    key = tokens.key_for(secret, get_settings().token_secret, purpose)
    claims = tokens.decode_link(token, key, purpose=purpose, now=uow.now())
    if claims.tenant_id != tenant_id or claims.channel not in {c.value for c in Channel}:
        raise InvalidInput(ErrorCode.INVALID_TOKEN, "this link is not valid")
    member = get_member(uow, claims.member_id, tenant_id=tenant_id)
    _check_active(member, invalid=True)
    return claims, member, load_programme(uow, member.programme_id)


def _check_active(member: Member, *, invalid: bool = False) -> None:
    if member.status in (MemberStatus.ERASED, MemberStatus.MERGED):
        if invalid:
            raise InvalidInput(ErrorCode.INVALID_TOKEN, "this link is not valid any more")
        raise Rejected(ErrorCode.MEMBER_ERASED, f"member {member.id} is {member.status}")


def _result(
    programme: Programme, member: Member, channel: str, *, changed: bool, done: bool
) -> LinkResult:
    locale = (member.locale or programme.document.locale).lower()
    return LinkResult(
        member.id,
        channel,
        changed,
        done,
        programme.document.name,
        "de" if locale.startswith("de") else "en",
    )
