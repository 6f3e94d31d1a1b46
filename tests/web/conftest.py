"""Web fixtures: the application under a real uvicorn server, and headless Chromium.

The browser is Debian's ``chromium`` (``make install`` installs it), driven by Playwright with
``executable_path``: Playwright's own browser download is never used. Like the database, the
browser is not optional: without it the run stops with an error rather than skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from sqlalchemy import Engine
from web_support import Cafe, make_cafe

from serving import serve_app
from treu.api.app import create_app
from treu.api.ratelimit import RateLimiter

CHROMIUM = os.environ.get("TREU_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def server(engine: Engine) -> Iterator[str]:
    app = create_app(engine)
    # One browser logs in many times from one address; the limit per identifier stays real.
    app.state.rate_limiter = RateLimiter(per_key="100000/minute", per_address="100000/minute")
    with serve_app(app) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.exit(f"{CHROMIUM} is missing: `make install` installs Debian's chromium", 3)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(locale="de-DE", accept_downloads=True)
    made.set_default_timeout(10_000)
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def cafe(engine: Engine, server: str) -> Cafe:
    return make_cafe(engine, server)
