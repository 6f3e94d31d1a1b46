"""Helpers of the web tests: a café with a programme, members with history, log-in by code."""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from treu.activities.model import LineIn, PurchaseIn
from treu.activities.service import record_purchase
from treu.demo import example_document
from treu.members.enrolment import enrol_member
from treu.members.model import Channel, IdentifierKind, Member
from treu.members.service import get_member
from treu.outbox.service import list_events
from treu.programmes.service import apply_programme, create_tenant
from treu.storage.uow import UnitOfWork

CAPPUCCINO = LineIn(
    sku="CAPPUCCINO", name="Cappuccino", category="Kaffee", unit_price=Decimal("3.40"), quantity=1
)
KUCHEN = LineIn(
    sku="KUCHEN", name="Käsekuchen", category="Kuchen", unit_price=Decimal("3.90"), quantity=1
)


def cafe_document() -> dict[str, Any]:
    """The Kiezcafé example with tiers and referrals on top, so every portal section shows."""
    doc = copy.deepcopy(example_document("kiezcafe.yaml"))
    doc["tiers"] = {
        "metric": "spend",
        "levels": [
            {"key": "stammgast", "name": "Stammgast", "threshold": 0},
            {
                "key": "kiezheld",
                "name": "Kiezheld",
                "threshold": "100.00",
                "perks": ["Gratis Wasser"],
            },
        ],
    }
    doc["referral"] = {"friend_reward": {"points": 20}, "link_base": "https://kiezcafe.example/r/"}
    return doc


@dataclass
class Cafe:
    engine: Engine
    tenant_id: str
    tenant_key: str
    programme_id: str
    base: str  # the server's address

    @property
    def portal(self) -> str:
        return f"{self.base}/portal/{self.tenant_key}/kiezcafe"

    def enrol(self, email: str | None = None, *, name: str = "Jürgen Müller") -> Member:
        email = email or f"m-{uuid.uuid4().hex[:8]}@kiezcafe.example"
        with UnitOfWork(self.engine) as uow:
            return enrol_member(
                uow,
                programme_id=self.programme_id,
                identifiers_={IdentifierKind.EMAIL: email},
                name=name,
                consents_={Channel.EMAIL: True},
                source="test",
            )

    def buy(self, member_id: str, *lines: LineIn) -> int:
        with UnitOfWork(self.engine) as uow:
            result = record_purchase(
                uow,
                programme_id=self.programme_id,
                purchase=PurchaseIn(
                    external_id=f"bon-{uuid.uuid4().hex[:10]}",
                    currency="EUR",
                    lines=list(lines),
                    store="kastanienallee",
                    channel="pos",
                ),
                member=member_id,
            )
        return result.points

    def member(self, member_id: str) -> Member:
        with UnitOfWork(self.engine) as uow:
            return get_member(uow, member_id, tenant_id=self.tenant_id)

    def login_code(self, member_id: str) -> str:
        """The newest ``member.login_code`` of the member, as the e-mail would carry it."""
        with UnitOfWork(self.engine) as uow:
            events = list_events(uow, tenant_id=self.tenant_id, type="member.login_code")
        codes = [e["payload"]["code"] for e in events if e["payload"]["member_id"] == member_id]
        assert codes, "no login code published"
        code: str = codes[-1]
        return code


def make_cafe(engine: Engine, base: str) -> Cafe:
    key = f"cafe-{uuid.uuid4().hex[:8]}"
    with UnitOfWork(engine) as uow:
        tenant = create_tenant(uow, key=key, name="Kiezcafé GmbH")
    with UnitOfWork(engine) as uow:
        applied = apply_programme(uow, tenant_id=tenant.id, document=cafe_document())
    return Cafe(engine, tenant.id, key, applied.programme_id, base)


def log_in(page: Page, cafe: Cafe, member_id: str, email: str) -> None:
    page.goto(cafe.portal + "/")
    expect(page).to_have_url(re.compile(r"/login$"))  # no session: the portal sends you here
    page.get_by_label("E-Mail-Adresse oder Telefonnummer").fill(email)
    page.get_by_role("button", name="Code schicken").click()
    expect(page.get_by_text("6-stelliger Code")).to_be_visible()
    page.get_by_label("Code").fill(cafe.login_code(member_id))
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("heading", name="Zeig diesen Code an der Kasse")).to_be_visible()


def member_with_history(cafe: Cafe) -> tuple[str, str]:
    email = f"juergen@{cafe.tenant_key}.example"  # log-ins are rate-limited per address
    member = cafe.enrol(email)
    # 12 Cappuccino (40.80 €): 40 points and 12 stamps (a full card of 10, 2 on the next)
    cafe.buy(member.id, CAPPUCCINO.model_copy(update={"quantity": 12}))
    cafe.buy(member.id, KUCHEN)  # 3.90 €: 3 points
    return member.id, email
