"""The member portal in headless Chromium: log in with a code from the outbox, the QR card,
redeeming with confirmation, history in German and English, consents, data, CSRF, deletion."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_skeleton
from playwright.sync_api import Page, expect
from web_support import Cafe, log_in, member_with_history

from treu.auth.member_login import member_id_of_qr_token
from treu.errors import NotFound
from treu.ledger.service import get_balances
from treu.members.model import Member, MemberStatus
from treu.members.service import find_member
from treu.rewards.service import list_vouchers
from treu.storage.uow import UnitOfWork
from treu.web.qr import qr_svg

pytestmark = pytest.mark.browser
BERLIN = ZoneInfo("Europe/Berlin")


def test_a_member_logs_in_with_a_code_and_sees_balance_stamp_card_and_a_valid_qr(
    page: Page, cafe: Cafe
) -> None:
    member_id, email = member_with_history(cafe)
    log_in(page, cafe, member_id, email)

    expect(page.locator("#available")).to_have_text("43 Punkte")
    expect(page.get_by_role("heading", name="Hallo, Jürgen Müller!")).to_be_visible()
    card = page.locator("section.stamp-card")
    expect(card.get_by_role("heading", name="Kaffeekarte")).to_be_visible()
    expect(card.locator(".slot")).to_have_count(10)
    expect(card.locator(".slot.filled")).to_have_count(2)
    expect(card.get_by_text("2 von 10 Stempeln")).to_be_visible()
    expect(page.locator("#tier-name")).to_have_text("Stammgast")
    expect(page.get_by_text("Noch 55,30 € bis Kiezheld")).to_be_visible()
    # the full card's voucher and the welcome croissant
    expect(page.locator("#vouchers-title + ul li")).to_have_count(2)

    # The QR code is an SVG of a token the till accepts: signed for this tenant, this member.
    figure = page.locator("figure#qr")
    token = figure.get_attribute("data-token")
    assert token is not None
    assert token.startswith("tqr1.")
    with UnitOfWork(cafe.engine) as uow:
        assert member_id_of_qr_token(uow, tenant_id=cafe.tenant_id, token=token) == member_id
    drawn = figure.locator("svg path.qrline").get_attribute("d")
    assert drawn is not None
    assert f'd="{drawn}"' in qr_svg(token, label="x")


def test_the_qr_code_is_renewed_by_the_page_before_it_expires(page: Page, cafe: Cafe) -> None:
    member_id, email = member_with_history(cafe)
    page.clock.install()
    log_in(page, cafe, member_id, email)
    with page.expect_response(lambda r: r.url.endswith("/qr")) as renewed:
        page.clock.run_for(30_000)
    fresh = renewed.value.json()
    with UnitOfWork(cafe.engine) as uow:
        assert member_id_of_qr_token(uow, tenant_id=cafe.tenant_id, token=fresh["token"]) == (
            member_id
        )
    expect(page.locator("#qr-token")).to_have_text(fresh["token"])
    expect(page.locator("figure#qr")).to_have_attribute("data-token", fresh["token"])


def test_a_wrong_code_is_refused_with_a_message_and_no_session(page: Page, cafe: Cafe) -> None:
    member = cafe.enrol("falsch@kiezcafe.example")
    page.goto(cafe.portal + "/login")
    page.get_by_label("E-Mail-Adresse oder Telefonnummer").fill("falsch@kiezcafe.example")
    page.get_by_role("button", name="Code schicken").click()
    right = cafe.login_code(member.id)
    page.get_by_label("Code").fill("000000" if right != "000000" else "111111")
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Falscher oder abgelaufener Code. Bitte fordere einen neuen Code an."
    )
    page.goto(cafe.portal + "/")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_someone_who_is_no_member_sees_the_same_answer_as_a_member(page: Page, cafe: Cafe) -> None:
    page.goto(cafe.portal + "/login")
    page.get_by_label("E-Mail-Adresse oder Telefonnummer").fill("niemand@kiezcafe.example")
    page.get_by_role("button", name="Code schicken").click()
    expect(page.get_by_text("6-stelliger Code")).to_be_visible()


def test_a_member_redeems_a_reward_after_confirming_and_gets_a_voucher(
    page: Page, cafe: Cafe
) -> None:
    member_id, email = member_with_history(cafe)
    log_in(page, cafe, member_id, email)
    page.get_by_role("link", name="Prämien").click()
    expect(page.get_by_text("Dein Kontostand: 43 Punkte")).to_be_visible()
    expect(page.get_by_text("Noch 7 Punkte")).to_be_visible()  # Stück Kuchen costs 50
    page.get_by_role("link", name="Gratis Kaffee einlösen").click()

    expect(page.get_by_role("heading", name="Gratis Kaffee einlösen?")).to_be_visible()
    expect(page.get_by_text("13 Punkte", exact=True)).to_be_visible()  # the balance afterwards
    with UnitOfWork(cafe.engine) as uow:  # nothing happens before the confirmation
        assert get_balances(uow, tenant_id=cafe.tenant_id, member_id=member_id).available == 43
    confirmation_url = page.url
    sent: dict[str, str] = page.eval_on_selector(
        "form[action$='/redeem']", "f => Object.fromEntries(new FormData(f).entries())"
    )
    page.get_by_role("button", name="Ja, einlösen").click()

    expect(page.get_by_role("status")).to_have_text(
        "Eingelöst! Zeig diesen Gutschein an der Kasse."
    )
    code = page.locator("#voucher-code").inner_text()
    expect(page.locator("#voucher-qr svg")).to_be_visible()
    with UnitOfWork(cafe.engine) as uow:
        assert get_balances(uow, tenant_id=cafe.tenant_id, member_id=member_id).available == 13
        mine = list_vouchers(uow, tenant_id=cafe.tenant_id, member_id=member_id)
    assert [v.reward_key for v in mine if v.code == code] == ["gratis-kaffee"]

    # A double tap sends the confirmation (its attempt id) again: it redeems once.
    again = page.request.post(confirmation_url, form=sent)
    assert again.ok
    with UnitOfWork(cafe.engine) as uow:
        assert get_balances(uow, tenant_id=cafe.tenant_id, member_id=member_id).available == 13
        assert len(list_vouchers(uow, tenant_id=cafe.tenant_id, member_id=member_id)) == len(mine)

    page.get_by_role("link", name="Karte", exact=True).click()
    expect(page.locator("#available")).to_have_text("13 Punkte")
    expect(page.locator("#vouchers-title + ul")).to_contain_text("Gratis Kaffee")


def test_history_says_why_in_german_and_the_switch_turns_it_english(page: Page, cafe: Cafe) -> None:
    member_id, email = member_with_history(cafe)
    log_in(page, cafe, member_id, email)
    page.get_by_role("link", name="Verlauf").click()
    today = datetime.now(UTC).astimezone(BERLIN).date()
    day_de = format_skeleton("MMMMd", today, locale="de")
    expect(page.locator("ol.history")).to_contain_text(
        f"40 Punkte für Einkauf vom {day_de}, Regel: 1 Punkt je Euro"
    )
    expect(page.locator("ol.history")).to_contain_text(
        f"Stempelkarte voll am {day_de}: 10 Stempel wurden zum Gutschein"
    )

    page.get_by_role("button", name="English").click()
    expect(page).to_have_url(re.compile(r"/history$"))
    day_en = format_skeleton("MMMMd", today, locale="en")
    expect(page.locator("ol.history")).to_contain_text(
        f"40 points for the purchase of {day_en}, rule: 1 Punkt je Euro"
    )
    expect(page.get_by_role("link", name="Rewards")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "en"
    assert cafe.member(member_id).locale == "en"  # the member's choice, for every device


def test_a_member_changes_a_consent_and_downloads_their_data(page: Page, cafe: Cafe) -> None:
    member_id, email = member_with_history(cafe)
    log_in(page, cafe, member_id, email)
    page.get_by_role("link", name="Konto").click()
    expect(page.get_by_label("E-Mail", exact=True)).to_be_checked()
    page.get_by_label("E-Mail", exact=True).uncheck()
    page.get_by_label("SMS").check()
    page.get_by_role("button", name="Einstellungen speichern").click()
    expect(page.get_by_role("status")).to_have_text("Gespeichert.")
    assert cafe.member(member_id).consents == {"email": False, "sms": True}
    expect(page.get_by_label("SMS")).to_be_checked()

    with page.expect_download() as download:
        page.get_by_role("link", name="Meine Daten herunterladen (JSON)").click()
    path = download.value.path()
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["member"]["id"] == member_id
    assert data["member"]["name"] == "Jürgen Müller"  # UTF-8 all the way


def test_a_post_without_the_csrf_token_is_rejected_and_changes_nothing(
    page: Page, cafe: Cafe
) -> None:
    member_id, email = member_with_history(cafe)
    log_in(page, cafe, member_id, email)
    consents = cafe.member(member_id).consents
    # The browser's own cookies (the session) go along: only the token is missing or forged.
    missing = page.request.post(cafe.portal + "/consents", form={"consent_sms": "yes"})
    assert missing.status == 403
    assert "Formular abgelaufen" in missing.text()
    cookie = next(c for c in page.context.cookies() if c["name"] == "treu_csrf")
    forged = page.request.post(
        cafe.portal + "/consents",
        form={"consent_sms": "yes", "csrf_token": cookie["value"] + "x"},
    )
    assert forged.status == 403
    redeem = page.request.post(cafe.portal + "/rewards/gratis-kaffee/redeem", form={})
    assert redeem.status == 403
    assert cafe.member(member_id).consents == consents
    with UnitOfWork(cafe.engine) as uow:
        assert get_balances(uow, tenant_id=cafe.tenant_id, member_id=member_id).available == 43


def test_a_member_cannot_open_another_members_voucher(page: Page, cafe: Cafe) -> None:
    member_id, email = member_with_history(cafe)
    other = cafe.enrol()  # the welcome croissant is a voucher of theirs
    with UnitOfWork(cafe.engine) as uow:
        theirs = list_vouchers(uow, tenant_id=cafe.tenant_id, member_id=other.id)[0].code
    log_in(page, cafe, member_id, email)
    response = page.goto(f"{cafe.portal}/vouchers/{theirs}")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Seite nicht gefunden")).to_be_visible()


def test_a_member_deletes_their_account_after_confirming(page: Page, cafe: Cafe) -> None:
    member_id, email = member_with_history(cafe)
    log_in(page, cafe, member_id, email)
    page.get_by_role("link", name="Konto").click()
    page.get_by_role("link", name="Mein Konto löschen").click()
    page.get_by_label("Ja, mein Konto löschen und auf meine Punkte verzichten.").check()
    page.get_by_role("button", name="Endgültig löschen").click()
    expect(page.get_by_role("heading", name="Konto gelöscht")).to_be_visible()
    erased = cafe.member(member_id)
    assert erased.status is MemberStatus.ERASED
    assert erased.name is None
    page.goto(cafe.portal + "/")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_code_requests_for_one_address_are_limited(page: Page, cafe: Cafe) -> None:
    member = cafe.enrol(f"eilig@{cafe.tenant_key}.example")
    page.goto(cafe.portal + "/login")
    for _ in range(10):  # TREU_RATE_LIMIT_PER_LOGIN: 10 a minute
        page.get_by_label("E-Mail-Adresse oder Telefonnummer").fill(member.identifiers["email"])
        page.get_by_role("button", name="Code schicken").click()
        expect(page.get_by_text("6-stelliger Code")).to_be_visible()
        page.goto(cafe.portal + "/login")
    page.get_by_label("E-Mail-Adresse oder Telefonnummer").fill(member.identifiers["email"])
    page.get_by_role("button", name="Code schicken").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Zu viele Versuche. Bitte warte eine Minute und versuche es erneut."
    )


def test_a_guest_joins_in_the_portal_and_the_code_logs_them_in(page: Page, cafe: Cafe) -> None:
    def joined() -> Member | None:
        with UnitOfWork(cafe.engine) as uow:
            try:
                return find_member(
                    uow, programme_id=cafe.programme_id, reference="email:neu@kiezcafe.example"
                )
            except NotFound:
                return None

    page.goto(cafe.portal + "/login")
    page.get_by_role("link", name="Noch nicht dabei? Jetzt mitmachen").click()
    page.get_by_label("E-Mail-Adresse", exact=True).fill("Neu@Kiezcafe.example")
    page.get_by_label("Dein Name (freiwillig)").fill("Jörg Neuß")
    page.get_by_role("button", name="Mitmachen", exact=True).click()
    # without accepting the terms: a message at the box, and nobody enrolled
    expect(page.get_by_text("Bitte akzeptiere die Teilnahmebedingungen")).to_be_visible()
    assert joined() is None
    page.get_by_label("Ich akzeptiere die Teilnahmebedingungen").check()
    page.get_by_role("button", name="Mitmachen", exact=True).click()
    expect(page.get_by_text("6-stelliger Code")).to_be_visible()
    member = joined()
    assert member is not None
    assert (member.name, member.locale) == ("Jörg Neuß", "de")
    page.get_by_label("Code").fill(cafe.login_code(member.id))
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("heading", name="Zeig diesen Code an der Kasse")).to_be_visible()
    # joining again with the same address enrols nobody twice: it is a log-in
    page.context.clear_cookies()
    page.goto(cafe.portal + "/join")
    page.get_by_label("E-Mail-Adresse", exact=True).fill("neu@kiezcafe.example")
    page.get_by_label("Ich akzeptiere die Teilnahmebedingungen").check()
    page.get_by_role("button", name="Mitmachen", exact=True).click()
    expect(page.get_by_text("6-stelliger Code")).to_be_visible()
    assert joined() == member
