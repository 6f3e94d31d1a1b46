"""The staff console in headless Chromium: a cashier at the till, a manager at member service
and at the programme document; roles and CSRF."""

from __future__ import annotations

import re

import pytest
import yaml
from playwright.sync_api import Page, expect
from web_support import CAPPUCCINO, Cafe

from treu.auth.member_login import issue_qr_token
from treu.auth.model import StaffRole
from treu.auth.staff import add_staff_user
from treu.config import get_settings
from treu.ledger.service import get_balances
from treu.members.model import MemberStatus
from treu.programmes.service import load_programme
from treu.rewards.model import VoucherStatus
from treu.rewards.service import list_vouchers
from treu.storage.uow import UnitOfWork

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery staple"


def staff(cafe: Cafe, role: StaffRole) -> str:
    email = f"{role.value}@{cafe.tenant_key}.example"
    with UnitOfWork(cafe.engine) as uow:
        add_staff_user(uow, tenant_id=cafe.tenant_id, email=email, role=role, password=PASSWORD)
    return email


def log_in(page: Page, cafe: Cafe, role: StaffRole) -> None:
    email = staff(cafe, role)
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("E-Mail").fill(email)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("heading", name="Programme")).to_be_visible()


def form_of(page: Page, selector: str) -> dict[str, str]:
    """The fields a form would send, as the page holds them now."""
    fields: dict[str, str] = page.eval_on_selector(
        selector, "f => Object.fromEntries(new FormData(f).entries())"
    )
    return fields


def points(cafe: Cafe, member_id: str) -> int:
    with UnitOfWork(cafe.engine) as uow:
        return get_balances(uow, tenant_id=cafe.tenant_id, member_id=member_id).available


def test_a_cashier_scans_a_member_records_a_purchase_and_uses_a_voucher(
    page: Page, cafe: Cafe
) -> None:
    member = cafe.enrol("kundin@kiezcafe.example", name="Käthe Schröder")
    log_in(page, cafe, StaffRole.CASHIER)
    expect(page.get_by_role("link", name="Programm")).to_have_count(0)  # no set-up for a cashier
    page.get_by_role("link", name="Kasse").click()

    with UnitOfWork(cafe.engine) as uow:  # what the member's phone shows right now
        token = issue_qr_token(
            uow,
            tenant_id=cafe.tenant_id,
            member_id=member.id,
            server_secret=get_settings().token_secret,
        ).token
    page.get_by_label(re.compile("Mitgliedscode")).fill(token)
    page.get_by_role("button", name="Mitglied finden").click()
    expect(page.get_by_role("heading", name=re.compile("Käthe Schröder"))).to_be_visible()
    expect(page.locator("#available")).to_have_text("0 Punkte")

    page.get_by_label("Bezahlter Betrag (EUR)").fill("12,50")
    sent = form_of(page, "form[action$='/purchase']")
    page.get_by_role("button", name="Einkauf erfassen").click()
    expect(page.get_by_role("status")).to_have_text("Einkauf erfasst: 12 Punkte gutgeschrieben.")
    expect(page.locator("#available")).to_have_text("12 Punkte")
    assert points(cafe, member.id) == 12

    # A double tap sends the same form (the same receipt number) again: it counts once.
    again = page.request.post(page.url.split("?")[0] + "/purchase", form=sent)
    assert again.ok
    assert points(cafe, member.id) == 12

    page.get_by_role("button", name=re.compile("Willkommens-Croissant verwenden")).click()
    expect(page.get_by_role("status")).to_contain_text("eingelöst")
    with UnitOfWork(cafe.engine) as uow:
        (croissant,) = list_vouchers(uow, tenant_id=cafe.tenant_id, member_id=member.id)
    assert croissant.status is VoucherStatus.USED


def test_a_cashier_is_told_when_a_code_is_expired_or_unknown(page: Page, cafe: Cafe) -> None:
    log_in(page, cafe, StaffRole.CASHIER)
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/till")
    page.get_by_label(re.compile("Mitgliedscode")).fill("tqr1.mbr_x.1.forged")
    page.get_by_role("button", name="Mitglied finden").click()
    expect(page.get_by_role("alert")).to_contain_text("Der Code ist ungültig")
    page.get_by_label(re.compile("Mitgliedscode")).fill("niemand@kiezcafe.example")
    page.get_by_role("button", name="Mitglied finden").click()
    expect(page.get_by_role("alert")).to_have_text("Kein Mitglied gefunden.")


def test_a_cashier_cannot_open_member_service_or_the_programme(page: Page, cafe: Cafe) -> None:
    log_in(page, cafe, StaffRole.CASHIER)
    for path in ("members", "document"):
        response = page.goto(f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/{path}")
        assert response is not None
        assert response.status == 403
        expect(page.get_by_role("heading", name="Nicht erlaubt")).to_be_visible()
    forged = page.request.post(
        f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/document", form={"text": "key: x"}
    )
    assert forged.status == 403


def test_a_manager_finds_a_member_adjusts_with_a_reason_and_blocks(page: Page, cafe: Cafe) -> None:
    member = cafe.enrol("stammgast@kiezcafe.example", name="Jörg Weiß")
    cafe.buy(member.id, CAPPUCCINO)
    log_in(page, cafe, StaffRole.MANAGER)
    page.get_by_role("link", name="Mitglieder").click()
    page.get_by_label(re.compile("E-Mail, Telefon")).fill("stammgast@kiezcafe.example")
    page.get_by_role("button", name="Suchen").click()
    expect(page.get_by_role("heading", name=re.compile("Jörg Weiß"))).to_be_visible()
    expect(page.locator("#history")).to_contain_text("3 Punkte für Einkauf vom")

    page.get_by_label("Punkte (negativ zum Abziehen)").fill("50")
    page.get_by_role("button", name="Korrigieren").click()  # no reason
    expect(page.locator("#reason-error")).to_have_text(
        "Bitte gib einen Grund an: Das Mitglied sieht ihn im Verlauf."
    )
    assert points(cafe, member.id) == 3
    page.get_by_label("Grund").fill("Kaffee verschüttet")
    page.get_by_role("button", name="Korrigieren").click()
    expect(page.locator("#available")).to_have_text("53 Punkte")
    expect(page.locator("#history")).to_contain_text("Grund: Kaffee verschüttet")
    assert points(cafe, member.id) == 53

    page.get_by_role("button", name="Mitglied sperren").click()
    expect(page.locator("#member-status")).to_have_text("gesperrt")
    assert cafe.member(member.id).status is MemberStatus.BLOCKED


def test_a_manager_imports_a_document_with_an_error_then_a_valid_one(
    page: Page, cafe: Cafe
) -> None:
    log_in(page, cafe, StaffRole.MANAGER)
    page.get_by_role("link", name="Programm", exact=True).click()
    page.get_by_role("link", name="Das ganze Dokument importieren oder exportieren").click()
    text = page.get_by_label("…oder hier bearbeiten").input_value()
    document = yaml.safe_load(text)
    assert document["key"] == "kiezcafe"

    document["rules"][0]["effect"]["points"] = 0
    page.get_by_label("…oder hier bearbeiten").fill(yaml.safe_dump(document, allow_unicode=True))
    page.get_by_role("button", name="Prüfen und speichern").click()
    errors = page.locator("#document-errors")
    expect(errors).to_contain_text("Nichts wurde gespeichert.")
    expect(errors).to_contain_text("rules.0.effect.points")
    with UnitOfWork(cafe.engine) as uow:
        assert load_programme(uow, cafe.programme_id).document.rules[0].effect.points == 1

    document["rules"][0]["effect"]["points"] = 2
    document["rules"][0]["name"] = "2 Punkte je Euro"
    page.get_by_label("…oder hier bearbeiten").fill(yaml.safe_dump(document, allow_unicode=True))
    page.get_by_role("button", name="Prüfen und speichern").click()
    expect(page.locator("#saved")).to_have_text("Als Version 2 gespeichert. Sie gilt ab jetzt.")
    with UnitOfWork(cafe.engine) as uow:
        rule = load_programme(uow, cafe.programme_id).document.rules[0]
    assert (rule.name, rule.effect.points) == ("2 Punkte je Euro", 2)

    with page.expect_download() as download:
        page.get_by_role("link", name="Herunterladen (YAML)").click()
    saved = yaml.safe_load(download.value.path().read_text(encoding="utf-8"))
    assert saved["rules"][0]["name"] == "2 Punkte je Euro"
    assert saved["name"] == "Kiezcafé Treue"


def test_a_wrong_password_is_refused(page: Page, cafe: Cafe) -> None:
    email = staff(cafe, StaffRole.OWNER)
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/login")
    page.get_by_label("E-Mail").fill(email)
    page.get_by_label("Passwort").fill("not the password")
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("alert")).to_have_text("Falsche E-Mail-Adresse oder falsches Passwort.")
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/")
    expect(page).to_have_url(re.compile(r"/login$"))
