"""Scenario 05 — Bäckerei Korn: a punch card with QR at the till, through the HTTP API.

The till has a store-bound key with the ``pos`` scope; Ben shows the QR code of the member portal
(``/v1/me/qr-token``, a new one each visit) and the till sends it with the purchase in one call.
The "Fast geschafft" e-mail comes with the messaging issue: what it will send from is the
``stamps.almost_complete`` event in the outbox, checked here to be published exactly once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from http_support import Api, document, key_from_cli
from sqlalchemy import Engine

from treu.api.app import create_app
from treu.api.ratelimit import RateLimiter
from treu.clock import FixedClock
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.outbox.service import list_events
from treu.programmes.service import Tenant, apply_programme, create_tenant
from treu.storage.uow import UnitOfWork

BERLIN = ZoneInfo("Europe/Berlin")
EXAMPLE = Path(__file__).parents[2] / "examples" / "baeckerei-korn.yaml"
PROGRAMME = "/v1/programmes/baeckerei-korn"


def almost_complete_events(engine: Engine, tenant: Tenant) -> list[dict[str, Any]]:
    with UnitOfWork(engine) as uow:
        return [
            e["payload"]
            for e in list_events(uow, tenant_id=tenant.id, type="stamps.almost_complete")
        ]


def test_ben_fills_his_brotkarte_by_qr_code_at_the_till(
    engine: Engine, clock: FixedClock, tenant: Tenant
) -> None:
    clock.set(datetime(2026, 3, 31, 9, tzinfo=BERLIN))
    app = create_app(engine, clock)
    # Ben logs in to the portal every morning: more log-ins than the default limit per minute
    app.state.rate_limiter = RateLimiter(
        per_key="1000/minute", per_address="1000/minute", per_login="1000/minute"
    )
    with TestClient(app) as client:
        admin = Api(client, key_from_cli(engine, tenant.key, "--scope", "admin"))
        admin.post("/v1/programmes", document(EXAMPLE), status=201)
        programme_id = admin.get(PROGRAMME)["id"]
        till = Api(
            client, key_from_cli(engine, tenant.key, "--scope", "pos", "--store", "hauptstrasse")
        )
        ben = admin.post(
            f"{PROGRAMME}/members",
            {
                "identifiers": {"email": "ben@example.de"},
                "name": "Ben",
                "consents": {"email": True},
            },
            status=201,
        )["id"]

        session: dict[str, str] = {}  # Ben's portal log-in

        def qr_code() -> str:
            """What Ben's phone shows now: log in with an e-mailed code, ask for the QR token."""
            ask = {"programme": programme_id, "identifier": "ben@example.de"}
            assert client.post("/v1/member-auth/code", json=ask).status_code == 202
            with UnitOfWork(engine) as uow:
                sent = list_events(uow, tenant_id=tenant.id, type="member.login_code")
            code = sent[-1]["payload"]["code"]
            login = client.post("/v1/member-auth/token", json={**ask, "code": code})
            bearer = {"Authorization": f"Bearer {login.json()['token']}"}
            session.update(bearer)
            token: str = client.post("/v1/me/qr-token", headers=bearer).json()["token"]
            return token

        def buy(
            day: int, amount: str, bon: str, *, hour: int = 8, token: str | None = None
        ) -> dict[str, Any]:
            clock.set(datetime(2026, 4, day, hour, tzinfo=BERLIN))
            body = {
                "token": token or qr_code(),
                "external_id": bon,
                "currency": "EUR",
                "lines": [{"sku": "BROT", "unit_price": amount}],
            }
            found: dict[str, Any] = till.post("/v1/pos/purchases", body, status=201)
            return found

        def card(receipt: dict[str, Any]) -> str:
            display: str = receipt["member"]["stamp_cards"][0]["display"]
            return display

        def said(receipt: dict[str, Any]) -> list[tuple[str, str]]:
            return [(e["kind"], e["explanation"]) for e in receipt["activity"]["effects"]]

        # 1. 3.50 on 2026-04-01: Ben is identified by his QR code and gets his first stamp
        first = buy(1, "3.50", "k-0401-1")
        assert first["member"]["name"] == "Ben"
        assert said(first) == [("stamps.earned", "Brotkarte: 1 stamp for the visit (3.50 EUR)")]
        assert card(first) == "1/8"
        # 2. a second purchase the same day: no stamp, and the till says why
        second = buy(1, "4.00", "k-0401-2", hour=16)
        assert said(second) == [("stamps.not_earned", "Brotkarte: already stamped today")]
        assert card(second) == "1/8"
        # 3. 1.50 on 2026-04-02: below the minimum
        small = buy(2, "1.50", "k-0402")
        assert said(small) == [("stamps.not_earned", "Brotkarte: below minimum spend 2.00 EUR")]
        assert card(small) == "1/8"
        # 4. 2026-04-03 ... 2026-04-08: stamps 2 ... 7; the till retries 04-05 after a timeout
        for day in range(3, 9):
            if day == 5:
                clock.set(datetime(2026, 4, day, 8, tzinfo=BERLIN))
                body = {
                    "token": qr_code(),
                    "external_id": "k-0405",
                    "currency": "EUR",
                    "lines": [{"sku": "BROT", "unit_price": "2.20"}],
                }
                headers = {**till.headers, "Idempotency-Key": "till-7-0405"}
                sent = client.post("/v1/pos/purchases", json=body, headers=headers)
                retried = client.post("/v1/pos/purchases", json=body, headers=headers)
                assert (sent.status_code, retried.status_code) == (201, 201)
                assert retried.headers["Idempotent-Replayed"] == "true"
                assert card(retried.json()) == card(sent.json()) == "4/8"
                continue
            assert almost_complete_events(engine, tenant) == []
            assert card(buy(day, "2.20", f"k-04{day:02d}")) == f"{day - 1}/8"
        # ... and after the seventh stamp, one "Fast geschafft" event for this card
        [almost] = almost_complete_events(engine, tenant)
        assert (almost["member_id"], almost["card"], almost["stamps"]) == (ben, "brotkarte", 7)
        # 5. 2026-04-09: stamp 8 fills the card: a "Gratis Brot" voucher, the card back to 0/8
        full = buy(9, "2.20", "k-0409")
        kinds = [kind for kind, _ in said(full)]
        assert kinds == ["stamps.earned", "card.completed"]
        assert card(full) == "0/8"
        code = full["activity"]["effects"][1]["data"]["code"]
        assert [v["reward_name"] for v in full["member"]["vouchers"]] == ["Gratis Brot"]
        assert almost_complete_events(engine, tenant) == [almost]
        # 6. 2026-04-10: the cashier scans the voucher's code: used
        clock.set(datetime(2026, 4, 10, 8, tzinfo=BERLIN))
        assert till.post(f"/v1/vouchers/{code}/consume")["status"] == "used"
        # 7. scanning it again is refused
        again = till.post(f"/v1/vouchers/{code}/consume", status=422)
        assert again["code"] == "voucher_already_used"
        # 8. a tampered QR code (one character changed): refused, nothing recorded
        shown = qr_code()
        tampered = shown[:-1] + ("A" if shown[-1] != "A" else "B")
        before = admin.get(f"/v1/members/{ben}/history", limit=100)["data"]
        refused = till.post(
            "/v1/pos/purchases",
            {
                "token": tampered,
                "external_id": "k-0410",
                "currency": "EUR",
                "lines": [{"sku": "BROT", "unit_price": "2.20"}],
            },
            status=422,
        )
        assert refused["code"] == "invalid_token"
        assert admin.get(f"/v1/members/{ben}/history", limit=100)["data"] == before

        scanned = till.post("/v1/pos/scan", {"token": qr_code()})
        assert [c["display"] for c in scanned["stamp_cards"]] == ["0/8"]
        mine = client.get("/v1/me/stamp-cards", headers=session).json()
        assert [(c["display"], c["voucher_status"]) for c in mine["completed"]] == [("8/8", "used")]
        cards = till.get(f"/v1/members/{ben}/stamp-cards")
        assert [c["display"] for c in cards["current"]] == ["0/8"]
        assert [(c["number"], c["voucher_status"]) for c in cards["completed"]] == [(1, "used")]
        stamps = [h for h in before if h["unit"] == "stamps"]
        assert sum(h["points"] for h in stamps) == 0
        assert len([h for h in stamps if h["kind"] == "earn"]) == 8
        # a till's key reads its members' cards, but is no admin
        till.call("POST", "/v1/programmes", document(EXAMPLE), status=403)
        till.call("GET", f"/v1/members/{ben}/history", status=403)
        till.call("POST", "/v1/ledger/verify", status=403)
        # nor another tenant's members: to this key they do not exist
        with UnitOfWork(engine, clock) as uow:
            other = create_tenant(uow, key=f"t-{uuid.uuid4().hex[:12]}")
        with UnitOfWork(engine, clock) as uow:
            elsewhere = apply_programme(
                uow, tenant_id=other.id, document=document(EXAMPLE)
            ).programme_id
        with UnitOfWork(engine, clock) as uow:
            stranger = enrol_member(
                uow,
                programme_id=elsewhere,
                identifiers_={IdentifierKind.EMAIL: "ben@example.de"},
                source="till",
            ).id
        till.call("GET", f"/v1/members/{stranger}/stamp-cards", status=404)
        till.call("GET", f"/v1/members/{stranger}/balances", status=404)
        assert admin.post("/v1/ledger/verify")["ok"] is True
