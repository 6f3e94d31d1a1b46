"""Rate limits on voucher validate/consume, member look-up and POS scan: per API key and per
client address, answered with 429 ``rate_limited`` and ``Retry-After``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from api_support import Tenant, make_tenant
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from treu.api.app import create_app
from treu.api.ratelimit import RateLimiter


@dataclass
class Limited:
    app: FastAPI
    shop: Tenant
    code: str  # an issued voucher of shop's
    email: str  # a member of shop's

    def limit(self, per_key: str, per_address: str) -> None:
        self.app.state.rate_limiter = RateLimiter(per_key=per_key, per_address=per_address)

    def client_from(self, address: str) -> TestClient:
        return TestClient(self.app, client=(address, 40000))


@pytest.fixture(scope="module")
def limited(engine: Engine) -> Iterator[Limited]:
    app = create_app(engine)
    with TestClient(app) as client:
        shop = make_tenant(engine, client)
        email = "limit@example.org"
        member = shop.enrol(email)
        shop.buy(member["id"], "90.00")
        voucher = shop.post(f"/v1/members/{member['id']}/redemptions", {"reward": "kaffee"})
        yield Limited(app, shop, voucher.json()["voucher"]["code"], email)


def test_a_key_over_its_limit_is_told_when_to_come_back(limited: Limited) -> None:
    limited.limit(per_key="3/minute", per_address="100/minute")
    shop = limited.shop
    url = f"/v1/vouchers/{limited.code}/validate"
    assert [shop.post(url, who="pos").status_code for _ in range(3)] == [200, 200, 200]

    refused = shop.post(url, who="pos")

    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # another key of the same till is counted on its own
    assert shop.post(url, who="integration").status_code == 200


def test_one_address_over_its_limit_is_refused_whatever_key_it_uses(limited: Limited) -> None:
    limited.limit(per_key="100/minute", per_address="2/minute")
    shop = limited.shop
    lookup = f"/v1/programmes/{shop.programme}/members/lookup"
    params = {"identifier": f"email:{limited.email}"}
    headers = {who: shop.headers(who) for who in ("pos", "integration", "admin")}

    with limited.client_from("203.0.113.7") as one:
        assert one.get(lookup, params=params, headers=headers["pos"]).status_code == 200
        assert one.get(lookup, params=params, headers=headers["integration"]).status_code == 200
        assert one.get(lookup, params=params, headers=headers["admin"]).status_code == 429
    with limited.client_from("203.0.113.8") as other:
        assert other.get(lookup, params=params, headers=headers["admin"]).status_code == 200


def test_a_refused_request_is_not_replayed_under_its_idempotency_key(limited: Limited) -> None:
    limited.limit(per_key="1/minute", per_address="100/minute")
    shop = limited.shop
    url = f"/v1/vouchers/{limited.code}/consume"
    assert shop.post(f"/v1/vouchers/{limited.code}/validate", who="pos").status_code == 200

    first = shop.post(url, who="pos", **{"Idempotency-Key": "consume-1"})
    assert first.status_code == 429

    limited.limit(per_key="1/minute", per_address="100/minute")  # a minute later
    again = shop.post(url, who="pos", **{"Idempotency-Key": "consume-1"})
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "used"


def test_requests_without_a_valid_key_are_refused_before_they_count(limited: Limited) -> None:
    limited.limit(per_key="1/minute", per_address="1/minute")
    url = f"/v1/vouchers/{limited.code}/validate"
    with limited.client_from("198.51.100.1") as client:
        for _ in range(3):
            assert client.post(url).status_code == 401
        assert client.post(url, headers=limited.shop.headers("pos")).status_code != 429
