"""Scenario 03 — Beauty Insider through the HTTP API (the catalogue part, as in
test_03_beauty_insider.py, with the same numbers).

The owner's admin key comes from ``treu keys create``, the web shop's integration key from the
auth service and the store's till key from ``POST /v1/api-keys``; the lipstick race runs as
three real concurrent HTTP requests against a uvicorn server. Ana's donation (steps 2 and 3)
goes through the web shop's key; the donation report is read with a read-only reporting key.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from threading import Barrier
from zoneinfo import ZoneInfo

import httpx2
from fastapi.testclient import TestClient
from http_support import Api, document, key_from_cli, serve
from sqlalchemy import Engine

from treu.api.app import create_app
from treu.auth.model import Scope
from treu.auth.service import create_api_key
from treu.clock import FixedClock
from treu.programmes.service import Tenant
from treu.storage.uow import UnitOfWork

NEW_YORK = ZoneInfo("America/New_York")
EXAMPLE = Path(__file__).parents[2] / "examples" / "beauty-insider.yaml"
PROGRAMME = "/v1/programmes/beauty-insider"


def test_three_members_race_for_two_lipsticks_over_http(
    engine: Engine, clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(datetime(2026, 5, 4, 10, tzinfo=NEW_YORK))
    app = create_app(engine, clock)
    with TestClient(app) as client, serve(app) as server:
        owner = Api(client, key_from_cli(engine, tenant.key, "--scope", "admin"))
        applied = owner.post("/v1/programmes", document(EXAMPLE), status=201)
        assert (applied["key"], applied["revision"]) == ("beauty-insider", 1)
        with UnitOfWork(engine) as uow:
            shop_token = create_api_key(
                uow, tenant_id=tenant.id, scope=Scope.INTEGRATION, name="web shop"
            ).token
        shop = Api(client, shop_token)
        till_token = owner.post("/v1/api-keys", {"name": "SoHo till", "scope": "pos"}, status=201)[
            "token"
        ]

        def member_with(name: str, total: str) -> str:
            member_id: str = shop.post(
                f"{PROGRAMME}/members",
                {"identifiers": {"email": f"{name}@example.com"}, "name": name},
                status=201,
            )["id"]
            order = {"external_id": f"order-{name}", "currency": "USD", "total": total}
            bought = shop.post(f"{PROGRAMME}/purchases", {**order, "member": member_id}, status=201)
            assert bought["points"] == int(total.split(".")[0])
            return member_id

        # 1. Ana orders 1,250.00 -> 1,250 points
        ana = member_with("ana", "1250.00")
        assert shop.get(f"/v1/members/{ana}/balances")["available"] == 1250

        # 2. Ana donates 1,000 points -> 20.00 USD for the charity; balance 250
        charities = shop.get(f"{PROGRAMME}/charities")
        assert [(c["key"], c["points_per_step"], c["amount_per_step"]) for c in charities] == [
            ("nbjc", 500, "10.00")
        ]

        def donate(points: int, key: str) -> httpx2.Response:
            return client.post(
                f"/v1/members/{ana}/donations",
                json={"charity": "nbjc", "points": points},
                headers={**shop.headers, "Idempotency-Key": key},
            )

        given = donate(1000, "ana-gives")
        assert given.status_code == 201, given.text
        assert (given.json()["amount"], given.json()["points"]) == ("20.00", 1000)
        assert given.json()["currency"] == "USD"
        assert shop.get(f"/v1/members/{ana}/balances")["available"] == 250
        again = donate(1000, "ana-gives")  # the shop retries: nothing is given twice
        assert again.json()["id"] == given.json()["id"]
        assert shop.get(f"/v1/members/{ana}/balances")["available"] == 250

        # 3. Ana tries to donate 300 points: not a step of 500, refused, nothing changes
        refused = donate(300, "ana-tries-300")
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_amount")
        assert shop.get(f"/v1/members/{ana}/balances")["available"] == 250

        # 4. Bea, Cy and Dee (800 points each) redeem the lipstick at the same moment, at tills
        racers = [member_with(name, "800.00") for name in ("bea", "cy", "dee")]
        start = Barrier(len(racers))

        def redeem(member_id: str) -> httpx2.Response:
            with httpx2.Client(base_url=server, timeout=30) as http:
                start.wait()
                return http.post(
                    f"/v1/members/{member_id}/redemptions",
                    json={"reward": "lipstick"},
                    headers={
                        "Authorization": f"Bearer {till_token}",
                        "Idempotency-Key": f"lip-{member_id}",
                    },
                )

        outcomes = _all_at_once(redeem, racers)
        won = [m for m, r in outcomes.items() if r.status_code == 201]
        lost = [m for m, r in outcomes.items() if r.status_code == 422]
        assert (len(won), len(lost)) == (2, 1), {m: r.text for m, r in outcomes.items()}
        assert outcomes[lost[0]].json()["code"] == "out_of_stock"
        assert outcomes[lost[0]].headers["content-type"] == "application/problem+json"
        assert shop.get(f"/v1/members/{lost[0]}/balances")["available"] == 800
        assert {m: shop.get(f"/v1/members/{m}/balances")["available"] for m in won} == {
            m: 50 for m in won
        }
        assert _stock(shop, "lipstick") == 0

        # 5. staff cancel one lipstick voucher before use: 750 points and the stock come back
        voucher = outcomes[won[0]].json()["voucher"]
        assert voucher["status"] == "issued"
        cancelled = shop.post(
            f"/v1/vouchers/{voucher['code']}/cancel", {"reason": "customer changed her mind"}
        )
        assert cancelled["status"] == "cancelled"
        assert shop.get(f"/v1/members/{won[0]}/balances")["available"] == 800
        assert _stock(shop, "lipstick") == 1
        report = owner.post("/v1/ledger/verify")
        assert report["ok"], report["problems"]

        # Expected: the donation report for the programme
        reporting = Api(client, key_from_cli(engine, tenant.key, "--scope", "read"))
        donations = reporting.get(f"{PROGRAMME}/donations/report")["charities"]
        assert donations == [
            {
                "charity": "nbjc",
                "name": "National Black Justice Coalition",
                "amount": "20.00",
                "currency": "USD",
                "donors": 1,
                "points": 1000,
                "donations": 1,
            }
        ]


def _all_at_once(
    fn: Callable[[str], httpx2.Response], members: list[str]
) -> dict[str, httpx2.Response]:
    """A thread per member (``fn`` releases them together with its barrier)."""
    with ThreadPoolExecutor(len(members)) as pool:
        return dict(zip(members, pool.map(fn, members), strict=True))


def _stock(api: Api, reward: str) -> int | None:
    catalogue = api.get(f"{PROGRAMME}/rewards")["data"]
    stock: int | None = {r["key"]: r["stock"] for r in catalogue}[reward]
    return stock
