"""Widget tokens: a shop's backend gets a short-lived, read-only member token for the website
widget, server to server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from api_support import Tenant
from login_support import bearer


def widget_token(shop: Tenant, member_id: str, minutes: int = 15, who: str = "integration") -> str:
    r = shop.post(f"/v1/members/{member_id}/tokens", {"minutes": minutes}, who=who)
    assert r.status_code == 201, r.text
    assert r.json()["member_id"] == member_id
    token: str = r.json()["token"]
    return token


def test_the_shop_gets_a_token_that_reads_the_members_own_account_and_nothing_more(
    shop: Tenant,
) -> None:
    mia = shop.enrol("mia-widget@example.org", name="Mia")
    shop.buy(mia["id"], "12.00")
    r = shop.post(f"/v1/members/{mia['id']}/tokens", {"minutes": 5}, who="integration")
    assert r.status_code == 201, r.text
    lives = datetime.fromisoformat(r.json()["expires_at"]) - datetime.now().astimezone()
    assert timedelta(minutes=4) < lives <= timedelta(minutes=5)
    token = r.json()["token"]

    assert shop.client.get("/v1/me/balances", headers=bearer(token)).json()["available"] == 12
    assert shop.client.post("/v1/me/qr-token", headers=bearer(token)).status_code == 403
    assert shop.client.get(f"/v1/members/{mia['id']}", headers=bearer(token)).status_code == 403


def test_only_integration_and_admin_keys_get_one_and_only_for_their_own_members(
    shop: Tenant, new_tenant: Callable[[], Tenant]
) -> None:
    mia = shop.enrol("mia-widget-2@example.org")
    widget_token(shop, mia["id"], who="admin")
    for who in ("pos", "read"):
        r = shop.post(f"/v1/members/{mia['id']}/tokens", {}, who=who)
        assert r.status_code == 403, who
    other = new_tenant()
    r = other.post(f"/v1/members/{mia['id']}/tokens", {}, who="integration")
    assert r.status_code == 404


def test_a_token_lives_one_to_sixty_minutes(shop: Tenant) -> None:
    mia = shop.enrol("mia-widget-3@example.org")
    for minutes in (0, 61):
        r = shop.post(f"/v1/members/{mia['id']}/tokens", {"minutes": minutes}, who="integration")
        assert r.status_code == 422, minutes


def test_an_erased_member_gets_no_token_and_their_old_one_stops_working(shop: Tenant) -> None:
    mia = shop.enrol("mia-widget-4@example.org")
    token = widget_token(shop, mia["id"])
    r = shop.post(f"/v1/members/{mia['id']}/erase", {"reason": "asked", "confirm": mia["id"]})
    assert r.status_code == 200, r.text

    assert shop.post(f"/v1/members/{mia['id']}/tokens", {}, who="integration").status_code == 404
    assert shop.client.get("/v1/me", headers=bearer(token)).status_code == 401
