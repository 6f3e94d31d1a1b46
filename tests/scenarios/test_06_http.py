"""Scenario 06 — Mercado Smart through the HTTP API (as test_06_collect_redeem_expiry.py, with
the same numbers).

The app runs on the test's fixed clock, moved to each moment of the walk-through; the till at
Paulista has a store-bound key from ``treu keys create``, the nightly run is
``POST /v1/jobs/nightly``. The expiry reminder is read from the outbox through its service:
the API has no events endpoint yet (webhooks will deliver them).
"""

from __future__ import annotations

from datetime import date, datetime
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

SP = ZoneInfo("America/Sao_Paulo")
EXAMPLE = Path(__file__).parents[2] / "examples" / "mercado-smart.yaml"
PROGRAMME = "/v1/programmes/mercado-smart"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SP)


def test_rui_collects_redeems_and_loses_only_the_birthday_remainder_over_http(
    engine: Engine, clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(at(2026, 1, 1, 9))
    with TestClient(create_app(engine, clock)) as client:
        admin = Api(client, key_from_cli(engine, tenant.key, "--scope", "admin"))
        admin.post("/v1/programmes", document(EXAMPLE), status=201)
        till = Api(
            client,
            key_from_cli(engine, tenant.key, "--scope", "pos", "--store", "paulista"),
        )
        rui = admin.post(
            f"{PROGRAMME}/members",
            {
                "identifiers": {"email": "rui@example.com.br"},
                "name": "Rui",
                "birthday": "1990-07-15",
            },
            status=201,
        )["id"]

        def buy(external_id: str, when: datetime, lines: list[dict[str, str]]) -> int:
            clock.set(when)
            purchase = {
                "external_id": external_id,
                "currency": "BRL",
                "member": rui,
                "lines": lines,
                "occurred_at": when.isoformat(),
            }
            points: int = till.post(f"{PROGRAMME}/purchases", purchase, status=201)["points"]
            return points

        def nightly(day: date) -> list[dict[str, Any]]:
            clock.set(datetime(day.year, day.month, day.day, 1, tzinfo=SP))
            run = admin.post(
                "/v1/jobs/nightly", {"date": day.isoformat(), "programme": "mercado-smart"}
            )
            steps: list[dict[str, Any]] = run["steps"]
            return steps

        def lots() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = admin.get(f"/v1/members/{rui}/lots")["data"]
            return found

        def balances() -> dict[str, Any]:
            found: dict[str, Any] = till.get(f"/v1/members/{rui}/balances")
            return found

        # 1. 150.00 of which 30.00 Tabak -> 120 points, expiring 2027-01-31 (the till's store)
        first = [
            {"sku": "ARROZ", "category": "Mercearia", "unit_price": "120.00"},
            {"sku": "CIG", "category": "Tabak", "unit_price": "30.00"},
        ]
        assert buy("pdv-1", at(2026, 1, 10, 10), first) == 120
        # 2. the birthday job, twice: 100 points once
        nightly(date(2026, 7, 15))
        again = nightly(date(2026, 7, 15))
        assert all(step["skipped"] for step in again), again
        # 3. Natal: double points
        panetone = [{"sku": "PANETONE", "category": "Doces", "unit_price": "80.00"}]
        assert buy("pdv-2", at(2026, 12, 22, 18), panetone) == 160

        assert [(lot["amount"], lot["expires_on"]) for lot in lots()] == [
            (120, "2027-01-31"),
            (100, "2027-07-31"),
            (160, "2027-12-31"),
        ]
        assert balances()["available"] == 380

        # 4. redeem 200 at the till: 120 from January, 80 from the birthday lot
        clock.set(at(2027, 1, 5, 12))
        redemption = till.post(
            f"/v1/members/{rui}/redemptions", {"reward": "desconto-10"}, status=201
        )
        assert redemption["points"] == 200
        assert redemption["voucher"]["status"] == "issued"
        assert [lot["remaining"] for lot in lots()] == [0, 20, 160]
        assert balances()["available"] == 180

        # 5. nothing expires on 2027-02-01
        nightly(date(2027, 2, 1))
        assert balances()["expired"] == 0

        # 6. the reminder on 2027-07-01 names 20 points and 2027-07-31
        nightly(date(2027, 7, 1))
        with UnitOfWork(engine, clock) as uow:
            reminders = list_events(uow, tenant_id=tenant.id, type="points.expiring")
        assert [(e["payload"]["points"], e["payload"]["expires_on"]) for e in reminders] == [
            (20, "2027-07-31")
        ]

        # 7. 20 points expire on 2027-08-01
        nightly(date(2027, 8, 1))
        after = balances()
        assert (after["available"], after["expired"]) == (160, 20)
        history = admin.get(f"/v1/members/{rui}/history")["data"]
        assert [(h["kind"], h["points"]) for h in history] == [
            ("earn", 120),
            ("earn", 100),
            ("earn", 160),
            ("hold", -200),
            ("expire", -20),
        ]
        assert any("Natal" in text for h in history for text in h["explanations"])
        report = admin.post("/v1/ledger/verify")
        assert report["ok"], report["problems"]
