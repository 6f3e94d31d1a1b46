"""Scenario 06 — Mercado Smart: the nightly run of 2027-07-01 e-mails Rui that 20 points expire
on 2027-07-31, in the programme's language, once.

The walk-through of test_06_http.py up to the reminder (same purchases, birthday, redemption),
through the HTTP API; the nightly run (``POST /v1/jobs/nightly``) publishes
``points.expiring``, its ``automations`` step fires ``lembrete-validade`` of
examples/mercado-smart.yaml and its ``messages`` step sends the e-mail to a real SMTP server.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from http_support import Api, document, key_from_cli
from sqlalchemy import Engine

from messaging_support import SmtpServer, smtp_server  # noqa: F401 - a fixture
from treu.api.app import create_app
from treu.clock import FixedClock
from treu.programmes.service import Tenant

SP = ZoneInfo("America/Sao_Paulo")
EXAMPLE = Path(__file__).parents[2] / "examples" / "mercado-smart.yaml"
PROGRAMME = "/v1/programmes/mercado-smart"
RUI = "rui@example.com.br"


def test_rui_is_reminded_of_20_points_expiring_on_2027_07_31_by_the_nightly_run(
    engine: Engine,
    clock: FixedClock,
    tenant: Tenant,
    smtp_server: SmtpServer,  # noqa: F811 - the fixture
) -> None:
    clock.set(datetime(2026, 1, 1, 9, tzinfo=SP))
    with TestClient(create_app(engine, clock)) as client:
        admin = Api(client, key_from_cli(engine, tenant.key, "--scope", "admin"))
        admin.post("/v1/programmes", document(EXAMPLE), status=201)
        rui = admin.post(
            f"{PROGRAMME}/members",
            {"identifiers": {"email": RUI}, "name": "Rui", "birthday": "1990-07-15"},
            status=201,
        )["id"]

        def buy(external_id: str, when: datetime, category: str, price: str) -> None:
            clock.set(when)
            line = {"sku": "X", "category": category, "unit_price": price}
            purchase = {"external_id": external_id, "currency": "BRL", "member": rui}
            admin.post(f"{PROGRAMME}/purchases", {**purchase, "lines": [line]}, status=201)

        def nightly(day: date) -> None:
            clock.set(datetime(day.year, day.month, day.day, 1, tzinfo=SP))
            admin.post("/v1/jobs/nightly", {"date": day.isoformat(), "programme": "mercado-smart"})

        def reminders() -> list[str]:
            return [m.subject for m in smtp_server.to(RUI) if "expiram" in m.subject]

        buy("pdv-1", datetime(2026, 1, 10, 10, tzinfo=SP), "Mercearia", "120.00")  # 120 points
        nightly(date(2026, 7, 15))  # the birthday: 100 points, expiring 2027-07-31
        buy("pdv-2", datetime(2026, 12, 22, 18, tzinfo=SP), "Doces", "80.00")  # 160 (Natal)
        clock.set(datetime(2027, 1, 5, 12, tzinfo=SP))
        admin.post(f"/v1/members/{rui}/redemptions", {"reward": "desconto-10"}, status=201)
        nightly(date(2027, 2, 1))
        nightly(date(2027, 6, 30))
        assert reminders() == []

        nightly(date(2027, 7, 1))
        assert reminders() == ["20 Pontos expiram em 2027-07-31"]
        [mail] = [m for m in smtp_server.to(RUI) if "expiram" in m.subject]
        assert mail.text.startswith("Olá Rui,")
        assert "20 dos seus Pontos expiram em 2027-07-31. Seu saldo: 180 Pontos." in mail.text

        nightly(date(2027, 7, 1))  # the same night again
        nightly(date(2027, 7, 2))
        assert reminders() == ["20 Pontos expiram em 2027-07-31"]
        [run] = admin.get("/v1/automations/lembrete-validade/runs")["data"]
        assert (run["occasion"], run["outcome"]) == ("2027-07-31", "done")
