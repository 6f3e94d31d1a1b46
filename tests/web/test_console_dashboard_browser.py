"""The console's dashboard and audit log in headless Chromium (German): the period selector
changes the figures, every chart renders and has its table; staff actions are logged once, a
refused one not at all; a cashier sees neither page."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine
from test_console_browser import log_in, points
from web_support import CAPPUCCINO, Cafe, cafe_document

from treu.activities.model import PurchaseIn
from treu.activities.service import record_purchase
from treu.audit.service import list_actions
from treu.auth.model import StaffRole
from treu.clock import FixedClock
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import apply_programme, create_tenant
from treu.storage.uow import UnitOfWork

pytestmark = pytest.mark.browser


def past_cafe(engine: Engine, base: str) -> Cafe:
    """A café whose history lies in 2025: Anna buys in March and May, Ben in March only."""
    clock = FixedClock(datetime(2025, 1, 2, 9, tzinfo=UTC))
    key = f"cafe-{uuid.uuid4().hex[:8]}"
    with UnitOfWork(engine, clock) as uow:
        tenant = create_tenant(uow, key=key, name="Kiezcafé GmbH")
    with UnitOfWork(engine, clock) as uow:
        programme_id = apply_programme(
            uow, tenant_id=tenant.id, document=cafe_document()
        ).programme_id
    ids = {}
    for name in ("anna", "ben"):
        with UnitOfWork(engine, clock) as uow:
            ids[name] = enrol_member(
                uow,
                programme_id=programme_id,
                identifiers_={IdentifierKind.EMAIL: f"{name}@{key}.example"},
            ).id
    for name, day, total in (
        ("anna", datetime(2025, 3, 10, 9, tzinfo=UTC), "10.00"),
        ("ben", datetime(2025, 3, 12, 9, tzinfo=UTC), "20.00"),
        ("anna", datetime(2025, 5, 14, 9, tzinfo=UTC), "30.00"),
    ):
        clock.set(day)
        with UnitOfWork(engine, clock) as uow:
            record_purchase(
                uow,
                programme_id=programme_id,
                purchase=PurchaseIn(
                    external_id=f"bon-{uuid.uuid4().hex[:10]}",
                    currency="EUR",
                    total=Decimal(total),
                    store="kastanienallee",
                    channel="pos",
                ),
                member=ids[name],
            )
    return Cafe(engine, tenant.id, key, programme_id, base)


def tile(page: Page, kpi: str) -> str:
    text: str = page.locator(f"[data-kpi={kpi}] dd").first.inner_text()
    return text


def test_the_period_selector_changes_the_figures_and_every_chart_renders_with_its_table(
    page: Page, engine: Engine, server: str
) -> None:
    cafe = past_cafe(engine, server)
    log_in(page, cafe, StaffRole.MANAGER)
    page.get_by_role("link", name="Dashboard").click()  # on the console's home page
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()

    page.get_by_label("Bis (Tag)").fill("2025-05-31")
    page.get_by_label("Anzahl Zeiträume").fill("6")
    page.get_by_role("button", name="Anzeigen").click()
    expect(page.get_by_role("heading", name="Letzter Zeitraum: Mai 2025")).to_be_visible()
    assert tile(page, "members") == "2"
    assert tile(page, "active_members") == "1"  # only Anna bought in May
    assert tile(page, "aov_members") == "30,00\xa0€"
    expect(page.locator("[data-kpi=active_members] dt")).to_have_text("Aktive Mitglieder")

    page.get_by_label("Zeitraum", exact=True).select_option("year")
    page.get_by_role("button", name="Anzeigen").click()
    expect(page.get_by_role("heading", name="Letzter Zeitraum: 2025")).to_be_visible()
    assert tile(page, "active_members") == "2"  # both bought in 2025
    assert tile(page, "aov_members") == "20,00\xa0€"
    assert tile(page, "repeat_purchase_rate") == "50,0\xa0%"  # Anna twice, Ben once

    charts = page.locator("figure.chart")
    expect(charts).to_have_count(5)
    for i in range(5):
        figure = charts.nth(i)
        image = figure.locator("img")
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")
        assert (image.get_attribute("alt") or "").startswith("Diagramm: ")
        figure.get_by_text("Werte als Tabelle").click()
        expect(figure.locator("table")).to_be_visible()
        expect(figure.locator("tbody tr").last.locator("th")).to_have_text("2025")
    scripts = page.evaluate(
        "performance.getEntriesByType('resource')"
        ".filter(e => e.initiatorType === 'script')"
        ".reduce((n, e) => n + e.decodedBodySize, 0)"
    )
    assert scripts < 300_000  # the budget per page; the charts need none
    members = page.locator("#chart-members table")
    expect(members.locator("thead")).to_contain_text("Aktive Mitglieder")
    expect(members.locator("tbody tr").last).to_contain_text("2")

    page.get_by_label("Filiale").select_option("kastanienallee")
    page.get_by_role("button", name="Anzeigen").click()
    expect(page.get_by_text("Eine Filiale:")).to_be_visible()
    assert tile(page, "active_members") == "2"  # every purchase was at the Kastanienallee
    assert tile(page, "points_issued") == "–"  # points are kept per programme


def test_a_console_adjustment_is_logged_once_and_a_refused_one_not_at_all(
    page: Page, cafe: Cafe
) -> None:
    member = cafe.enrol(name="Jörg Weiß")
    cafe.buy(member.id, CAPPUCCINO)
    log_in(page, cafe, StaffRole.MANAGER)
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/members/{member.id}")

    def entries() -> list[str]:
        with UnitOfWork(cafe.engine) as uow:
            return [e.action for e in list_actions(uow, tenant_id=cafe.tenant_id)]

    page.get_by_label("Punkte (negativ zum Abziehen)").fill("-500")  # more than Jörg has
    page.get_by_label("Grund").fill("Versehen")
    page.get_by_role("button", name="Korrigieren").click()
    expect(page.locator("#points-error")).to_be_visible()
    assert entries() == []
    page.get_by_label("Punkte (negativ zum Abziehen)").fill("50")
    page.get_by_label("Grund").fill("")  # no reason: refused by the form
    page.get_by_role("button", name="Korrigieren").click()
    expect(page.locator("#reason-error")).to_be_visible()
    assert entries() == []

    page.get_by_label("Punkte (negativ zum Abziehen)").fill("50")
    page.get_by_label("Grund").fill("Kaffee verschüttet")
    page.get_by_role("button", name="Korrigieren").click()
    expect(page.locator("#available")).to_have_text("53 Punkte")
    assert points(cafe, member.id) == 53
    with UnitOfWork(cafe.engine) as uow:
        [entry] = list_actions(uow, tenant_id=cafe.tenant_id)
    assert (entry.action, entry.subject) == ("member.adjusted", member.id)
    assert entry.details == {"points": 50, "reason": "Kaffee verschüttet"}
    assert entry.actor.startswith("staff:stf_")

    page.get_by_role("button", name="Mitglied sperren").click()
    expect(page.locator("#member-status")).to_have_text("gesperrt")
    assert entries() == ["member.blocked", "member.adjusted"]

    page.get_by_role("link", name="Protokoll").click()
    rows = page.locator("#audit tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Mitglied gesperrt")
    expect(rows.last).to_contain_text("Punkte korrigiert")
    expect(rows.last).to_contain_text("Grund: Kaffee verschüttet")
    expect(rows.last).to_contain_text(f"manager@{cafe.tenant_key}.example")
    page.get_by_label("Mitglieds-ID").fill("mbr_nobody")
    page.get_by_role("button", name="Anzeigen").click()
    expect(page.get_by_text("Noch keine Aktionen des Personals protokolliert.")).to_be_visible()


def test_till_actions_are_logged_with_the_receipt(page: Page, cafe: Cafe) -> None:
    member = cafe.enrol()
    log_in(page, cafe, StaffRole.CASHIER)
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/till/m/{member.id}")
    page.get_by_label("Bezahlter Betrag (EUR)").fill("12,50")
    page.get_by_role("button", name="Einkauf erfassen").click()
    expect(page).to_have_url(re.compile(r"earned="))
    with UnitOfWork(cafe.engine) as uow:
        [entry] = list_actions(uow, tenant_id=cafe.tenant_id)
    assert entry.action == "purchase.recorded"
    assert entry.details["total"] == "12.50"
    assert entry.details["receipt"].startswith("till-")


def test_a_cashier_sees_neither_the_dashboard_nor_the_audit_log(page: Page, cafe: Cafe) -> None:
    log_in(page, cafe, StaffRole.CASHIER)
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/till")
    expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
    expect(page.get_by_role("link", name="Protokoll")).to_have_count(0)
    for path in ("dashboard", "audit"):
        response = page.goto(f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/{path}")
        assert response is not None
        assert response.status == 403
        expect(page.get_by_role("heading", name="Nicht erlaubt")).to_be_visible()
