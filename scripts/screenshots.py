"""`make screenshots`: PNGs of the main pages for the README, into docs/screenshots/.

Seeds the Kiezcafé demo (``treu demo``'s data) into a temporary SQLite file, adds an owner to
the console, serves the application on a free local port and takes the pictures with Playwright
driving Debian's chromium (``TREU_CHROMIUM``, default /usr/bin/chromium) — the same browser the
tests use; Playwright's own browser download is never used.

To add a page, add a :class:`Shot` to ``SHOTS``: a file name, the area (``portal`` pages are
taken as a member on a phone, ``console`` pages as the owner on a laptop), the path under the
area's prefix (``{member}`` is the demo member's id) and, if needed, a step that runs on the
page before the picture.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--lang de]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import ViewportSize

PASSWORD = "screenshots-only-demo-password"  # noqa: S105 - a throwaway database
OWNER = "inhaberin@kiezcafe.example"
MEMBER = "mia@kiezcafe.example"
PHONE: ViewportSize = {"width": 390, "height": 844}
LAPTOP: ViewportSize = {"width": 1280, "height": 960}


@dataclass(frozen=True)
class Shot:
    name: str  # docs/screenshots/<name>.png
    area: str  # "portal" (a member, on a phone) or "console" (the owner, on a laptop)
    path: str  # under /portal/demo/kiezcafe or /console/demo; {member}: the demo member
    before: Callable[[Any], None] | None = None  # runs on the Playwright page first
    full_page: bool = False


SHOTS: list[Shot] = [
    Shot("portal-card", "portal", "/"),
    Shot("portal-history", "portal", "/history"),
    Shot("console-till", "console", "/kiezcafe/till/m/{member}"),
    Shot("console-member", "console", "/kiezcafe/members/{member}"),
    Shot("console-dashboard", "console", "/kiezcafe/dashboard"),
    Shot("console-audit", "console", "/kiezcafe/audit"),
    Shot("console-setup", "console", "/kiezcafe/setup"),
    Shot("console-rule", "console", "/kiezcafe/setup/rules/item/punkte"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--lang", default="de", choices=["de", "en"])
    parser.add_argument("--only", nargs="*", help="names of the shots to take (default: all)")
    args = parser.parse_args(argv)
    chromium = os.environ.get("TREU_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        print(f"{chromium} is missing: `make install` installs Debian's chromium", file=sys.stderr)
        return 3
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="treu-screenshots-") as tmp:
        os.environ["TREU_DATABASE_URL"] = f"sqlite:///{tmp}/demo.db"
        shots = [s for s in SHOTS if not args.only or s.name in args.only]
        for path in take(shots, chromium=chromium, out=args.out, lang=args.lang):
            print(f"{path}  {path.stat().st_size // 1024} KB")
    return 0


def take(shots: list[Shot], *, chromium: str, out: Path, lang: str) -> list[Path]:
    import uvicorn
    from playwright.sync_api import sync_playwright
    from rich.console import Console

    from treu.api.app import create_app
    from treu.demo import TENANT, run_demo
    from treu.storage.engine import make_engine

    run_demo(Console(quiet=True), serve=False)
    engine = make_engine(os.environ["TREU_DATABASE_URL"])
    member_id = _prepare(engine)
    app = create_app(engine)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    written: list[Path] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium)
            locale = {"de": "de-DE", "en": "en-GB"}[lang]
            portal = browser.new_context(locale=locale, viewport=PHONE)
            console = browser.new_context(locale=locale, viewport=LAPTOP)
            _portal_login(portal.new_page(), f"{base}/portal/{TENANT}/kiezcafe", engine)
            _console_login(console.new_page(), f"{base}/console/{TENANT}")
            for shot in shots:
                context = portal if shot.area == "portal" else console
                prefix = (
                    f"{base}/portal/{TENANT}/kiezcafe"
                    if shot.area == "portal"
                    else f"{base}/console/{TENANT}"
                )
                page = context.new_page()
                page.goto(prefix + shot.path.format(member=member_id))
                page.wait_for_load_state("networkidle")
                if shot.before is not None:
                    shot.before(page)
                path = out / f"{shot.name}.png"
                page.screenshot(path=str(path), full_page=shot.full_page)
                written.append(path)
                page.close()
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
    return written


def _prepare(engine: Any) -> str:
    """The owner of the console, a few staff actions for the audit log; the demo member's id."""
    from treu.audit.model import AuditAction
    from treu.audit.service import record_action
    from treu.auth.model import StaffRole
    from treu.auth.staff import add_staff_user
    from treu.demo import TENANT
    from treu.ledger.service import adjust_points
    from treu.members.service import find_member
    from treu.programmes.service import find_programme_id, find_tenant
    from treu.storage.uow import UnitOfWork

    with UnitOfWork(engine) as uow:
        tenant = find_tenant(uow, TENANT)
        assert tenant is not None
        programme_id = find_programme_id(uow, tenant_id=tenant.id, key="kiezcafe")
        member = find_member(uow, programme_id=programme_id, reference=f"email:{MEMBER}")
    with UnitOfWork(engine) as uow:
        owner = add_staff_user(
            uow,
            tenant_id=tenant.id,
            email=OWNER,
            role=StaffRole.OWNER,
            password=PASSWORD,
            name="Ayşe Demir",
        )
    actor = f"staff:{owner.id}"
    with UnitOfWork(engine) as uow:
        record_action(
            uow,
            tenant_id=tenant.id,
            programme_id=programme_id,
            actor=actor,
            action=AuditAction.MEMBER_ADJUSTED,
            subject=member.id,
            details={"points": 25, "reason": "Kaffee verschüttet"},
        )
        adjust_points(
            uow,
            tenant_id=tenant.id,
            member_id=member.id,
            points=25,
            reason="Kaffee verschüttet",
            actor=actor,
            idempotency_key="screenshots:adjust",
        )
    return member.id


def _console_login(page: Any, prefix: str) -> None:
    page.goto(f"{prefix}/login")
    page.locator("#email").fill(OWNER)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(f"{prefix}/")
    page.close()


def _portal_login(page: Any, prefix: str, engine: Any) -> None:
    from treu.demo import TENANT
    from treu.outbox.service import list_events
    from treu.programmes.service import find_tenant
    from treu.storage.uow import UnitOfWork

    page.goto(f"{prefix}/login")
    page.locator("#identifier").fill(MEMBER)
    page.locator("#identifier").press("Enter")
    page.locator("#code").wait_for()
    with UnitOfWork(engine) as uow:
        tenant = find_tenant(uow, TENANT)
        assert tenant is not None
        events = list_events(uow, tenant_id=tenant.id, type="member.login_code")
    page.locator("#code").fill(events[-1]["payload"]["code"])
    page.locator("#code").press("Enter")
    page.wait_for_url(f"{prefix}/")
    page.close()


if __name__ == "__main__":
    raise SystemExit(main())
