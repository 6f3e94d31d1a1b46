"""Scenario 02 — Hooked Rewards: tiers by yearly spend, through the HTTP API.

Jo and Sam shop at an online store in Los Angeles whose tiers qualify on merchandise spend
(shipping and tax excluded) net of returns in the calendar year. The programme comes from
``examples/hooked-rewards.yaml``; the owner's admin key from ``treu keys create``; the year-end
tier job runs through ``POST /v1/jobs/nightly`` at midnight Los Angeles time.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from http_support import Api, document, key_from_cli
from sqlalchemy import Engine

from treu.api.app import create_app
from treu.clock import FixedClock
from treu.outbox.service import list_events
from treu.programmes.service import Tenant
from treu.storage.uow import UnitOfWork
from treu.webhooks.service import fan_out

LA = ZoneInfo("America/Los_Angeles")
EXAMPLE = Path(__file__).parents[2] / "examples" / "hooked-rewards.yaml"
PROGRAMME = "/v1/programmes/hooked-rewards"


class Shop:
    """The web shop and the back office, as the scenario uses them."""

    def __init__(self, api: Api, clock: FixedClock) -> None:
        self.api = api
        self.clock = clock

    def at(self, year: int, month: int, day: int, hour: int) -> None:
        self.clock.set(datetime(year, month, day, hour, tzinfo=LA))

    def enrol(self, name: str) -> str:
        body = {"identifiers": {"email": f"{name}@example.com"}, "name": name}
        member_id: str = self.api.post(f"{PROGRAMME}/members", body, status=201)["id"]
        return member_id

    def order(self, member: str, order_id: str, merchandise: str, **extra: str) -> Any:
        body = {
            "external_id": order_id,
            "member": member,
            "currency": "USD",
            "lines": [{"sku": f"SKU-{order_id}", "unit_price": merchandise}],
            "prices_include_tax": False,
            **extra,
        }
        return self.api.post(f"{PROGRAMME}/purchases", body, status=201)

    def balance(self, member: str) -> int:
        available: int = self.api.get(f"/v1/members/{member}/balances")["available"]
        return available

    def tier(self, member: str) -> Any:
        return self.api.get(f"/v1/members/{member}/tier")

    def history(self, member: str) -> list[tuple[str | None, str, str, str]]:
        rows = self.api.get(f"/v1/members/{member}/tier-history")["data"]
        return [(r["from_tier"], r["to_tier"], r["at"], r["reason"]) for r in rows]

    def nightly(self, day: str) -> dict[str, Any]:
        run = self.api.post("/v1/jobs/nightly", {"date": day, "programme": "hooked-rewards"})
        return {s["step"]: s for s in run["steps"]}


def test_jo_and_sam_move_through_the_tiers_by_yearly_spend_over_http(
    engine: Engine, clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(datetime(2026, 2, 1, 9, tzinfo=LA))
    with TestClient(create_app(engine, clock)) as client:
        owner = Api(client, key_from_cli(engine, tenant.key, "--scope", "admin"))
        assert owner.post("/v1/programmes", document(EXAMPLE), status=201)["revision"] == 1
        endpoint = owner.post(
            "/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/crm"}, status=201
        )
        shop = Shop(owner, clock)
        jo, sam = shop.enrol("jo"), shop.enrol("sam")

        # Jo 1. merchandise 120.00, shipping 8.00, tax 10.00 -> 120 points, spend 120.00
        shop.at(2026, 2, 10, 14)
        first = shop.order(jo, "jo-1", "120.00", shipping="8.00", tax="10.00")
        assert first["points"] == 120
        assert first["effects"] == []
        assert shop.balance(jo) == 120
        progress = shop.tier(jo)
        assert (progress["tier"]["key"], progress["value"], progress["missing"]) == (
            "insider",
            "120.00",
            "130.00",
        )
        assert progress["next_tier"]["key"] == "enthusiast"

        # Jo 2. 140.00 earns 140 (still Insider when ordering), then reaches Enthusiast
        shop.at(2026, 5, 1, 11)
        second = shop.order(jo, "jo-2", "140.00")
        assert second["points"] == 140
        assert shop.balance(jo) == 260
        [upgrade] = second["effects"]
        assert (upgrade["mechanic"], upgrade["kind"]) == ("tiers", "tier.upgraded")
        assert upgrade["explanation"] == (
            "Enthusiast reached: 260.00 USD spent in 2026 (threshold 250.00)"
        )
        assert shop.tier(jo)["tier"]["key"] == "enthusiast"

        # Jo 3. the multiplier applies from this order on: 100.00 -> 125 points
        shop.at(2026, 6, 1, 10)
        third = shop.order(jo, "jo-3", "100.00")
        assert third["points"] == 125
        assert shop.balance(jo) == 385
        assert shop.tier(jo)["value"] == "360.00"

        # Jo 4. the 2026-05-01 order comes back in full: -140 points, spend 220.00, still Enthusiast
        shop.at(2026, 6, 10, 16)
        returned = owner.post(
            f"{PROGRAMME}/returns",
            {
                "external_id": "jo-2-return",
                "purchase_external_id": "jo-2",
                "lines": [{"line": 0, "quantity": 1}],
            },
            status=201,
        )
        assert returned["points"] == -140
        assert shop.balance(jo) == 245
        after_return = shop.tier(jo)
        assert (after_return["tier"]["key"], after_return["value"]) == ("enthusiast", "220.00")

        # Jo 5. "Limited drop" is for Superfans only
        refused = owner.post(
            f"/v1/members/{jo}/redemptions", {"reward": "limited-drop"}, status=422
        )
        assert refused["code"] == "reward_not_eligible"
        assert shop.balance(jo) == 245

        # Jo 6. "Seasonal offer" is for Enthusiasts and above
        seasonal = owner.post(
            f"/v1/members/{jo}/redemptions", {"reward": "seasonal-offer"}, status=201
        )
        assert seasonal["voucher"]["status"] == "issued"
        assert shop.balance(jo) == 145

        # Sam 1. 480.00 in one order: straight to Superfan
        shop.at(2026, 11, 20, 19)
        sams = shop.order(sam, "sam-1", "480.00")
        assert sams["points"] == 480
        assert [e["explanation"] for e in sams["effects"]] == [
            "Superfan reached: 480.00 USD spent in 2026 (threshold 450.00)"
        ]
        scanned = owner.post(
            "/v1/pos/scan", {"token": "email:sam@example.com", "programme": "hooked-rewards"}
        )
        assert scanned["tier"] == {
            "key": "superfan",
            "name": "Superfan",
            "perks": ["free_shipping"],
        }

        # Jo 7 / Sam 2. 2027-01-01 00:00 in Los Angeles: the tier job sets 2026's tiers
        shop.at(2027, 1, 1, 0)
        run = shop.nightly("2027-01-01")
        assert (run["reevaluate_tiers"]["processed"], run["reevaluate_tiers"]["skipped"]) == (
            1,
            False,
        )
        assert shop.tier(jo)["tier"]["key"] == "insider"
        assert shop.tier(sam)["tier"]["key"] == "superfan"
        again = shop.nightly("2027-01-01")
        assert again["reevaluate_tiers"]["skipped"] is True
        assert (shop.tier(jo)["tier"]["key"], shop.tier(sam)["tier"]["key"]) == (
            "insider",
            "superfan",
        )
        assert (shop.balance(jo), shop.balance(sam)) == (145, 480)

        # Sam 3. no orders in 2027: Insider from 2028-01-01
        shop.at(2028, 1, 1, 0)
        assert shop.nightly("2028-01-01")["reevaluate_tiers"]["processed"] == 1
        assert shop.tier(sam)["tier"]["key"] == "insider"

        # a tier history (from, to, when, why) for each member
        assert shop.history(jo) == [
            ("insider", "enthusiast", "2026-05-01T18:00:00Z", "upgrade"),
            ("enthusiast", "insider", "2027-01-01T08:00:00Z", "downgrade"),
        ]
        assert shop.history(sam) == [
            ("insider", "superfan", "2026-11-21T03:00:00Z", "upgrade"),
            ("superfan", "insider", "2028-01-01T08:00:00Z", "downgrade"),
        ]
        jo_changes = owner.get(f"/v1/members/{jo}/tier-history")["data"]
        assert jo_changes[0]["activity_id"] == second["id"]
        assert jo_changes[1]["job_date"] == "2027-01-01"
        assert jo_changes[1]["explanation"] == (
            "Insider from now on: 220.00 USD spent in 2026 (Enthusiast needs 250.00)"
        )

        # each tier change is an event, and the CRM's webhook endpoint gets a delivery of it
        with UnitOfWork(engine, clock) as uow:
            upgraded = list_events(uow, tenant_id=tenant.id, type="tier.upgraded")
            downgraded = list_events(uow, tenant_id=tenant.id, type="tier.downgraded")
        assert sorted(e["payload"]["member_id"] for e in upgraded) == sorted([jo, sam])
        assert sorted(e["payload"]["member_id"] for e in downgraded) == sorted([jo, sam])
        with UnitOfWork(engine, clock) as uow:
            fan_out(uow, tenant_id=tenant.id)
        deliveries = owner.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", limit=100)
        kinds = [d["event_type"] for d in deliveries["data"]]
        assert kinds.count("tier.upgraded") == 2
        assert kinds.count("tier.downgraded") == 2

        report = owner.post("/v1/ledger/verify")
        assert report["ok"], report["problems"]
