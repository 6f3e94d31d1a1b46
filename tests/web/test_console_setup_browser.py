"""Programme set-up in headless Chromium: a manager changes a rule (first with a mistake),
adds and deletes a reward and tries a basket before saving; in German, in English and on a phone."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import Dialog, Page, expect
from test_console_browser import log_in
from web_support import KUCHEN, Cafe

from treu.auth.model import StaffRole
from treu.programmes.service import load_programme
from treu.rewards.model import RewardKind
from treu.storage.uow import UnitOfWork

pytestmark = pytest.mark.browser


def open_set_up(page: Page, cafe: Cafe) -> None:
    log_in(page, cafe, StaffRole.MANAGER)
    page.get_by_role("link", name="Programm", exact=True).click()
    expect(page.get_by_role("heading", name="Programm einrichten", level=1)).to_be_visible()


def test_a_manager_edits_a_rule_with_a_mistake_sees_the_message_then_saves(
    page: Page, cafe: Cafe
) -> None:
    member = cafe.enrol()
    open_set_up(page, cafe)
    page.get_by_role("link", name="1 Punkt je Euro bearbeiten").click()
    points = page.get_by_label("Punkte", exact=True)
    expect(points).to_have_value("1")

    points.fill("0")
    page.get_by_role("button", name="Prüfen und speichern").click()
    expect(page.get_by_role("alert")).to_contain_text("Nichts wurde gespeichert.")
    expect(page.locator("#f-effect-points-error")).to_have_text("Muss größer als 0 sein.")
    expect(points).to_have_attribute("aria-invalid", "true")
    expect(points).to_have_attribute("aria-describedby", re.compile("f-effect-points-error"))
    assert cafe.buy(member.id, KUCHEN) == 3  # 3.90 €: the rule in force is unchanged

    points.fill("2")
    page.get_by_label("Name", exact=True).fill("2 Punkte je Euro")
    points.press("Enter")  # the keyboard saves: "Check and save" is the form's first button
    expect(page.locator("#saved")).to_have_text("Als Version 2 gespeichert. Sie gilt ab jetzt.")
    expect(page.locator("#section-rules")).to_contain_text("2 Punkte je Euro")

    assert cafe.buy(member.id, KUCHEN) == 7  # 3.90 € at 2 points per euro
    with UnitOfWork(cafe.engine) as uow:
        rule = load_programme(uow, cafe.programme_id).document.rules[0]
    assert (rule.key, rule.name) == ("punkte", "2 Punkte je Euro")


def test_a_manager_adds_a_reward(page: Page, cafe: Cafe) -> None:
    open_set_up(page, cafe)
    page.get_by_role("link", name="Hinzufügen: Prämien").click()
    expect(page.get_by_label("Wert (Rabatt)")).to_be_hidden()  # only for money off
    page.get_by_label("Schlüssel").fill("zwei-euro")
    page.get_by_label("Name", exact=True).fill("2 € Rabatt auf Gebäck")
    page.get_by_label("Art", exact=True).select_option(label="Rabatt in Euro")
    expect(page.get_by_label("Artikelnummer des Produkts")).to_be_hidden()
    page.get_by_label("Wert (Rabatt)").fill("2.00")
    page.get_by_label("Preis in Punkten").fill("40")
    page.get_by_role("button", name="Prüfen und speichern").click()
    expect(page.locator("#saved")).to_contain_text("Als Version 2 gespeichert")
    expect(page.locator("#section-rewards")).to_contain_text("2 € Rabatt auf Gebäck")

    with UnitOfWork(cafe.engine) as uow:
        added = load_programme(uow, cafe.programme_id).document.rewards[-1]
    assert (added.key, added.kind, added.value, added.cost) == (
        "zwei-euro",
        RewardKind.FIXED_DISCOUNT,
        Decimal("2.00"),
        40,
    )

    messages: list[str] = []

    def confirm(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    page.get_by_role("button", name="2 € Rabatt auf Gebäck löschen").click()
    expect(page.locator("#saved")).to_contain_text("Als Version 3 gespeichert")
    assert messages == [
        "2 € Rabatt auf Gebäck löschen? Das wird sofort als neue Version gespeichert."
    ]
    expect(page.locator("#section-rewards")).not_to_contain_text("2 € Rabatt auf Gebäck")


def test_a_basket_preview_shows_the_points_before_saving(page: Page, cafe: Cafe) -> None:
    open_set_up(page, cafe)
    page.get_by_role("link", name="1 Punkt je Euro bearbeiten").click()
    page.get_by_label("Punkte", exact=True).fill("3")
    page.get_by_label("Kategorie, Zeile 1").fill("Kuchen")
    page.get_by_label("Menge, Zeile 1").fill("2")
    page.get_by_label("Stückpreis, Zeile 1").fill("3,90")
    page.get_by_label("Stückpreis, Zeile 1").press("Enter")  # Enter in the basket: preview
    expect(page.locator("#preview-draft")).to_have_text("Mit dieser Regel: 23 Punkte")
    expect(page.locator("#preview-current")).to_have_text("Mit den geltenden Regeln: 7 Punkte")
    expect(page.get_by_label("Punkte", exact=True)).to_have_value("3")  # still being edited
    with UnitOfWork(cafe.engine) as uow:
        rule = load_programme(uow, cafe.programme_id).document.rules[0]
    assert rule.effect.points == 1  # type: ignore[union-attr]


def test_the_set_up_reads_in_german_and_english_and_fits_a_phone(page: Page, cafe: Cafe) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    open_set_up(page, cafe)
    for heading in ("Punkteregeln", "Prämien", "Stempelkarten", "Stufen", "Empfehlungen"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.locator("#section-rewards")).to_contain_text("Überraschung des Hauses")
    expect(page.locator("#section-returns")).to_contain_text(
        "Zurückgenommen, soweit der Kontostand reicht"
    )
    wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not wide, "the page scrolls sideways on a phone"

    page.get_by_role("link", name="Bearbeiten: Punkteverfall").click()
    expect(page.get_by_label("Punkte verfallen")).to_have_value("after")
    expect(page.get_by_label("Aufgerundet auf")).to_have_value("year_end")

    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Points expiry", level=1)).to_be_visible()
    expect(page.get_by_label("Rounded up to")).to_have_value("year_end")
