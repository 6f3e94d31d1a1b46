"""Scenario 05 — Bäckerei Korn: exactly one "Fast geschafft" e-mail, after the seventh stamp.

Ben enrols with e-mail consent and confirms it through the link of the double opt-in e-mail
(the "Fast geschafft" e-mail is marketing). The till rings him up once a day; after each visit
the worker makes a pass. After the stamp of 2026-04-08 (7 of 8) the ``fast-geschafft``
automation of examples/baeckerei-korn.yaml sends "Noch 1 Stempel bis zu deinem Gratis Brot!" —
once: the full card, the stamps of the next card, more passes and the events processed again
send no second one. Received by a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import re
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
EXAMPLE = Path(__file__).parents[2] / "examples" / "baeckerei-korn.yaml"
PROGRAMME = "/v1/programmes/baeckerei-korn"
BEN = "ben@example.de"
SUBJECT = "Noch 1 Stempel bis zu deinem Gratis Brot!"


def test_ben_gets_one_fast_geschafft_email_after_his_seventh_stamp(
    engine: Engine,
    clock: FixedClock,
    tenant: Tenant,
    smtp_server: SmtpServer,  # noqa: F811 - the fixture
) -> None:
    clock.set(datetime(2026, 3, 31, 9, tzinfo=BERLIN))

    def worker_pass() -> None:
        run_pass(lambda: UnitOfWork(engine, clock), tenant_id=tenant.id)

    def fast_geschafft() -> list[str]:
        return [m.subject for m in smtp_server.to(BEN) if "Stempel" in m.subject]

    with TestClient(create_app(engine, clock)) as client:
        admin = Api(client, key_from_cli(engine, tenant.key, "--scope", "admin"))
        admin.post("/v1/programmes", document(EXAMPLE), status=201)
        till = Api(
            client, key_from_cli(engine, tenant.key, "--scope", "pos", "--store", "hauptstrasse")
        )
        ben = admin.post(
            f"{PROGRAMME}/members",
            {"identifiers": {"email": BEN}, "name": "Ben", "consents": {"email": True}},
            status=201,
        )["id"]
        # the double opt-in: Ben opens the link of the confirmation e-mail and confirms
        worker_pass()
        [confirm] = smtp_server.to(BEN)
        link = re.search(r"https?://\S+/v1/consents/confirm/\S+", confirm.text)
        assert link is not None, confirm.text
        path = link.group(0).split("/v1/", 1)[1]
        assert client.post(f"/v1/{path}").status_code == 200

        def visit(day: int, amount: str = "2.20") -> str:
            clock.set(datetime(2026, 4, day, 8, tzinfo=BERLIN))
            receipt = till.post(
                "/v1/pos/purchases",
                {
                    "token": f"email:{BEN}",
                    "external_id": f"k-04{day:02d}",
                    "currency": "EUR",
                    "lines": [{"sku": "BROT", "unit_price": amount}],
                },
                status=201,
            )
            worker_pass()
            display: str = receipt["member"]["stamp_cards"][0]["display"]
            return display

        assert visit(1, "3.50") == "1/8"
        assert visit(2, "1.50") == "1/8"  # below 2.00: no stamp
        for day in range(3, 8):
            assert visit(day) == f"{day - 1}/8"
        assert fast_geschafft() == []
        # 2026-04-08: the seventh stamp, one short of a free bread
        assert visit(8) == "7/8"
        assert fast_geschafft() == [SUBJECT]
        [mail] = [m for m in smtp_server.to(BEN) if m.subject == SUBJECT]
        assert mail.text.startswith("Hallo Ben,")
        assert "auf deiner Brotkarte fehlt nur noch 1 Stempel" in mail.text
        assert "List-Unsubscribe" in mail.headers  # marketing: one click to leave
        # the full card, then stamps on the next one: no second e-mail
        assert visit(9) == "0/8"
        assert visit(10) == "1/8"
        assert visit(11) == "2/8"
        worker_pass()
        with UnitOfWork(engine, clock) as uow:  # every event once more: still one
            uow.conn.execute(
                update(outbox).where(outbox.c.tenant_id == tenant.id).values(automated_at=None)
            )
            uow.commit()
        worker_pass()
        assert fast_geschafft() == [SUBJECT]

        [runs] = [a["runs"] for a in admin.get("/v1/automations")["data"]]
        assert (runs["done"], runs["held_out"], runs["skipped"]) == (1, 0, 0)
        [run] = admin.get("/v1/automations/fast-geschafft/runs")["data"]
        assert (run["member_id"], run["occasion"], run["trigger"]) == (
            ben,
            "brotkarte:1",
            "stamps.almost_complete",
        )
