"""The API through a real uvicorn server on a free port, with concurrent clients."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest
from api_support import Tenant
from fastapi import FastAPI

from serving import serve_app


@pytest.fixture(scope="module")
def server(app: FastAPI) -> Iterator[str]:
    with serve_app(app) as base:
        yield base


def test_a_till_over_http(server: str, shop: Tenant) -> None:
    member = shop.enrol("till@example.org")
    till = {"Authorization": f"Bearer {shop.keys['pos']}"}
    with httpx2.Client(base_url=server, headers=till) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").status_code == 200
        found = http.get(
            f"/v1/programmes/{shop.programme}/members/lookup",
            params={"identifier": "email:till@example.org"},
        )
        assert found.json()["id"] == member["id"]
        bought = http.post(
            f"/v1/programmes/{shop.programme}/purchases",
            json={
                "external_id": "http-1",
                "currency": "EUR",
                "total": "42.00",
                "member": member["id"],
            },
            headers={"Idempotency-Key": "http-1"},
        )
        assert bought.status_code == 201
        assert bought.json()["points"] == 42
        missing = http.get("/v1/unknown")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


def test_concurrent_requests_with_one_idempotency_key_redeem_once(
    server: str, shop: Tenant
) -> None:
    member = shop.enrol()
    shop.buy(member["id"], "100.00")
    url = f"{server}/v1/members/{member['id']}/redemptions"
    headers = shop.headers(**{"Idempotency-Key": "race-1"})

    def redeem(_: int) -> httpx2.Response:
        return httpx2.post(url, json={"reward": "kaffee"}, headers=headers, timeout=30)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(redeem, range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = [r for r in responses if r.status_code == 201]
    assert created
    assert len({r.json()["voucher"]["code"] for r in created}) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency_key_in_use"
    balances = shop.get(f"/v1/members/{member['id']}/balances").json()
    assert balances["available"] == 70  # one coffee, however many requests


def test_concurrent_purchases_of_different_members(server: str, shop: Tenant) -> None:
    members = [shop.enrol()["id"] for _ in range(6)]

    def buy(member_id: str) -> int:
        r = httpx2.post(
            f"{server}/v1/programmes/{shop.programme}/purchases",
            json={
                "external_id": f"c-{member_id}",
                "currency": "EUR",
                "total": "10.00",
                "member": member_id,
            },
            headers=shop.headers("integration"),
            timeout=30,
        )
        return r.status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(buy, members)) == [201] * 6
    assert shop.post("/v1/ledger/verify").json()["ok"] is True
