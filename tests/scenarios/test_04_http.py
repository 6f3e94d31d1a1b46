"""Scenario 04 — Co-op lifetime membership with an annual dividend, through the HTTP API.

The web shop (an integration key) reports Lee's membership fee and the purchases; the dividend
is the nightly run of 2027-03-15 (``POST /v1/jobs/nightly``); the Seattle till (a store-bound pos
key from ``treu keys create``) takes a wallet payment and scans the QR code Lee's phone shows
(issued by the same service the portal calls). Every amount is exact to the cent.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from http_support import Api, document, key_from_cli
from sqlalchemy import Engine

from treu.api.app import create_app
from treu.auth.member_login import issue_qr_token
from treu.clock import FixedClock
from treu.programmes.service import Tenant
from treu.storage.uow import UnitOfWork

LA = ZoneInfo("America/Los_Angeles")
EXAMPLE = Path(__file__).parents[2] / "examples" / "coop.yaml"
PROGRAMME = "/v1/programmes/coop"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=LA)


def test_lee_gets_a_dividend_on_member_purchases_and_pays_with_it_over_http(
    engine: Engine, clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(at(2026, 1, 5, 10))
    app = create_app(engine, clock)
    with TestClient(app) as client:
        admin = Api(client, key_from_cli(engine, tenant.key, "--scope", "admin"))
        admin.post("/v1/programmes", document(EXAMPLE), status=201)
        shop = Api(client, key_from_cli(engine, tenant.key, "--scope", "integration"))
        till = Api(client, key_from_cli(engine, tenant.key, "--scope", "pos", "--store", "seattle"))

        def enrol(name: str) -> str:
            body = {"identifiers": {"email": f"{name}@example.com"}, "name": name.title()}
            member_id: str = shop.post(f"{PROGRAMME}/members", body, status=201)["id"]
            return member_id

        def buy(member: str, order: str, when: datetime, category: str, price: str) -> None:
            clock.set(when)
            line = {"sku": order, "category": category, "unit_price": price}
            purchase = {"external_id": order, "currency": "USD", "member": member}
            shop.post(
                f"{PROGRAMME}/purchases",
                {**purchase, "lines": [line], "occurred_at": when.isoformat()},
                status=201,
            )

        def wallet(member: str) -> dict[str, Any]:
            found: dict[str, Any] = shop.get(f"/v1/members/{member}/wallet")["available"]
            return found

        def nightly(day: date) -> list[dict[str, Any]]:
            clock.set(datetime(day.year, day.month, day.day, 1, tzinfo=LA))
            run = admin.post("/v1/jobs/nightly", {"date": day.isoformat(), "programme": "coop"})
            steps: list[dict[str, Any]] = run["steps"]
            return steps

        lee, kim = enrol("lee"), enrol("kim")
        plans = shop.get(f"{PROGRAMME}/plans")
        assert [(p["key"], p["fee"]["amount"], p["billing"]) for p in plans] == [
            ("lifetime", "20.00", "lifetime")
        ]

        # 1. the shop reports Lee's fee: wrong currency or amount first, then right
        fee = {"plan": "lifetime", "amount": "20.00", "currency": "USD", "external_id": "pay-1"}
        payments = f"/v1/members/{lee}/memberships/payments"
        wrong_currency = shop.post(payments, {**fee, "currency": "EUR"}, status=422)
        assert wrong_currency["code"] == "currency_mismatch"
        wrong_amount = shop.post(payments, {**fee, "amount": "19.99"}, status=422)
        assert wrong_amount["code"] == "invalid_amount"
        membership = shop.post(payments, fee, status=201)
        assert (membership["status"], membership["paid_until"]) == ("active", None)
        assert shop.post(payments, fee, status=200)["replayed"] is True  # the shop retried
        assert shop.get(f"/v1/members/{lee}/balances")["available"] == 0  # a fee is no points

        # 2.-3. Lee's purchases in 2026, and a partial return of the 150.00 order
        buy(lee, "lee-1", at(2026, 2, 10, 12), "Outdoor", "200.00")
        buy(lee, "lee-2", at(2026, 4, 1, 12), "Outdoor", "150.00")
        buy(lee, "lee-3", at(2026, 6, 1, 12), "Gift cards", "50.00")
        clock.set(at(2026, 4, 8, 12))
        shop.post(
            f"{PROGRAMME}/returns",
            {"external_id": "ret-1", "purchase_external_id": "lee-2", "amount": "30.00"},
            status=201,
        )
        # 4. Kim is no member
        buy(kim, "kim-1", at(2026, 7, 1, 12), "Outdoor", "300.00")

        # 5. the dividend: 10 % of 200.00 + 120.00
        nightly(date(2027, 3, 15))
        assert wallet(lee) == {"amount": "32.00", "currency": "USD"}
        assert wallet(kim) == {"amount": "0.00", "currency": "USD"}
        # 6. again the same date, and the next night: nothing changes
        assert all(step["skipped"] for step in nightly(date(2027, 3, 15)))
        nightly(date(2027, 3, 16))
        assert wallet(lee)["amount"] == "32.00"
        history = shop.get(f"/v1/members/{lee}/wallet/history")
        assert [(e["kind"], e["amount"]["amount"]) for e in history] == [("credit", "32.00")]

        # 7. at the till: 12.00 from the wallet, then 25.00 is too much
        clock.set(at(2027, 3, 20, 11))
        qr = _qr(engine, app, tenant, lee)
        paid = till.post(
            "/v1/pos/wallet-payments",
            {"token": qr, "amount": "12.00", "currency": "USD"},
            status=201,
        )
        assert paid["payment"]["status"] == "captured"
        assert paid["member"]["wallet"] == {"amount": "20.00", "currency": "USD"}
        short = till.post(
            "/v1/pos/wallet-payments",
            {"token": qr, "amount": "25.00", "currency": "USD"},
            status=422,
        )
        assert short["code"] == "insufficient_funds"
        assert wallet(lee)["amount"] == "20.00"

        # 8. the till scans Lee's QR code
        scanned = till.post("/v1/pos/scan", {"token": qr})
        assert [(m["name"], m["status"]) for m in scanned["memberships"]] == [
            ("Lifetime", "active")
        ]
        assert "10 % on Classes" in scanned["memberships"][0]["perks"]
        assert scanned["wallet"] == {"amount": "20.00", "currency": "USD"}

        # the KPIs: the fee is revenue, the dividend its cost
        report = admin.get(f"{PROGRAMME}/reports/memberships", **{"from": "2026-01-01"})
        assert report["plans"] == [
            {
                "plan": "lifetime",
                "payments": 1,
                "fees": {"amount": "20.00", "currency": "USD"},
                "dividends": {"amount": "32.00", "currency": "USD"},
                "dividends_paid": 1,
            }
        ]
        assert Decimal(report["plans"][0]["fees"]["amount"]) == Decimal("20.00")
        verified = admin.post("/v1/ledger/verify")
        assert verified["ok"], verified["problems"]


def _qr(engine: Engine, app: Any, tenant: Tenant, member_id: str) -> str:
    """The QR code the member portal shows Lee (the portal calls the same service)."""
    with UnitOfWork(engine, app.state.runtime.clock) as uow:
        token = issue_qr_token(
            uow,
            tenant_id=tenant.id,
            member_id=member_id,
            server_secret=app.state.runtime.secret,
        )
    return token.token


def test_a_gift_card_bought_online_pays_part_of_an_order_and_fills_a_wallet_over_http(
    engine: Engine, clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(at(2026, 11, 27, 10))
    with TestClient(create_app(engine, clock)) as client:
        admin = Api(client, key_from_cli(engine, tenant.key, "--scope", "admin"))
        admin.post("/v1/programmes", document(EXAMPLE), status=201)
        shop = Api(client, key_from_cli(engine, tenant.key, "--scope", "integration"))
        till = Api(client, key_from_cli(engine, tenant.key, "--scope", "pos", "--store", "seattle"))
        sold = shop.post(
            f"{PROGRAMME}/gift-cards", {"amount": "50.00", "currency": "USD"}, status=201
        )
        code = sold["code"]
        assert sold["balance"] == {"amount": "50.00", "currency": "USD"}
        assert till.post("/v1/gift-cards/balance", {"code": code})["code"] is None
        paid = till.post(
            "/v1/gift-cards/payments", {"code": code, "amount": "12.50", "currency": "USD"}
        )
        assert paid["balance"]["amount"] == "37.50"
        short = till.post(
            "/v1/gift-cards/payments",
            {"code": code, "amount": "40.00", "currency": "USD"},
            status=422,
        )
        assert short["code"] == "insufficient_funds"
        assert (
            shop.post("/v1/gift-cards/loads", {"code": code, "amount": "2.50"})["balance"]["amount"]
            == "40.00"
        )
        wrong = till.post("/v1/gift-cards/balance", {"code": "NOPE"}, status=422)
        assert wrong["code"] == "invalid_gift_card"
        body = {"identifiers": {"email": "max@example.com"}, "name": "Max"}
        max_ = shop.post(f"{PROGRAMME}/members", body, status=201)["id"]
        moved = shop.post(f"/v1/members/{max_}/wallet/gift-cards", {"code": code})
        assert moved["moved"] == {"amount": "40.00", "currency": "USD"}
        assert shop.get(f"/v1/members/{max_}/wallet")["available"]["amount"] == "40.00"
        verified = admin.post("/v1/ledger/verify")
        assert verified["ok"], verified["problems"]
