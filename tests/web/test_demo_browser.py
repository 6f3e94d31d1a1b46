"""``treu demo``: the logins it prints really work — the manager and the cashier in the
console, the member in the portal (through the demo-only shortcut) and in the widget."""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from rich.console import Console
from sqlalchemy import Engine

from serving import serve_app
from treu.api.app import create_app
from treu.demo import demo_app, demo_logins, open_demo, print_logins
from treu.storage.engine import make_engine

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The demo on a SQLite file of its own (a small one), served; its address and what it
    printed."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('demo')) / 'demo.db'}"
    engine = make_engine(url)
    quiet = Console(file=StringIO())
    open_demo(engine, quiet, url, members=3, days=2)
    open_demo(engine, quiet, url, members=3, days=2)  # a second start seeds nothing
    demo_logins(engine)  # a second start: the staff users exist already
    logins = demo_logins(engine)
    with serve_app(demo_app(engine, logins)) as base:
        printed = StringIO()
        print_logins(Console(file=printed, width=300), base, logins)
        yield base, printed.getvalue()
    engine.dispose()


def line(printed: str, pattern: str) -> re.Match[str]:
    found = re.search(pattern, printed)
    assert found, f"not printed: {pattern}\n{printed}"
    return found


@pytest.mark.parametrize(("role", "sees"), [("manager", "Programm"), ("cashier", "Kasse")])
def test_the_printed_staff_logins_open_the_console(
    page: Page, demo: tuple[str, str], role: str, sees: str
) -> None:
    _base, printed = demo
    console = line(printed, r"Staff console\s+(\S+)").group(1)
    email, password = line(printed, rf"{role}\s+(\S+)\s+password: (\S+)").groups()

    page.goto(console)
    page.get_by_label("E-Mail").fill(email)
    page.get_by_label("Passwort").fill(password)
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("heading", name="Kiezcafé Treue")).to_be_visible()
    expect(page.get_by_role("main").get_by_role("link", name=sees, exact=True)).to_be_visible()


def test_the_printed_member_link_logs_the_member_into_the_portal(
    page: Page, demo: tuple[str, str]
) -> None:
    _base, printed = demo
    portal = line(printed, r"Member portal\s+(\S+)").group(1)
    shortcut = line(printed, r"at once: (\S+/portal)").group(1)

    page.goto(portal)
    expect(page).to_have_url(re.compile(r"/login$"))  # no session yet
    page.goto(shortcut)
    expect(page.get_by_role("heading", name="Hallo, Mia A.!")).to_be_visible()
    expect(page.get_by_role("heading", name="Zeig diesen Code an der Kasse")).to_be_visible()


def test_the_printed_widget_pages_show_a_guest_and_the_member(
    page: Page, demo: tuple[str, str]
) -> None:
    _base, printed = demo
    guest = line(printed, r"Widget demo\s+(\S+)").group(1)
    member = line(printed, r"(\S+/shop)\s+\(as").group(1)

    page.goto(guest)
    expect(page.get_by_role("link", name="Jetzt mitmachen")).to_be_visible()
    page.goto(member)
    expect(page.locator("[data-treu=balance]")).to_have_text(re.compile(r"^\d+ Punkte$"))


def test_the_shortcuts_exist_only_in_the_demo(demo: tuple[str, str], engine: Engine) -> None:
    served = {getattr(r, "path", "") for r in create_app(engine).routes}  # what `treu serve` runs
    assert not any(path.startswith("/demo") for path in served)
    assert "/demo/" in demo[1]
