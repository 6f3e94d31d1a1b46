"""The worker's pass on both databases: automations → messages → webhooks in one pass, and the
built-in automation that e-mails a member's login code. Real SMTP server, real HTTP receiver."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from messaging_support import Provider, SmtpServer, provider, smtp_server  # noqa: F401 - fixtures
from treu.auth.member_login import request_login_code
from treu.automations.service import process_events
from treu.clock import FixedClock
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.messaging.service import list_messages
from treu.programmes.service import Tenant, apply_programme
from treu.storage.uow import UnitOfWork
from treu.webhooks.service import create_webhook_endpoint
from treu.worker import WorkerPass, run_pass, run_worker

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")


def programme(new_uow: NewUow, tenant: Tenant) -> str:
    document = {
        "key": "laden",
        "name": "Laden am Eck",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "locale": "de",
        "automations": [
            {
                "key": "willkommen",
                "name": "Willkommen",
                "trigger": {"event": "member.enrolled"},
                "action": {"type": "message", "template": "welcome", "kind": "transactional"},
            },
            {
                "key": "crm",
                "name": "Ins CRM",
                "trigger": {"event": "member.enrolled"},
                "action": {"type": "webhook", "data": {"list": "neu"}},
            },
        ],
    }
    with new_uow() as uow:
        return apply_programme(uow, tenant_id=tenant.id, document=document).programme_id


def enrol(new_uow: NewUow, programme_id: str, email: str, **more: str) -> str:
    identifiers = {IdentifierKind.EMAIL: email}
    if "phone" in more:
        identifiers[IdentifierKind.PHONE] = more["phone"]
    with new_uow() as uow:
        return enrol_member(
            uow, programme_id=programme_id, identifiers_=identifiers, name="Jo", source="test"
        ).id


def test_one_pass_fires_the_automations_sends_the_email_and_delivers_the_webhook(
    new_uow: NewUow,
    clock: FixedClock,
    tenant: Tenant,
    smtp_server: SmtpServer,  # noqa: F811 - the fixture
    provider: Provider,  # noqa: F811 - the fixture
) -> None:
    clock.set(datetime(2026, 5, 4, 10, tzinfo=BERLIN))
    programme_id = programme(new_uow, tenant)
    with new_uow() as uow:
        create_webhook_endpoint(
            uow, tenant_id=tenant.id, url=f"{provider.url}/hooks", event_types=["automation.fired"]
        )
    jo = enrol(new_uow, programme_id, "jo@example.de")
    passes: list[WorkerPass] = []
    run_worker(new_uow, passes=1, tenant_id=tenant.id, on_pass=passes.append)
    [result] = passes
    assert result.events >= 1
    assert result.messages.sent == 1
    assert result.webhooks.sent == 1
    assert [m.subject for m in smtp_server.to("jo@example.de")] == ["Willkommen bei Laden am Eck!"]
    [hook] = provider.requests
    body = json.loads(hook.body)
    assert (body["type"], body["data"]["member_id"], body["data"]["data"]) == (
        "automation.fired",
        jo,
        {"list": "neu"},
    )
    run_worker(new_uow, passes=2, interval=0.01, tenant_id=tenant.id)
    assert len(smtp_server.received) == 1
    assert len(provider.requests) == 1


def test_a_login_code_is_emailed_once_and_an_expired_one_not_at_all(
    new_uow: NewUow,
    clock: FixedClock,
    tenant: Tenant,
    smtp_server: SmtpServer,  # noqa: F811 - the fixture
) -> None:
    clock.set(datetime(2026, 5, 4, 10, tzinfo=BERLIN))
    programme_id = programme(new_uow, tenant)
    enrol(new_uow, programme_id, "ina@example.de")
    run_pass(new_uow, tenant_id=tenant.id)  # the welcome e-mail
    smtp_server.received.clear()

    def ask(identifier: str) -> None:
        with new_uow() as uow:
            request_login_code(uow, programme_id=programme_id, identifier=identifier)

    ask("ina@example.de")
    run_pass(new_uow, tenant_id=tenant.id)
    run_pass(new_uow, tenant_id=tenant.id)
    [mail] = smtp_server.to("ina@example.de")
    assert mail.subject.startswith("Dein Anmeldecode: ")
    code = mail.subject.removeprefix("Dein Anmeldecode: ")
    assert code.isdigit()
    assert len(code) == 6
    assert "Er gilt 10 Minuten." in mail.text

    ask("ina@example.de")
    clock.advance(timedelta(minutes=11))  # the worker was down: the code has expired
    run_pass(new_uow, tenant_id=tenant.id)
    assert len(smtp_server.received) == 1


def test_a_login_code_asked_for_by_phone_goes_by_sms(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(datetime(2026, 5, 4, 10, tzinfo=BERLIN))
    programme_id = programme(new_uow, tenant)
    member = enrol(new_uow, programme_id, "tom@example.de", phone="+4915112345678")
    with new_uow() as uow:
        request_login_code(uow, programme_id=programme_id, identifier="+4915112345678")
    process_events(new_uow, tenant_id=tenant.id)
    with new_uow() as uow:
        found = list_messages(uow, tenant_id=tenant.id, member_id=member)
    codes = [(m.channel.value, m.kind.value) for m in found if m.template == "login_code"]
    assert codes == [("sms", "transactional")]
