"""Scenario 01 — Kiezcafé: Mia enrols with e-mail consent and gets one welcome e-mail in German.

Through the HTTP API and the worker, received by a real SMTP server (aiosmtpd): the enrolment
publishes ``member.enrolled``, the worker's pass fires the ``willkommen`` automation of
examples/kiezcafe.yaml (the built-in ``welcome`` template, transactional) and sends the
message. Further passes, and the same event processed again, send nothing more.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from http_support import Api, document, key_from_cli
from sqlalchemy import Engine, update

from messaging_support import SmtpServer, smtp_server  # noqa: F401 - a fixture
from treu.api.app import create_app
from treu.clock import FixedClock
from treu.outbox.tables import outbox
from treu.programmes.service import Tenant
from treu.storage.uow import UnitOfWork
from treu.worker import run_pass

BERLIN = ZoneInfo("Europe/Berlin")
EXAMPLE = Path(__file__).parents[2] / "examples" / "kiezcafe.yaml"
PROGRAMME = "/v1/programmes/kiezcafe"


def test_mia_gets_exactly_one_welcome_email_in_german(
    engine: Engine,
    clock: FixedClock,
    tenant: Tenant,
    smtp_server: SmtpServer,  # noqa: F811 - the fixture
) -> None:
    clock.set(datetime(2026, 3, 2, 8, tzinfo=BERLIN))

    def worker_pass() -> None:
        run_pass(lambda: UnitOfWork(engine, clock), tenant_id=tenant.id)

    with TestClient(create_app(engine, clock)) as client:
        admin = Api(client, key_from_cli(engine, tenant.key, "--scope", "admin"))
        admin.post("/v1/programmes", document(EXAMPLE), status=201)
        mia = admin.post(
            f"{PROGRAMME}/members",
            {
                "identifiers": {"email": "mia@example.de"},
                "name": "Mia",
                "consents": {"email": True},
            },
            status=201,
        )["id"]
        assert smtp_server.received == []  # the request itself sends nothing
        worker_pass()
        worker_pass()

        def welcomes() -> list[str]:
            to_mia = smtp_server.to("mia@example.de")
            return [m.subject for m in to_mia if m.subject.startswith("Willkommen")]

        assert welcomes() == ["Willkommen bei Kiezcafé Treue!"]
        [welcome] = [m for m in smtp_server.to("mia@example.de") if "Willkommen" in m.subject]
        assert welcome.text.startswith("Hallo Mia,")
        assert "schön, dass du dabei bist" in welcome.text  # German, umlauts intact
        assert "Willkommen bei Kiezcafé Treue" in welcome.html

        # the event once more (a restored backup, a bug): no second welcome
        with UnitOfWork(engine, clock) as uow:
            uow.conn.execute(
                update(outbox).where(outbox.c.tenant_id == tenant.id).values(automated_at=None)
            )
            uow.commit()
        worker_pass()
        assert len(welcomes()) == 1

        [willkommen] = admin.get("/v1/automations", programme="kiezcafe")["data"]
        assert (willkommen["key"], willkommen["runs"]["done"]) == ("willkommen", 1)
        [run] = admin.get("/v1/automations/willkommen/runs")["data"]
        assert (run["member_id"], run["occasion"], run["outcome"]) == (mia, "enrolment", "done")
        sent = admin.get(f"/v1/members/{mia}/messages")["data"]
        assert [(m["template"], m["status"]) for m in sent if m["automation"]] == [
            ("welcome", "sent")
        ]
