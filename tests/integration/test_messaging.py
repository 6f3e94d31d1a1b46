"""Messages end to end on both databases: queued with consent checks, rendered with personal
content, delivered to a real SMTP server (aiosmtpd) and a real HTTP provider on 127.0.0.1.

The café "Kiezcafé" (Berlin, German) sends e-mail; Mia (German) and Tom (English) are members.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from messaging_support import Provider, SmtpServer
from treu.activities.model import LineIn, PurchaseIn
from treu.activities.service import record_purchase
from treu.clock import FixedClock
from treu.config import get_settings
from treu.errors import ErrorCode, InvalidInput
from treu.members.enrolment import enrol_member
from treu.members.model import Channel, IdentifierKind
from treu.members.service import consent_history, record_consent, set_blocked
from treu.messaging import consent
from treu.messaging.channels import (
    default_transports,
    generic_sms_transport,
    push_transport,
    twilio_sms_transport,
)
from treu.messaging.dispatcher import dispatch
from treu.messaging.model import (
    MessageChannel,
    MessageKind,
    MessageStatus,
    Reason,
    SuppressionReason,
)
from treu.messaging.service import (
    enqueue_message,
    list_messages,
    personal_context,
    report_suppression,
)
from treu.outbox.service import list_events
from treu.programmes.service import Tenant, apply_programme, load_programme
from treu.rewards.service import consume_voucher, redeem_reward
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")


def document(**messaging: Any) -> dict[str, Any]:
    return {
        "key": "kiezcafe",
        "name": "Kiezcafé",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "locale": "de",
        "country": "DE",
        "point_name": "Punkte",
        "point_value": "0.01",
        "expiry": {"type": "after", "months": 12},
        "rules": [
            {
                "key": "punkte",
                "name": "1 Punkt je Euro",
                "when": {"activity": "purchase"},
                "effect": {"type": "per_amount", "points": 1},
            }
        ],
        "rewards": [
            {
                "key": "kaffee",
                "name": "Gratis Kaffee",
                "kind": "free_product",
                "sku": "K",
                "cost": 30,
            },
            {
                "key": "fuenf",
                "name": "5 € Rabatt",
                "kind": "fixed_discount",
                "value": "5.00",
                "cost": 100,
            },
        ],
        "stamp_cards": [
            {
                "key": "kaffeekarte",
                "name": "Kaffeekarte",
                "stamps_needed": 5,
                "earn": {"type": "per_unit", "items": {"categories": ["Kaffee"]}},
                "reward": "kaffee",
            }
        ],
        "messaging": {
            "from_email": "hallo@kiezcafe.example",
            "from_name": "Kiezcafé",
            "reply_to": "team@kiezcafe.example",
            **messaging,
        },
        "templates": [
            {
                "key": "angebot",
                "channel": "email",
                "subject": {
                    "de": "Neu bei uns: Käsekuchen für {{ first_name }}",
                    "en": "New: cheesecake",
                },
                "text": {
                    "de": "Hallo {{ first_name }}, probier unseren Käsekuchen! Du hast "
                    "{{ balance|points }} {{ point_name }}. Mehr: https://kiezcafe.example/kuchen",
                    "en": "Hello {{ first_name }}, try our cheesecake! "
                    "You have {{ balance|points }} points.",
                },
                "short": {"de": "Käsekuchen! – Kiezcafé", "en": "Cheesecake! – Kiezcafé"},
            }
        ],
    }


@dataclass
class Cafe:
    tenant_id: str
    programme_id: str
    new_uow: NewUow
    clock: FixedClock

    def enrol(
        self,
        email: str | None = "mia@example.de",
        *,
        name: str = "Mia Müller",
        locale: str | None = None,
        phone: str | None = None,
        consents: dict[Channel, bool] | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> str:
        given = {IdentifierKind.EMAIL: email, IdentifierKind.PHONE: phone}
        with self.new_uow() as uow:
            return enrol_member(
                uow,
                programme_id=self.programme_id,
                identifiers_={k: v for k, v in given.items() if v},
                name=name,
                locale=locale,
                consents_=consents,
                attributes=attributes,
                source="signup-form",
            ).id

    def queue(
        self,
        member_id: str,
        template: str = "angebot",
        *,
        kind: MessageKind = MessageKind.MARKETING,
        channel: MessageChannel | Channel = MessageChannel.EMAIL,
        key: str | None = None,
        **kw: Any,
    ) -> Any:
        with self.new_uow() as uow:
            programme = load_programme(uow, self.programme_id)
            queued = enqueue_message(
                uow,
                programme,
                member_id=member_id,
                template=template,
                channel=channel,
                kind=kind,
                dedupe_key=key
                or f"{template}:{member_id}:{self.clock.now().isoformat()}:{channel}",
                **kw,
            )
            uow.commit()
            return queued

    def dispatch(self, **kw: Any) -> Any:
        return dispatch(self.new_uow, tenant_id=self.tenant_id, **kw)

    def messages(self, member_id: str) -> list[Any]:
        with self.new_uow() as uow:
            return list_messages(uow, tenant_id=self.tenant_id, member_id=member_id)

    def confirm_all(self, smtp: SmtpServer, address: str) -> None:
        """Open the confirmation link of the latest opt-in e-mail to ``address``."""
        mail = [m for m in smtp.to(address) if "bestätige" in m.subject or "confirm" in m.subject]
        token = link_in(mail[-1].text, "/v1/consents/confirm/")
        with self.new_uow() as uow:
            consent.confirm_consent(uow, token, address="203.0.113.7", user_agent="Firefox")

    def apply(self, doc: dict[str, Any]) -> None:
        with self.new_uow() as uow:
            apply_programme(uow, tenant_id=self.tenant_id, document=doc)


def link_in(text: str, path: str) -> str:
    found = re.search(re.escape(path) + r"([A-Za-z0-9_\-\.]+)", text)
    assert found, f"no {path} link in {text!r}"
    return found.group(1)


@pytest.fixture
def cafe(new_uow: NewUow, tenant: Tenant, clock: FixedClock) -> Cafe:
    clock.set(datetime(2026, 3, 2, 10, tzinfo=BERLIN))  # a Monday morning
    with new_uow() as uow:
        programme_id = apply_programme(uow, tenant_id=tenant.id, document=document()).programme_id
    return Cafe(tenant.id, programme_id, new_uow, clock)


# --- transactional and marketing, consent -----------------------------------------------------


def test_a_transactional_email_reaches_the_smtp_server_with_umlauts_intact(
    cafe: Cafe, smtp_server: SmtpServer
) -> None:
    mia = cafe.enrol()  # no marketing consent at all: the voucher e-mail still goes
    queued = cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL)
    assert (queued.status, queued.created) == (MessageStatus.QUEUED, True)

    result = cafe.dispatch()

    assert (result.sent, result.failed) == (1, 0)
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["mia@example.de"]
    assert mail.mail_from == "hallo@kiezcafe.example"
    assert mail.message["From"].addresses[0].display_name == "Kiezcafé"
    assert mail.message["Reply-To"] == "team@kiezcafe.example"
    assert mail.subject == "Dein Gutschein"  # she has no voucher: the template says so kindly
    assert "Hallo Mia," in mail.text
    assert "Kiezcafé" in mail.text
    assert "<p>Hallo Mia,</p>" in mail.html
    assert mail.message["Message-ID"] == f"<{queued.id}@kiezcafe.example>"
    assert mail.message["Date"] is not None
    assert "List-Unsubscribe" not in mail.headers  # transactional: nothing to unsubscribe from
    [message] = cafe.messages(mia)
    assert (message.status, message.sent_at, message.attempts) == (
        MessageStatus.SENT,
        cafe.clock.now(),
        1,
    )


def test_no_marketing_message_goes_without_consent(cafe: Cafe, smtp_server: SmtpServer) -> None:
    mia = cafe.enrol(consents={Channel.EMAIL: False})
    queued = cafe.queue(mia)

    assert (queued.status, queued.reason) == (MessageStatus.SUPPRESSED, Reason.NO_CONSENT)
    assert cafe.dispatch().claimed == 0
    assert smtp_server.received == []
    [message] = cafe.messages(mia)
    assert message.subject == "Neu bei uns: Käsekuchen für Mia"  # the log shows what it was


def test_double_opt_in_confirms_email_consent_before_the_first_marketing_email(
    cafe: Cafe, smtp_server: SmtpServer
) -> None:
    mia = cafe.enrol(consents={Channel.EMAIL: True})
    # given at sign-up, not yet confirmed: marketing waits, the confirmation e-mail goes
    assert cafe.queue(mia, key="offer-1").reason == Reason.UNCONFIRMED
    assert cafe.dispatch().sent == 1
    [confirmation] = smtp_server.received
    assert confirmation.subject == "Bitte bestätige deine Anmeldung bei Kiezcafé"
    token = link_in(confirmation.text, "/v1/consents/confirm/")
    assert f"{get_settings().public_url}/v1/consents/confirm/{token}" in confirmation.html
    assert "List-Unsubscribe" not in confirmation.headers

    cafe.clock.advance(timedelta(hours=2))
    with cafe.new_uow() as uow:
        done = consent.confirm_consent(uow, token, address="203.0.113.7", user_agent="Firefox/128")
    assert done.changed is True
    with cafe.new_uow() as uow:
        again = consent.confirm_consent(uow, token, address="203.0.113.7", user_agent="Firefox")
    assert again.changed is False  # a second click changes nothing

    with cafe.new_uow() as uow:
        history = consent_history(uow, tenant_id=cafe.tenant_id, member_id=mia)
    assert [(c.channel, c.granted, c.source) for c in history] == [
        ("email", True, "signup-form"),
        ("email", True, "double_opt_in"),
    ]
    evidence = history[-1].evidence or {}
    assert evidence["ip"] == "203.0.113.7"
    assert evidence["user_agent"] == "Firefox/128"
    assert evidence["confirms"] == history[0].id
    assert evidence["confirmed_at"] == cafe.clock.now().isoformat()
    assert evidence["token_id"]

    assert cafe.queue(mia, key="offer-2").status is MessageStatus.QUEUED
    assert cafe.dispatch().sent == 1
    offer = smtp_server.received[-1]
    assert offer.subject == "Neu bei uns: Käsekuchen für Mia"
    assert '<a href="https://kiezcafe.example/kuchen">' in offer.html


def test_the_consent_text_version_is_kept_with_the_request_and_the_confirmation(
    cafe: Cafe, smtp_server: SmtpServer
) -> None:
    cafe.apply(document(consent_text_version="2026-03"))
    mia = cafe.enrol(consents={Channel.EMAIL: True})
    cafe.dispatch()
    cafe.confirm_all(smtp_server, "mia@example.de")
    with cafe.new_uow() as uow:
        history = consent_history(uow, tenant_id=cafe.tenant_id, member_id=mia)
    assert [(c.source, c.text_version) for c in history] == [
        ("signup-form", "2026-03"),
        ("double_opt_in", "2026-03"),
    ]


def test_a_programme_without_double_opt_in_mails_on_the_consent_as_given(
    cafe: Cafe, smtp_server: SmtpServer
) -> None:
    cafe.apply(document(double_opt_in=False))
    mia = cafe.enrol(consents={Channel.EMAIL: True})
    assert cafe.queue(mia).status is MessageStatus.QUEUED
    assert cafe.dispatch().sent == 1
    assert [m.subject for m in smtp_server.received] == ["Neu bei uns: Käsekuchen für Mia"]


def test_marketing_email_carries_one_click_unsubscribe_and_it_works(
    cafe: Cafe, smtp_server: SmtpServer
) -> None:
    cafe.apply(document(double_opt_in=False, unsubscribe_mailto="abmelden@kiezcafe.example"))
    mia = cafe.enrol(consents={Channel.EMAIL: True})
    cafe.queue(mia, key="offer-1")
    cafe.dispatch()
    [offer] = smtp_server.received

    header = offer.message["List-Unsubscribe"]
    url, mailto = [part.strip(" <>") for part in str(header).split(",")]
    assert url.startswith(f"{get_settings().public_url}/v1/unsubscribe/")
    assert mailto == "mailto:abmelden@kiezcafe.example?subject=unsubscribe"
    assert offer.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"Hier abmelden: {url}" in offer.text
    assert ">Abmelden</a>" in offer.html

    # a second offer is already queued when she unsubscribes: it must not go
    cafe.queue(mia, key="offer-2")
    token = urlsplit(url).path.rsplit("/", 1)[1]
    with cafe.new_uow() as uow:
        done = consent.unsubscribe(uow, token, address="198.51.100.1", user_agent="Mail")
    assert (done.changed, done.language) == (True, "de")

    assert cafe.dispatch().suppressed == 1
    assert len(smtp_server.received) == 1
    assert cafe.messages(mia)[-1].reason == Reason.NO_CONSENT
    assert cafe.queue(mia, key="offer-3").reason == Reason.NO_CONSENT
    with cafe.new_uow() as uow:
        history = consent_history(uow, tenant_id=cafe.tenant_id, member_id=mia)
    assert (history[-1].granted, history[-1].source) == (False, "unsubscribe_link")


def test_an_english_member_gets_english_and_a_german_one_german(
    cafe: Cafe, smtp_server: SmtpServer
) -> None:
    tom = cafe.enrol("tom@example.org", name="Tom Baker", locale="en-GB")
    mia = cafe.enrol()
    for who in (tom, mia):
        cafe.queue(who, "voucher_issued", kind=MessageKind.TRANSACTIONAL)
    cafe.dispatch()
    assert smtp_server.to("tom@example.org")[0].subject == "Your voucher"
    assert smtp_server.to("mia@example.de")[0].subject == "Dein Gutschein"


def test_the_same_dedupe_key_queues_and_sends_once(cafe: Cafe, smtp_server: SmtpServer) -> None:
    mia = cafe.enrol()
    first = cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL, key="v:1")
    again = cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL, key="v:1")

    assert (first.created, again.created, again.id) == (True, False, first.id)
    cafe.dispatch()
    cafe.dispatch()
    assert len(smtp_server.received) == 1


def test_blocked_members_get_nothing_even_if_blocked_after_queueing(
    cafe: Cafe, smtp_server: SmtpServer
) -> None:
    mia = cafe.enrol()
    cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL, key="v:1")
    with cafe.new_uow() as uow:
        set_blocked(uow, tenant_id=cafe.tenant_id, member_id=mia, blocked=True)

    assert cafe.dispatch().suppressed == 1
    assert cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL).reason == (
        Reason.MEMBER_INACTIVE
    )
    assert smtp_server.received == []


# --- respect: caps, quiet hours, bounces --------------------------------------------------------


def test_the_frequency_cap_holds_per_member_and_channel_over_seven_days(
    cafe: Cafe, smtp_server: SmtpServer
) -> None:
    cafe.apply(document(double_opt_in=False, frequency_caps={"email": 2}))
    mia = cafe.enrol(consents={Channel.EMAIL: True})
    statuses = [cafe.queue(mia, key=f"o-{i}").status for i in range(3)]
    assert statuses == [MessageStatus.QUEUED, MessageStatus.QUEUED, MessageStatus.SUPPRESSED]
    assert cafe.messages(mia)[-1].reason == Reason.FREQUENCY_CAP
    # transactional messages do not count and are not capped
    assert cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL).status is (
        MessageStatus.QUEUED
    )
    assert cafe.dispatch().sent == 3

    cafe.clock.advance(timedelta(days=6, hours=23))
    assert cafe.queue(mia, key="o-week").reason == Reason.FREQUENCY_CAP
    cafe.clock.advance(timedelta(hours=1, seconds=1))  # seven days after the first two went
    assert cafe.queue(mia, key="o-next-week").status is MessageStatus.QUEUED


def test_marketing_sms_in_quiet_hours_waits_until_they_are_over_and_email_does_not(
    cafe: Cafe, smtp_server: SmtpServer, provider: Provider
) -> None:
    cafe.apply(document(double_opt_in=False))  # quiet hours: 21:00–08:00 (the default)
    mia = cafe.enrol(phone="+49 151 23456789", consents={Channel.EMAIL: True, Channel.SMS: True})
    cafe.clock.set(datetime(2026, 3, 2, 22, 30, tzinfo=BERLIN))
    sms = cafe.queue(mia, channel=Channel.SMS, key="sms-1")
    cafe.queue(mia, channel=Channel.EMAIL, key="mail-1")
    transports = {
        **default_transports(),
        MessageChannel.SMS: generic_sms_transport(_sms_settings(provider.url)),
    }

    assert cafe.dispatch(transports=transports).sent == 1  # the e-mail
    assert provider.requests == []
    # a login code she asked for at 22:31 does not wait
    code = {"code": "271828", "minutes": 10}
    cafe.queue(mia, "login_code", kind=MessageKind.TRANSACTIONAL, channel=Channel.SMS, context=code)
    assert cafe.dispatch(transports=transports).sent == 1
    assert provider.requests.pop().json()["text"].startswith("271828 ist dein Anmeldecode")
    [waiting] = [m for m in cafe.messages(mia) if m.id == sms.id]
    assert waiting.next_attempt_at == datetime(2026, 3, 3, 8, tzinfo=BERLIN)
    assert waiting.status is MessageStatus.QUEUED

    cafe.clock.set(datetime(2026, 3, 3, 7, 59, tzinfo=BERLIN))
    assert cafe.dispatch(transports=transports).claimed == 0
    cafe.clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=BERLIN))
    assert cafe.dispatch(transports=transports).sent == 1
    [request] = provider.requests
    assert request.json() == {
        "to": "+4915123456789",
        "text": "Käsekuchen! – Kiezcafé",
        "sender": "Kiezcafe",
        "message_id": sms.id,
    }
    assert request.headers["authorization"] == "Bearer sms-secret"


def test_a_retry_that_falls_into_the_quiet_hours_waits_for_their_end(
    cafe: Cafe, provider: Provider
) -> None:
    cafe.apply(document(double_opt_in=False))
    mia = cafe.enrol(phone="+49 151 23456789", consents={Channel.SMS: True})
    transports = {MessageChannel.SMS: generic_sms_transport(_sms_settings(provider.url))}
    cafe.clock.set(datetime(2026, 3, 2, 20, 59, 30, tzinfo=BERLIN))
    cafe.queue(mia, channel=Channel.SMS)
    provider.answers = [(503, {"error": "busy"})]
    assert cafe.dispatch(transports=transports).retried == 1  # again at 21:00:30

    cafe.clock.set(datetime(2026, 3, 2, 21, 0, 30, tzinfo=BERLIN))
    cafe.dispatch(transports=transports)

    assert len(provider.requests) == 1
    [message] = cafe.messages(mia)
    assert (message.status, message.attempts) == (MessageStatus.QUEUED, 1)
    assert message.next_attempt_at == datetime(2026, 3, 3, 8, tzinfo=BERLIN)


def _sms_settings(url: str, **kw: Any) -> Any:
    return get_settings().model_copy(
        update={"sms_url": f"{url}/sms", "sms_token": "sms-secret", "sms_sender": "Kiezcafe", **kw}
    )


def test_sms_through_the_twilio_messages_api(cafe: Cafe, provider: Provider) -> None:
    mia = cafe.enrol(phone="+49 151 23456789")
    queued = cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL, channel=Channel.SMS)
    settings = _sms_settings(provider.url, sms_account="AC123", twilio_base_url=provider.url)

    result = cafe.dispatch(transports={MessageChannel.SMS: twilio_sms_transport(settings)})

    assert result.sent == 1
    [request] = provider.requests
    assert request.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == "Basic QUMxMjM6c21zLXNlY3JldA=="  # AC123:sms-secret
    from urllib.parse import parse_qs

    form = parse_qs(request.body.decode())
    assert form["To"] == ["+4915123456789"]
    assert form["From"] == ["Kiezcafe"]
    assert form["Body"] == ["Dein Gutschein ist da. – Kiezcafé"]
    [message] = [m for m in cafe.messages(mia) if m.id == queued.id]
    assert message.status is MessageStatus.SENT


def test_an_sms_provider_refusing_a_number_fails_it_and_a_busy_one_is_tried_again(
    cafe: Cafe, provider: Provider
) -> None:
    mia = cafe.enrol(phone="+49 151 23456789")
    transports = {MessageChannel.SMS: generic_sms_transport(_sms_settings(provider.url))}
    provider.answers = [(503, {"error": "busy"})]
    queued = cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL, channel=Channel.SMS)

    assert cafe.dispatch(transports=transports).retried == 1
    [waiting] = cafe.messages(mia)
    assert (waiting.status, waiting.next_attempt_at) == (
        MessageStatus.QUEUED,
        cafe.clock.now() + timedelta(minutes=1),
    )
    cafe.clock.advance(timedelta(minutes=1))
    assert cafe.dispatch(transports=transports).sent == 1

    provider.answers = [(400, {"code": 21211, "message": "invalid To"})]
    cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL, channel=Channel.SMS, key="2")
    assert cafe.dispatch(transports=transports).failed == 1
    assert (cafe.messages(mia)[-1].last_error or "").startswith("HTTP 400")
    assert cafe.messages(mia)[0].id == queued.id


def test_push_goes_to_every_device_of_the_member(cafe: Cafe, provider: Provider) -> None:
    mia = cafe.enrol(attributes={"push_tokens": ["dev-a", "dev-b"]})  # type: ignore[dict-item]
    cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL, channel=Channel.PUSH)
    settings = get_settings().model_copy(update={"push_url": f"{provider.url}/push"})

    assert cafe.dispatch(transports={MessageChannel.PUSH: push_transport(settings)}).sent == 1
    [request] = provider.requests
    body = request.json()
    assert (body["to"], body["title"]) == (["dev-a", "dev-b"], "Dein Gutschein")


def test_a_webhook_message_is_handed_to_the_tenants_endpoints_as_an_event(cafe: Cafe) -> None:
    mia = cafe.enrol()
    queued = cafe.queue(mia, "angebot", channel=MessageChannel.WEBHOOK)
    assert cafe.dispatch().sent == 1
    with cafe.new_uow() as uow:
        [event] = list_events(uow, tenant_id=cafe.tenant_id, type="message.requested")
    assert event["payload"]["message_id"] == queued.id
    assert event["payload"]["subject"] == "Neu bei uns: Käsekuchen für Mia"
    assert event["payload"]["email"] == "mia@example.de"


def test_a_bounced_address_stops_being_mailed(cafe: Cafe, smtp_server: SmtpServer) -> None:
    mia = cafe.enrol()
    smtp_server.refuse["mia@example.de"] = "550 5.1.1 <mia@example.de>: mailbox unknown"
    cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL, key="v:1")

    assert cafe.dispatch().failed == 1
    [message] = cafe.messages(mia)
    assert (message.status, message.reason) == (MessageStatus.FAILED, Reason.BOUNCED)
    assert "550" in (message.last_error or "")
    # nothing goes there any more, transactional or not
    again = cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL, key="v:2")
    assert (again.status, again.reason) == (MessageStatus.SUPPRESSED, Reason.BOUNCED)


def test_a_complaint_reported_by_the_provider_stops_marketing_not_transactional(
    cafe: Cafe, smtp_server: SmtpServer
) -> None:
    cafe.apply(document(double_opt_in=False))
    mia = cafe.enrol(consents={Channel.EMAIL: True})
    with cafe.new_uow() as uow:
        report_suppression(
            uow,
            tenant_id=cafe.tenant_id,
            channel=MessageChannel.EMAIL,
            address="MIA@example.de",
            reason=SuppressionReason.COMPLAINED,
        )
    assert cafe.queue(mia).reason == Reason.COMPLAINED
    assert cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL).status is (
        MessageStatus.QUEUED
    )


def test_a_temporary_smtp_failure_is_tried_again_with_backoff(
    cafe: Cafe, smtp_server: SmtpServer
) -> None:
    mia = cafe.enrol()
    smtp_server.data_answers = ["451 4.3.0 try again later", "451 4.3.0 try again later"]
    cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL)

    assert cafe.dispatch().retried == 1
    cafe.clock.advance(timedelta(minutes=1))
    assert cafe.dispatch().retried == 1
    [message] = cafe.messages(mia)
    assert message.next_attempt_at == cafe.clock.now() + timedelta(minutes=2)
    cafe.clock.advance(timedelta(minutes=1))
    assert cafe.dispatch().claimed == 0  # not due yet
    cafe.clock.advance(timedelta(minutes=1))
    assert cafe.dispatch().sent == 1
    assert len(smtp_server.received) == 1
    assert cafe.messages(mia)[0].attempts == 3


# --- personal content ---------------------------------------------------------------------------


def test_personal_content_says_what_the_member_has_and_what_is_next(cafe: Cafe) -> None:
    mia = cafe.enrol()
    with cafe.new_uow() as uow:
        record_purchase(
            uow,
            programme_id=cafe.programme_id,
            member=mia,
            purchase=PurchaseIn(
                external_id="b-1",
                currency="EUR",
                lines=[
                    LineIn(unit_price="120.00", category="Kuchen"),
                    LineIn(unit_price="3.00", category="Kaffee", quantity=3),
                ],
            ),
        )
    with cafe.new_uow() as uow:
        redeemed = redeem_reward(
            uow, tenant_id=cafe.tenant_id, member_id=mia, reward_key="fuenf", idempotency_key="r-1"
        )
    with cafe.new_uow() as uow:
        consume_voucher(uow, tenant_id=cafe.tenant_id, code=redeemed.voucher.code)
    with cafe.new_uow() as uow:
        context = personal_context(uow, load_programme(uow, cafe.programme_id), mia)

    assert context["first_name"] == "Mia"
    assert context["balance"] == 29  # 129 earned, 100 spent
    assert context["points_earned"] == 129
    assert context["next_reward"] == {
        "key": "kaffee",
        "name": "Gratis Kaffee",
        "cost": 30,
        "points_needed": 1,
    }
    assert context["rewards_now"] == []
    assert context["card"]["stamps_left"] == 2  # 3 of 5 coffees
    assert context["expiring"] == {"points": 29, "date": datetime(2027, 3, 2).date()}
    assert context["saved"] == Decimal("5.00")
    assert context["member_since"] == datetime(2026, 3, 2).date()


def test_a_template_with_a_typo_is_refused_when_the_programme_is_applied(cafe: Cafe) -> None:
    broken = document()
    broken["templates"][0]["text"]["de"] = "Hallo {{ first_nme }}!"
    with pytest.raises(InvalidInput) as refused:
        cafe.apply(broken)
    assert refused.value.code is ErrorCode.INVALID_PROGRAMME
    [error] = refused.value.details["errors"]
    assert error["path"] == "templates.0.text.de"
    assert "'first_nme' is undefined" in error["message"]


def test_consents_recorded_without_double_opt_in_keep_working(cafe: Cafe) -> None:
    """record_consent, as members have always used it."""
    mia = cafe.enrol()
    with cafe.new_uow() as uow:
        record_consent(
            uow,
            tenant_id=cafe.tenant_id,
            member_id=mia,
            channel=Channel.SMS,
            granted=True,
            source="till",
        )
    with cafe.new_uow() as uow:
        [record] = consent_history(uow, tenant_id=cafe.tenant_id, member_id=mia)
    assert (record.channel, record.granted, record.text_version, record.evidence) == (
        "sms",
        True,
        None,
        None,
    )
    assert UTC  # keep the import honest


def test_erasure_forgets_what_the_messages_said_and_stops_those_waiting(cafe: Cafe) -> None:
    from treu.privacy.service import erase_member, export_member

    mia = cafe.enrol()
    cafe.queue(mia, "voucher_issued", kind=MessageKind.TRANSACTIONAL)
    with cafe.new_uow() as uow:
        exported = export_member(uow, tenant_id=cafe.tenant_id, member_id=mia)
    assert [m["template"] for m in exported["messages"]] == ["voucher_issued"]
    assert exported["messages"][0]["to_address"] == "mia@example.de"

    with cafe.new_uow() as uow:
        erase_member(uow, tenant_id=cafe.tenant_id, member_id=mia, actor="test")

    [message] = cafe.messages(mia)
    assert (message.status, message.reason) == (MessageStatus.SUPPRESSED, Reason.MEMBER_INACTIVE)
    assert (message.to_address, message.subject, message.body_text) == (None, None, "")
    assert cafe.dispatch().claimed == 0
