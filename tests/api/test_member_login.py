"""Members log in with a one-time code (read from the outbox until e-mails are sent) and see
their own account, and nothing else, through /v1/me."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from api_support import Tenant, make_tenant
from fastapi.testclient import TestClient
from login_support import (
    bearer,
    exchange,
    last_code,
    member_token,
    programme_id,
    request_code,
    tenant_key,
)
from sqlalchemy import Engine

from treu.api.app import create_app
from treu.api.ratelimit import RateLimiter
from treu.clock import FixedClock
from treu.outbox.service import list_events
from treu.storage.uow import UnitOfWork


def test_mia_logs_in_with_the_emailed_code_and_reads_her_own_account(
    shop: Tenant, engine: Engine
) -> None:
    # given Mia with 40 points and a voucher
    mia = shop.enrol("mia@example.org", name="Mia")
    shop.buy(mia["id"], "70.00")
    voucher = shop.post(f"/v1/members/{mia['id']}/redemptions", {"reward": "kaffee"}).json()

    # when she asks for a code (with her address as she types it) and sends it back
    asked = request_code(shop, "Mia@Example.org")
    assert (asked.status_code, asked.json()) == (
        202,
        {"object": "login_code_request", "expires_in": 600},
    )
    sent = last_code(engine, shop, mia["id"])
    assert re.fullmatch(r"[0-9]{6}", sent["code"])
    assert sent["identifier"] == "email:Mia@Example.org"
    r = exchange(shop, "mia@example.org", sent["code"])

    # then she holds a member token for 30 minutes, and /v1/me is her account
    assert r.status_code == 200, r.text
    issued = r.json()
    assert (issued["object"], issued["member_id"], issued["token_type"]) == (
        "member_token",
        mia["id"],
        "Bearer",
    )
    claims = jwt.decode(issued["token"], options={"verify_signature": False})
    assert {"tenant", "programme", "member", "exp", "jti"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == 30 * 60
    me = bearer(issued["token"])
    assert shop.client.get("/v1/me", headers=me).json()["name"] == "Mia"
    assert shop.client.get("/v1/me/balances", headers=me).json()["available"] == 70 - 30
    history = shop.client.get("/v1/me/history", headers=me).json()["data"]
    assert [e["points"] for e in history] == [70, -30]
    codes = [v["code"] for v in shop.client.get("/v1/me/vouchers", headers=me).json()["data"]]
    assert codes == [voucher["voucher"]["code"]]


def test_asking_for_a_code_says_nothing_about_who_is_a_member(shop: Tenant, engine: Engine) -> None:
    shop.enrol("known@example.org")
    known = request_code(shop, "known@example.org")
    unknown = request_code(shop, "unknown@example.org")
    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    with UnitOfWork(engine) as uow:
        events = list_events(uow, tenant_id=shop.id, type="member.login_code")
    assert [e["payload"]["identifier"] for e in events] == ["email:known@example.org"]
    # and an unknown member trying a code gets the same answer as a wrong code
    wrong = exchange(shop, "unknown@example.org", "123456")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_code")


def test_a_code_works_once_and_only_for_its_member(shop: Tenant, engine: Engine) -> None:
    mia = shop.enrol("mia-once@example.org")
    shop.enrol("max-once@example.org")
    request_code(shop, "mia-once@example.org")
    code = last_code(engine, shop, mia["id"])["code"]
    assert exchange(shop, "max-once@example.org", code).status_code == 401
    assert exchange(shop, "mia-once@example.org", code).status_code == 200
    again = exchange(shop, "mia-once@example.org", code)
    assert (again.status_code, again.json()["code"]) == (401, "invalid_code")


def test_five_wrong_guesses_use_the_code_up(shop: Tenant, engine: Engine) -> None:
    mia = shop.enrol("mia-guess@example.org")
    request_code(shop, "mia-guess@example.org")
    code = last_code(engine, shop, mia["id"])["code"]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        assert exchange(shop, "mia-guess@example.org", wrong).json()["code"] == "invalid_code"
    assert exchange(shop, "mia-guess@example.org", code).status_code == 401  # too late
    # a new code starts over, and only the newest one counts
    request_code(shop, "mia-guess@example.org")
    newest = last_code(engine, shop, mia["id"])["code"]
    if newest != code:
        assert exchange(shop, "mia-guess@example.org", code).status_code == 401
    assert exchange(shop, "mia-guess@example.org", newest).status_code == 200


def test_the_programme_can_be_named_by_key_with_its_tenant(shop: Tenant, engine: Engine) -> None:
    shop.enrol("mia-key@example.org")
    body = {"programme": shop.programme, "identifier": "mia-key@example.org"}
    missing = shop.client.post("/v1/member-auth/code", json=body)
    assert [e["path"] for e in missing.json()["errors"]] == ["tenant"]
    body["tenant"] = tenant_key(engine, shop)
    assert shop.client.post("/v1/member-auth/code", json=body).status_code == 202
    card = {"programme": programme_id(shop), "identifier": "card:4711"}
    refused = shop.client.post("/v1/member-auth/code", json=card)
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_identifier")


def test_a_member_token_reaches_nothing_but_its_own_account(shop: Tenant, engine: Engine) -> None:
    mia = shop.enrol("mia-scope@example.org")
    me = bearer(member_token(engine, shop, mia, "mia-scope@example.org"))
    for url in (
        f"/v1/members/{mia['id']}",
        f"/v1/members/{mia['id']}/balances",
        f"/v1/programmes/{shop.programme}",
        "/v1/api-keys",
    ):
        r = shop.client.get(url, headers=me)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden"), url
        assert r.json()["detail"].startswith("a member may not do this")
    purchase = {"external_id": "x", "currency": "EUR", "total": "9.00", "member": mia["id"]}
    r = shop.client.post(f"/v1/programmes/{shop.programme}/purchases", json=purchase, headers=me)
    assert r.status_code == 403


def test_a_tampered_or_forged_member_token_is_unauthenticated(shop: Tenant, engine: Engine) -> None:
    mia = shop.enrol("mia-forge@example.org")
    token = member_token(engine, shop, mia, "mia-forge@example.org")
    claims = jwt.decode(token, options={"verify_signature": False})
    header, payload, signature = token.split(".")
    forged = [
        f"{header}.{payload}.{signature[:-4]}AAAA",  # signature changed
        jwt.encode(claims, "a guessed secret, 32 bytes or more", algorithm="HS256"),
        jwt.encode({**claims, "tenant": "ten_nope"}, "x" * 32, algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),  # unsigned
        "eyJhbGciOiJIUzI1NiJ9.e30.not-a-signature",  # malformed
    ]
    for bad in forged:
        r = shop.client.get("/v1/me", headers=bearer(bad))
        assert (r.status_code, r.json()["code"]) == (401, "unauthenticated"), bad


@dataclass
class Clocked:
    client: TestClient
    clock: FixedClock
    shop: Tenant


@pytest.fixture
def clocked(engine: Engine) -> Iterator[Clocked]:
    clock = FixedClock(datetime.now(UTC))
    app = create_app(engine, clock)
    app.state.rate_limiter = RateLimiter(per_key="1000/minute", per_address="1000/minute")
    with TestClient(app) as client:
        yield Clocked(client, clock, make_tenant(engine, client))


def test_a_code_lasts_ten_minutes_and_a_token_thirty(clocked: Clocked, engine: Engine) -> None:
    shop, clock = clocked.shop, clocked.clock
    mia = shop.enrol("mia-time@example.org")
    request_code(shop, "mia-time@example.org")
    code = last_code(engine, shop, mia["id"])["code"]
    clock.advance(timedelta(minutes=10))
    assert exchange(shop, "mia-time@example.org", code).json()["code"] == "invalid_code"

    token = member_token(engine, shop, mia, "mia-time@example.org")
    clock.advance(timedelta(minutes=29, seconds=59))
    assert clocked.client.get("/v1/me", headers=bearer(token)).status_code == 200
    clock.advance(timedelta(seconds=1))
    expired = clocked.client.get("/v1/me", headers=bearer(token))
    assert (expired.status_code, expired.json()["detail"]) == (
        401,
        "this member token has expired",
    )


def test_code_requests_and_guesses_are_rate_limited_per_identifier(engine: Engine) -> None:
    app = create_app(engine)
    app.state.rate_limiter = RateLimiter(
        per_key="1000/minute", per_address="1000/minute", per_login="3/minute"
    )
    with TestClient(app) as client:
        shop = make_tenant(engine, client)
        for _ in range(3):
            assert request_code(shop, "mia-limit@example.org").status_code == 202
        over = request_code(shop, "Mia-Limit@example.org ")
        assert (over.status_code, over.json()["code"]) == (429, "rate_limited")
        assert int(over.headers["Retry-After"]) >= 1
        assert request_code(shop, "someone-else@example.org").status_code == 202
        for _ in range(3):
            assert exchange(shop, "mia-limit@example.org", "000000").status_code == 401
        assert exchange(shop, "mia-limit@example.org", "000000").status_code == 429
