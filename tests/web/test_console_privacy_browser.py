"""A member's page in headless Chromium beyond the card: tier history, message log, and the
member's data rights — a manager downloads the export and erases a member (the id typed
again); a cashier may do neither."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from test_console_browser import log_in, points
from web_support import CAPPUCCINO, Cafe

from messaging_support import SmtpServer
from treu.audit.model import AuditAction
from treu.audit.service import list_actions
from treu.auth.model import StaffRole
from treu.members.model import MemberStatus
from treu.messaging.dispatcher import dispatch
from treu.messaging.model import MessageChannel, MessageKind
from treu.messaging.service import enqueue_message
from treu.programmes.service import load_programme
from treu.storage.uow import UnitOfWork

pytestmark = pytest.mark.browser


def enqueue(cafe: Cafe, member_id: str, template: str, channel: str, kind: MessageKind) -> str:
    """Queue a message for the member as an automation would; returns why it was suppressed."""
    with UnitOfWork(cafe.engine) as uow:
        queued = enqueue_message(
            uow,
            load_programme(uow, cafe.programme_id),
            member_id=member_id,
            template=template,
            channel=channel,
            kind=kind,
            dedupe_key=f"{template}:{member_id}",
        )
        uow.commit()
    return str(queued.reason)


def audit_of(cafe: Cafe, member_id: str, action: AuditAction) -> list[dict[str, object]]:
    with UnitOfWork(cafe.engine) as uow:
        found = list_actions(uow, tenant_id=cafe.tenant_id, subject=member_id, action=action)
    return [{"actor": e.actor, **e.details} for e in found]


def test_a_manager_sees_the_tier_history_and_the_message_log(
    page: Page, cafe: Cafe, smtp_server: SmtpServer
) -> None:
    member = cafe.enrol("stammgast@kiezcafe.example", name="Käthe Schröder")
    cafe.buy(member.id, CAPPUCCINO.model_copy(update={"quantity": 30}))  # 102.00 EUR: Kiezheld
    enqueue(cafe, member.id, "welcome", MessageChannel.EMAIL, MessageKind.TRANSACTIONAL)
    dispatch(lambda: UnitOfWork(cafe.engine), tenant_id=cafe.tenant_id)
    welcome = [m for m in smtp_server.to("stammgast@kiezcafe.example") if "Willkommen" in m.subject]
    assert welcome, "the welcome e-mail was not sent"
    why = enqueue(cafe, member.id, "win_back", MessageChannel.SMS, MessageKind.MARKETING)
    assert why == "no_address"  # no phone number: stored as suppressed, never sent
    log_in(page, cafe, StaffRole.MANAGER)
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/members/{member.id}")

    expect(page.get_by_role("heading", name="Stufenverlauf")).to_be_visible()
    upgrade = page.locator("#tier-history tbody tr").first
    expect(upgrade).to_contain_text("Stammgast → Kiezheld")
    expect(upgrade).to_contain_text("Aufstieg")

    expect(page.get_by_role("heading", name="Nachrichtenprotokoll")).to_be_visible()
    rows = page.locator("#message-log tbody tr")
    expect(rows.first).to_contain_text("win_back")  # newest first
    expect(rows.first).to_contain_text("nicht gesendet: keine Adresse")
    sent = rows.filter(has_text="welcome")
    expect(sent).to_contain_text("Willkommen bei")
    expect(sent.locator("td").last).to_have_text("gesendet")


def test_a_manager_downloads_everything_held_about_a_member(page: Page, cafe: Cafe) -> None:
    member = cafe.enrol("export@kiezcafe.example", name="Erika Export")
    cafe.buy(member.id, CAPPUCCINO.model_copy(update={"quantity": 3}))
    log_in(page, cafe, StaffRole.MANAGER)
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/members/{member.id}")

    with page.expect_download() as started:
        page.get_by_role("link", name=re.compile("Alle gespeicherten Daten")).click()
    download = started.value
    assert download.suggested_filename == f"treu-{member.id}.json"
    data = json.loads(Path(download.path()).read_text("utf-8"))
    assert data["format"] == "treu.member-export/1"
    assert data["member"]["id"] == member.id
    assert data["member"]["identifiers"] == {"email": "export@kiezcafe.example"}
    assert data["balances"]["available"] == points(cafe, member.id) > 0
    (entry,) = audit_of(cafe, member.id, AuditAction.MEMBER_EXPORTED)
    assert str(entry["actor"]).startswith("staff:")


def test_a_manager_erases_a_member_only_with_the_id_typed_again(page: Page, cafe: Cafe) -> None:
    member = cafe.enrol("weg@kiezcafe.example", name="Wilma Weg")
    cafe.buy(member.id, CAPPUCCINO.model_copy(update={"quantity": 9}))  # 30 points
    log_in(page, cafe, StaffRole.MANAGER)
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/members/{member.id}")
    reason = "Bitte per E-Mail vom 23.11."
    why = page.get_by_label(re.compile("Warum wird das Mitglied gelöscht"))

    why.fill(reason)
    page.get_by_label(re.compile("Zur Bestätigung")).fill("weg@kiezcafe.example")
    page.get_by_role("button", name="Mitglied löschen").click()
    error = page.locator("#erase-confirm-error")
    expect(error).to_contain_text("genau wie oben angezeigt")
    expect(page.get_by_label(re.compile("Zur Bestätigung"))).to_have_attribute(
        "aria-invalid", "true"
    )
    still = cafe.member(member.id)
    assert still.status is MemberStatus.ACTIVE
    assert still.identifiers == {"email": "weg@kiezcafe.example"}
    assert still.name == "Wilma Weg"
    assert points(cafe, member.id) == 30
    assert audit_of(cafe, member.id, AuditAction.MEMBER_ERASED) == []

    expect(why).to_have_value(reason)  # kept for the second try
    page.get_by_label(re.compile("Zur Bestätigung")).fill(member.id)
    page.get_by_role("button", name="Mitglied löschen").click()
    expect(page).to_have_url(re.compile(rf"/members/{member.id}\?erased=30$"))
    expect(page.locator("#erased")).to_contain_text("30 Punkte sind verfallen")
    expect(page.locator("#member-status")).to_have_text("gelöscht")
    expect(page.get_by_role("button", name="Mitglied löschen")).to_have_count(0)
    gone = cafe.member(member.id)
    assert gone.status is MemberStatus.ERASED
    assert (gone.name, gone.identifiers) == (None, {})
    assert points(cafe, member.id) == 0
    (entry,) = audit_of(cafe, member.id, AuditAction.MEMBER_ERASED)
    assert entry["reason"] == reason


def test_a_cashier_may_neither_export_nor_erase(page: Page, cafe: Cafe) -> None:
    member = cafe.enrol()
    log_in(page, cafe, StaffRole.CASHIER)
    console = f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe"
    answer = page.goto(f"{console}/members/{member.id}/export.json")
    assert answer is not None
    assert answer.status == 403

    page.goto(f"{console}/till")  # a page of the cashier's, for a valid form token
    token = page.locator("input[name=csrf_token]").first.input_value()
    erased = page.request.post(
        f"{console}/members/{member.id}/erase",
        form={"csrf_token": token, "confirm": member.id, "erase_reason": "test"},
    )
    assert erased.status == 403
    assert cafe.member(member.id).status is MemberStatus.ACTIVE
    assert audit_of(cafe, member.id, AuditAction.MEMBER_EXPORTED) == []
    assert audit_of(cafe, member.id, AuditAction.MEMBER_ERASED) == []
