"""Idempotency-Key: the first response is stored and replayed; reuse and races are refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from api_support import Tenant
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from treu.api.app import create_app
from treu.auth import idempotency
from treu.auth.model import key_id_of
from treu.clock import FixedClock
from treu.storage.uow import UnitOfWork


def test_a_retried_redemption_replays_the_first_response(shop: Tenant) -> None:
    member = shop.enrol()
    shop.buy(member["id"], "100.00")
    url = f"/v1/members/{member['id']}/redemptions"
    first = shop.post(url, {"reward": "kaffee"}, **{"Idempotency-Key": "r-1"})
    second = shop.post(url, {"reward": "kaffee"}, **{"Idempotency-Key": "r-1"})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert shop.get(f"/v1/members/{member['id']}/balances").json()["available"] == 70


def test_the_same_key_with_a_different_body_is_refused(shop: Tenant) -> None:
    member = shop.enrol()
    url = f"/v1/programmes/{shop.programme}/purchases"
    body = {"external_id": "x1", "currency": "EUR", "total": "5.00", "member": member["id"]}
    assert shop.post(url, body, **{"Idempotency-Key": "p-1"}).status_code == 201
    changed = shop.post(url, {**body, "total": "6.00"}, **{"Idempotency-Key": "p-1"})
    assert changed.status_code == 422
    problem = changed.json()
    assert problem["code"] == "idempotency_key_reuse"
    assert changed.headers["content-type"] == "application/problem+json"
    # the same key on another path is another request too
    other = shop.post(f"/v1/members/{member['id']}/block", None, **{"Idempotency-Key": "p-1"})
    assert other.json()["code"] == "idempotency_key_reuse"


def test_a_key_still_in_flight_answers_409(shop: Tenant, engine: Engine) -> None:
    member = shop.enrol()
    url = f"/v1/members/{member['id']}/block"
    key_id = key_id_of(shop.keys["admin"])
    fingerprint = _fingerprint_of(shop, url)
    with UnitOfWork(engine) as uow:  # a first request that has claimed the key and runs
        assert (
            idempotency.begin(
                uow, principal_id=key_id, tenant_id=shop.id, key="slow", fingerprint=fingerprint
            )
            is None
        )
    busy = shop.post(url, None, **{"Idempotency-Key": "slow"})
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_key_in_use"
    assert shop.get(f"/v1/members/{member['id']}").json()["status"] == "active"  # not run


def _fingerprint_of(shop: Tenant, path: str) -> str:
    from treu.api.idempotency import _fingerprint

    return _fingerprint({"method": "POST", "path": path, "query_string": b""}, b"")


def test_keys_are_per_api_key(shop: Tenant) -> None:
    member = shop.enrol()
    url = f"/v1/programmes/{shop.programme}/purchases"
    body = {"external_id": "k1", "currency": "EUR", "total": "5.00", "member": member["id"]}
    a = shop.post(url, body, **{"Idempotency-Key": "same"})
    b = shop.post(
        url, {**body, "external_id": "k2"}, who="integration", **{"Idempotency-Key": "same"}
    )
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]


def test_errors_are_stored_too_but_server_errors_release_the_key(
    engine: Engine, shop: Tenant
) -> None:
    app = create_app(engine)
    calls: list[int] = []

    @app.post("/v1/crash")
    def crash() -> None:
        calls.append(1)
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        headers = shop.headers(**{"Idempotency-Key": "crash-1"})
        first = client.post("/v1/crash", headers=headers)
        second = client.post("/v1/crash", headers=headers)
    assert (first.status_code, second.status_code) == (500, 500)
    assert first.json()["code"] == "internal_error"
    assert "boom" not in first.text
    assert len(calls) == 2  # released after the 500: the retry ran again

    member = shop.enrol()
    url = f"/v1/members/{member['id']}/redemptions"
    poor = shop.post(url, {"reward": "kaffee"}, **{"Idempotency-Key": "poor"})
    assert poor.json()["code"] == "insufficient_points"
    shop.buy(member["id"], "100.00")
    again = shop.post(url, {"reward": "kaffee"}, **{"Idempotency-Key": "poor"})
    assert again.json() == poor.json()  # the stored answer, as Stripe does
    assert again.headers["idempotent-replayed"] == "true"


def test_records_expire_after_24_hours(engine: Engine, shop: Tenant) -> None:
    clock = FixedClock(datetime.now(UTC))
    with TestClient(create_app(engine, clock)) as client:
        member = shop.enrol()
        url = f"/v1/programmes/{shop.programme}/purchases"
        headers = shop.headers(**{"Idempotency-Key": "day-1"})
        body = {"external_id": "e1", "currency": "EUR", "total": "5.00", "member": member["id"]}
        assert client.post(url, json=body, headers=headers).status_code == 201
        clock.advance(timedelta(hours=25))
        later = client.post(url, json={**body, "external_id": "e2"}, headers=headers)
        assert later.status_code == 201
        assert "idempotent-replayed" not in later.headers


def test_a_malformed_key_is_a_validation_error(shop: Tenant) -> None:
    bad = shop.post("/v1/ledger/verify", None, **{"Idempotency-Key": "x" * 256})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "header.idempotency-key"


def test_without_credentials_the_key_is_ignored_and_the_route_answers_401(
    client: TestClient,
) -> None:
    r = client.post("/v1/ledger/verify", headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 401
