"""Scenario 01 — Kiezcafé through the HTTP API (as test_01_kiezcafe.py, with the same numbers):
the till at Kastanienallee has a store-bound key from ``treu keys create`` and rings Mia up with
one call per receipt, scanning her e-mail; the refund is a return. Points, the Kaffeekarte, the
welcome croissant and the surprise of the fifth visit-week are checked; the welcome e-mail comes
with the messaging issue and is not faked here."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from http_support import Api, document, key_from_cli
from sqlalchemy import Engine

from treu.api.app import create_app
from treu.clock import FixedClock
from treu.programmes.service import Tenant

BERLIN = ZoneInfo("Europe/Berlin")
EXAMPLE = Path(__file__).parents[2] / "examples" / "kiezcafe.yaml"
PROGRAMME = "/v1/programmes/kiezcafe"


def test_mia_collects_41_points_over_seven_mondays_and_a_refund_over_http(
    engine: Engine, clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(datetime(2026, 3, 2, 8, tzinfo=BERLIN))
    with TestClient(create_app(engine, clock)) as client:
        admin = Api(client, key_from_cli(engine, tenant.key, "--scope", "admin"))
        admin.post("/v1/programmes", document(EXAMPLE), status=201)
        till = Api(
            client,
            key_from_cli(engine, tenant.key, "--scope", "pos", "--store", "kastanienallee"),
        )
        mia = admin.post(
            f"{PROGRAMME}/members",
            {
                "identifiers": {"email": "mia@example.de"},
                "name": "Mia",
                "consents": {"email": True},
            },
            status=201,
        )["id"]

        welcome = admin.get(f"/v1/members/{mia}/vouchers")["data"]
        assert [v["reward_name"] for v in welcome] == ["Willkommens-Croissant"]
        receipts: dict[str, Any] = {}

        def buy(
            external_id: str, at: datetime, *lines: dict[str, object], status: int = 201
        ) -> int:
            clock.set(at)
            receipt = {
                "token": "email:mia@example.de",
                "external_id": external_id,
                "currency": "EUR",
                "lines": list(lines),
                "occurred_at": at.isoformat(),
            }
            receipts[external_id] = till.post("/v1/pos/purchases", receipt, status=status)
            points: int = receipts[external_id]["activity"]["points"]
            return points

        cappuccinos = {"sku": "CAPPU", "category": "Kaffee", "quantity": 2, "unit_price": "3.40"}
        # 1. every Monday 08:10 Berlin time, across the switch to summer time on 2026-03-29
        mondays = [
            datetime(2026, 3, 2, 8, 10, tzinfo=BERLIN) + timedelta(weeks=w) for w in range(7)
        ]
        assert {m.utcoffset() for m in mondays} == {timedelta(hours=1), timedelta(hours=2)}
        assert [buy(f"bon-{m:%m%d}", m, cappuccinos) for m in mondays] == [6] * 7
        # 2. a croissant on 2026-03-09 at 15:00
        croissant: dict[str, object] = {
            "sku": "CROISSANT",
            "category": "Gebäck",
            "unit_price": "2.50",
        }
        assert buy("bon-0309-2", datetime(2026, 3, 9, 15, tzinfo=BERLIN), croissant) == 2
        # 4. on 2026-04-14 one cappuccino of 2026-04-13 comes back: 3 points instead of 6
        clock.set(datetime(2026, 4, 14, 9, tzinfo=BERLIN))
        refund = {
            "external_id": "storno-0414",
            "purchase_external_id": "bon-0413",
            "lines": [{"line": 0, "quantity": 1}],
        }
        assert admin.post(f"{PROGRAMME}/returns", refund, status=201)["points"] == -3
        # replaying a purchase or the refund changes nothing
        assert buy("bon-0302", mondays[0], cappuccinos, status=200) == 6
        assert admin.post(f"{PROGRAMME}/returns", refund, status=200)["replayed"] is True

        # 3. the fifth Monday fills the card and is the fifth visit-week: two vouchers
        fifth = receipts["bon-0330"]
        assert [
            (e["kind"], e["explanation"].split(":")[0]) for e in fifth["activity"]["effects"]
        ] == [
            ("stamps.earned", "Kaffeekarte"),
            ("card.completed", "Kaffeekarte #1 complete"),
            ("voucher.issued", "Überraschung des Hauses"),
        ]
        assert fifth["member"]["stamp_cards"][0]["display"] == "0/10"
        croissant_receipt = receipts["bon-0309-2"]["activity"]["effects"]
        assert [e["explanation"] for e in croissant_receipt] == ["Kaffeekarte: no Kaffee item"]

        assert admin.get(f"/v1/members/{mia}/balances")["available"] == 41
        cards = admin.get(f"/v1/members/{mia}/stamp-cards")
        assert [(c["name"], c["display"]) for c in cards["current"]] == [("Kaffeekarte", "3/10")]
        assert [(c["number"], c["voucher_status"]) for c in cards["completed"]] == [(1, "issued")]
        vouchers = admin.get(f"/v1/members/{mia}/vouchers")["data"]
        assert sorted(v["reward_name"] for v in vouchers) == [
            "Gratis Kaffee",
            "Willkommens-Croissant",
            "Überraschung des Hauses",
        ]
        history = admin.get(f"/v1/members/{mia}/history", limit=100)["data"]
        assert sum(h["points"] for h in history if h["unit"] == "points") == 41
        assert sum(h["points"] for h in history if h["unit"] == "stamps") == 3
        stamped = next(
            h for h in history if h["activity_external_id"] == "bon-0406" and h["unit"] == "stamps"
        )
        assert stamped["explanations"] == ["Kaffeekarte: 2 stamps for 2 × Kaffee"]
        earn = next(h for h in history if h["activity_external_id"] == "bon-0309-2")
        assert earn["explanations"] == ["1 Punkt je Euro: 1 per 1.00 EUR on 2.50 EUR = 2 points"]
        assert admin.post("/v1/ledger/verify")["ok"] is True
