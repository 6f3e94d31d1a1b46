"""Member QR tokens: the portal shows one (a new one every 30 seconds), the till scans it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from api_support import Tenant, make_tenant
from fastapi.testclient import TestClient
from login_support import bearer, member_token
from sqlalchemy import Engine

from treu.api.app import create_app
from treu.api.ratelimit import RateLimiter
from treu.clock import FixedClock


def qr(shop: Tenant, token: str) -> str:
    r = shop.client.post("/v1/me/qr-token", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["refresh_in"] == 30
    found: str = r.json()["token"]
    return found


def test_the_till_scans_the_qr_code_mia_shows_on_her_phone(shop: Tenant, engine: Engine) -> None:
    mia = shop.enrol("mia-qr@example.org", name="Mia")
    shop.buy(mia["id"], "12.00")
    token = member_token(engine, shop, mia, "mia-qr@example.org")
    shown = qr(shop, token)
    assert shown.startswith("tqr1.")
    # an Idempotency-Key is not stored for a member (only per API key), and does no harm
    again = shop.client.post(
        "/v1/me/qr-token", headers={**bearer(token), "Idempotency-Key": "qr-1"}
    )
    assert again.status_code == 200
    assert "Idempotent-Replayed" not in again.headers

    r = shop.post("/v1/pos/scan", {"token": shown}, who="pos")

    assert r.status_code == 200, r.text
    assert (r.json()["member_id"], r.json()["name"]) == (mia["id"], "Mia")
    assert r.json()["balances"]["available"] == 12


def test_a_tampered_or_foreign_qr_token_is_invalid(
    shop: Tenant, engine: Engine, new_tenant: Callable[[], Tenant]
) -> None:
    mia = shop.enrol("mia-qr-bad@example.org")
    max_ = shop.enrol("max-qr-bad@example.org")
    shown = qr(shop, member_token(engine, shop, mia, "mia-qr-bad@example.org"))
    prefix, _member, step, mac = shown.split(".")
    other = new_tenant()
    olga = other.enrol("olga-qr@example.org")
    foreign = qr(other, member_token(engine, other, olga, "olga-qr@example.org"))
    for bad in (
        f"{prefix}.{max_['id']}.{step}.{mac}",  # someone else's id under Mia's signature
        f"{prefix}.{mia['id']}.{int(step) + 5}.{mac}",  # a later time step
        f"{prefix}.{mia['id']}.{step}.{mac[:-2]}AA",  # a changed signature
        f"{prefix}.{mia['id']}",  # cut short
        foreign,  # another tenant's member
    ):
        r = shop.post("/v1/pos/scan", {"token": bad}, who="pos")
        assert (r.status_code, r.json()["code"]) == (422, "invalid_token"), bad


@pytest.fixture
def clocked(engine: Engine) -> Iterator[tuple[Tenant, FixedClock]]:
    # the start of a 30-second step, so that the arithmetic below is exact
    clock = FixedClock(datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) // 30 * 30, UTC))
    app = create_app(engine, clock)
    app.state.rate_limiter = RateLimiter(per_key="1000/minute", per_address="1000/minute")
    with TestClient(app) as client:
        yield make_tenant(engine, client), clock


def test_a_qr_token_lasts_its_step_and_the_next(
    clocked: tuple[Tenant, FixedClock], engine: Engine
) -> None:
    shop, clock = clocked
    mia = shop.enrol("mia-qr-time@example.org")
    token = member_token(engine, shop, mia, "mia-qr-time@example.org")
    r = shop.client.post("/v1/me/qr-token", headers=bearer(token)).json()
    assert datetime.fromisoformat(r["expires_at"]) == clock.now() + timedelta(seconds=60)

    clock.advance(timedelta(seconds=59))
    assert shop.post("/v1/pos/scan", {"token": r["token"]}, who="pos").status_code == 200
    clock.advance(timedelta(seconds=1))
    late = shop.post("/v1/pos/scan", {"token": r["token"]}, who="pos")
    assert (late.status_code, late.json()["code"]) == (422, "invalid_token")
    assert late.json()["detail"] == "QR token expired: show a fresh one"
