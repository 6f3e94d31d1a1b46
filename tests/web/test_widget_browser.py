"""The website widget in headless Chromium, embedded in a shop's page on another origin: a
member sees their points, a guest the sign-up, no cookie is ever set, a token shows only its
own member, and a site the programme does not list cannot read anything."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from web_support import CAPPUCCINO, KUCHEN, Cafe, cafe_document

from serving import StaticSite
from treu.auth.model import Scope
from treu.auth.service import create_api_key
from treu.ledger.service import get_balances
from treu.programmes.service import apply_programme
from treu.storage.uow import UnitOfWork

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def shop() -> Iterator[StaticSite]:
    site = StaticSite()
    yield site
    site.close()


@pytest.fixture
def listed(cafe: Cafe, shop: StaticSite) -> Cafe:
    """The café, with the shop's site (as 127.0.0.1, not as localhost) in ``widget.origins``."""
    document = cafe_document() | {"widget": {"origins": [shop.origin()]}}
    with UnitOfWork(cafe.engine) as uow:
        apply_programme(uow, tenant_id=cafe.tenant_id, document=document)
    return cafe


def shop_page(shop: StaticSite, cafe: Cafe, name: str, token: str | None) -> str:
    """What the shop's server renders: its own page with the widget's script tag in it."""
    attribute = f' data-token="{token}"' if token else ""
    shop.pages[f"/{name}.html"] = (
        '<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Shop</title></head>'
        "<body><h1>Unser Shop</h1>"
        f'<script src="{cafe.base}/widget/v1.js" data-programme="{cafe.tenant_key}/kiezcafe"'
        f"{attribute} async></script></body></html>"
    )
    return f"/{name}.html"


def widget_token(cafe: Cafe, member_id: str) -> str:
    """What the shop's backend does, server to server, with its integration key."""
    with UnitOfWork(cafe.engine) as uow:
        key = create_api_key(uow, tenant_id=cafe.tenant_id, scope=Scope.INTEGRATION, name="shop")
    status, body = call(cafe, "POST", f"/v1/members/{member_id}/tokens", key.token, {"minutes": 5})
    assert status == 201, body
    token: str = body["token"]
    return token


def call(
    cafe: Cafe,
    method: str,
    path: str,
    token: str | None = None,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        cafe.base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        with error:
            raw = error.read()
        return error.code, json.loads(raw) if raw else {}


def points(cafe: Cafe, member_id: str) -> int:
    with UnitOfWork(cafe.engine) as uow:
        return get_balances(uow, tenant_id=cafe.tenant_id, member_id=member_id).available


def no_cookies(page: Page, context: BrowserContext) -> None:
    assert page.evaluate("document.cookie") == ""
    assert context.cookies() == []


def test_a_logged_in_customer_sees_their_points_on_the_shop_page_and_no_cookie_is_set(
    page: Page, context: BrowserContext, listed: Cafe, shop: StaticSite
) -> None:
    anna = listed.enrol(name="Anna Aal")
    listed.buy(anna.id, CAPPUCCINO.model_copy(update={"quantity": 12}), KUCHEN)  # 43 points
    path = shop_page(shop, listed, "konto", widget_token(listed, anna.id))

    page.goto(shop.origin() + path)

    expect(page.locator("[data-treu=balance]")).to_have_text(f"{points(listed, anna.id)} Punkte")
    expect(page.get_by_role("heading", name="Kontostand")).to_be_visible()  # the page says lang=de
    rewards = page.locator("[data-treu=rewards] a")
    expect(rewards.first).to_have_attribute("href", f"{listed.portal}/rewards/gratis-kaffee/redeem")
    expect(page.locator(".treu-widget")).to_have_attribute("data-treu-state", "member")
    no_cookies(page, context)


def test_a_guest_sees_the_sign_up_call_to_action(
    page: Page, context: BrowserContext, listed: Cafe, shop: StaticSite
) -> None:
    path = shop_page(shop, listed, "gast", None)

    page.goto(shop.origin() + path)

    signup = page.get_by_role("link", name="Jetzt mitmachen")
    expect(signup).to_have_attribute("href", f"{listed.portal}/join")
    expect(page.locator("[data-treu=balance]")).to_have_count(0)
    no_cookies(page, context)


def test_a_token_shows_its_own_member_and_nobody_else(
    page: Page, listed: Cafe, shop: StaticSite
) -> None:
    anna, bernd = listed.enrol(name="Anna Aal"), listed.enrol(name="Bernd Barsch")
    listed.buy(bernd.id, CAPPUCCINO.model_copy(update={"quantity": 30}))  # Bernd: 102 points
    token = widget_token(listed, anna.id)
    path = shop_page(shop, listed, "anna", token)

    with page.expect_response(lambda r: "/widget/v1/" in r.url) as answer:
        page.goto(shop.origin() + path)
    expect(page.locator("[data-treu=balance]")).to_have_text("0 Punkte")
    seen = answer.value.text()
    assert "Anna Aal" in seen
    assert "Bernd" not in seen
    assert "102" not in seen

    # The token opens nothing of Bernd's through the API either, and writes nothing at all.
    assert call(listed, "GET", f"/v1/members/{bernd.id}/balances", token)[0] == 403
    assert call(listed, "GET", "/v1/me", token)[1]["id"] == anna.id
    assert call(listed, "POST", "/v1/me/qr-token", token)[0] == 403  # a widget token only reads


def test_a_site_not_listed_in_the_programme_cannot_read_the_widget(
    page: Page, listed: Cafe, shop: StaticSite
) -> None:
    anna = listed.enrol(name="Anna Aal")
    path = shop_page(shop, listed, "fremd", widget_token(listed, anna.id))

    page.goto(shop.origin("localhost") + path)  # another origin than the listed 127.0.0.1

    expect(page.locator(".treu-widget")).to_have_attribute("data-treu-state", "error")
    expect(page.locator("[data-treu=balance]")).to_have_count(0)
    elsewhere = {"Origin": shop.origin("localhost"), "Access-Control-Request-Method": "GET"}
    preflight = urllib.request.Request(
        f"{listed.base}/widget/v1/{listed.tenant_key}/kiezcafe", method="OPTIONS", headers=elsewhere
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(preflight, timeout=10)
    with refused.value as answer:
        assert answer.code == 403
        assert answer.headers.get("Access-Control-Allow-Origin") is None


def test_the_widget_demo_page_shows_the_widget_to_a_guest(page: Page, cafe: Cafe) -> None:
    page.goto(f"{cafe.base}/widget/demo/{cafe.tenant_key}/kiezcafe")
    expect(page.get_by_role("heading", name="Website-Widget")).to_be_visible()
    expect(page.get_by_role("link", name="Jetzt mitmachen")).to_be_visible()


def test_the_widget_script_is_small() -> None:
    from treu.web.widget import script

    assert len(script()) < 10_000  # bytes; the quality bar is 300 KB of JavaScript per page
