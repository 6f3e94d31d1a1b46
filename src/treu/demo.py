"""``treu demo``: a Kiezcafé programme with members and three months of history, on SQLite.

The history is made by the real services under a moving clock (purchases, a return, reviews,
redemptions, voucher use and the nightly run for every day), so the demo ledger is exactly what a
real café would have, and ``treu ledger verify`` passes on it. Seeded: the same every time.
"""

from __future__ import annotations

import os
import random
import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

import yaml
from rich.console import Console
from sqlalchemy import select

from treu.activities.model import ActionIn, LineIn, PurchaseIn, ReturnIn, ReturnLineIn
from treu.activities.service import record_action, record_purchase, record_return
from treu.auth.model import Scope, StaffRole
from treu.auth.service import create_api_key, list_api_keys, revoke_api_key
from treu.auth.staff import add_staff_user
from treu.clock import FixedClock
from treu.errors import Conflict, TreuError
from treu.jobs.nightly import run_nightly
from treu.ledger.service import get_balances
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import Channel, IdentifierKind
from treu.members.service import find_member
from treu.members.tables import members as members_table
from treu.programmes.service import apply_programme, create_tenant, find_programme_id, find_tenant
from treu.rewards.service import consume_voucher, redeem_reward
from treu.storage.engine import make_engine
from treu.storage.migrate import upgrade
from treu.storage.uow import UnitOfWork
from treu.web.demo_links import DemoMember

DEMO_DB = "sqlite:///treu-demo.db"
TENANT = "demo"
DAYS = 90
MENU = [
    ("CAPPUCCINO", "Cappuccino", "Kaffee", Decimal("3.40")),
    ("ESPRESSO", "Espresso", "Kaffee", Decimal("2.20")),
    ("FLATWHITE", "Flat White", "Kaffee", Decimal("3.80")),
    ("CROISSANT", "Croissant", "Gebäck", Decimal("2.50")),
    ("KUCHEN", "Käsekuchen", "Kuchen", Decimal("3.90")),
    ("BAGEL", "Bagel Frischkäse", "Frühstück", Decimal("4.90")),
]
FIRST_NAMES = [
    "Mia",
    "Ben",
    "Lea",
    "Paul",
    "Emma",
    "Jonas",
    "Hanna",
    "Luca",
    "Sofia",
    "Noah",
    "Lina",
    "Elias",
    "Marie",
    "Felix",
    "Ida",
    "Emil",
]


def example_document(name: str) -> dict[str, Any]:
    text = resources.files("treu").joinpath("examples", name).read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


# The demo's staff logins and member (docs: README "Try the demo"). Known passwords: a demo.
DEMO_STAFF = (
    (StaffRole.MANAGER, "manager@kiezcafe.example", "kiezcafe-manager"),
    (StaffRole.CASHIER, "kasse@kiezcafe.example", "kiezcafe-kasse"),
)
DEMO_MEMBER = "mia@kiezcafe.example"


@dataclass(frozen=True)
class DemoLogins:
    staff: tuple[tuple[StaffRole, str, str], ...]
    member: DemoMember
    member_email: str
    secret: str  # the path secret of the demo-only shortcuts (treu.web.demo_links)


def run_demo(console: Console, *, members: int = 40, serve: bool = True, port: int = 8000) -> None:
    url = os.environ.get("TREU_DATABASE_URL", DEMO_DB)
    engine = make_engine(url)
    open_demo(engine, console, url, members=members, days=DAYS)
    env = "" if "TREU_DATABASE_URL" in os.environ else f"TREU_DATABASE_URL={url} "
    console.print(
        "\nTry next:\n"
        f"  {env}treu members show email:mia@kiezcafe.example --tenant demo -p kiezcafe\n"
        f"  {env}treu rewards list --tenant demo -p kiezcafe\n"
        f"  {env}treu activity record --tenant demo -p kiezcafe "
        "--member email:mia@kiezcafe.example --external-id my-first --total 6.80\n"
        f"  {env}treu ledger verify --tenant demo\n"
        f"  {env}treu programme show kiezcafe --tenant demo\n",
        highlight=False,
    )
    if not serve:
        engine.dispose()
        return
    admin, till = demo_keys(engine)
    logins = demo_logins(engine)
    base = f"http://127.0.0.1:{port}"
    console.print(
        f"\nDemo API keys, new on every start (older demo keys are revoked):\n"
        f"  admin  {admin}\n  till   {till}   (pos, store kastanienallee)\n\n"
        f"  curl -H 'Authorization: Bearer {till}' "
        f"'{base}/v1/programmes/kiezcafe/members/lookup?identifier=email:mia@kiezcafe.example'",
        highlight=False,
        soft_wrap=True,
    )
    print_logins(console, base, logins)
    import uvicorn

    try:
        uvicorn.run(demo_app(engine, logins), host="127.0.0.1", port=port)
    finally:
        engine.dispose()


def open_demo(engine: Any, console: Console, url: str, *, members: int, days: int) -> None:
    """Migrate, seed once, and print what the demo holds."""
    upgrade(engine)
    today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    clock = FixedClock(today - timedelta(days=days))

    def new_uow() -> UnitOfWork:
        return UnitOfWork(engine, clock)

    with new_uow() as uow:
        existing = find_tenant(uow, TENANT)
    if existing is None:
        console.print(f"Seeding the Kiezcafé demo into {url} …")
        seed(new_uow, clock, members=members, days=days)
    else:
        console.print(f"The demo is already seeded in {url}.")
    with new_uow() as uow:
        tenant = find_tenant(uow, TENANT)
        assert tenant is not None
        programme_id = find_programme_id(uow, tenant_id=tenant.id, key="kiezcafe")
        ids = uow.conn.execute(
            select(members_table.c.id, members_table.c.name)
            .where(members_table.c.programme_id == programme_id)
            .order_by(members_table.c.enrolled_at)
        ).all()
        report = verify_ledger(uow, tenant_id=tenant.id)
        balances = [get_balances(uow, tenant_id=tenant.id, member_id=m.id) for m in ids]
    issued = sum(b.lifetime_earned for b in balances)
    console.print(
        f"\n[bold]Kiezcafé Treue[/bold]: {len(ids)} members, {issued} Punkte issued, "
        f"{sum(b.available for b in balances)} available, "
        f"{sum(b.spent for b in balances)} redeemed; "
        f"ledger verify: {'ok' if report.ok else 'PROBLEMS'}"
    )


def demo_logins(engine: Any) -> DemoLogins:
    """The demo's manager and cashier (made once, with their known passwords), its member, and a
    new path secret for the member's shortcuts."""
    with UnitOfWork(engine) as uow:
        tenant = find_tenant(uow, TENANT)
        assert tenant is not None
        programme_id = find_programme_id(uow, tenant_id=tenant.id, key="kiezcafe")
        member = find_member(uow, programme_id=programme_id, reference=f"email:{DEMO_MEMBER}")
    for role, email, password in DEMO_STAFF:
        with suppress(Conflict), UnitOfWork(engine) as uow:  # made on an earlier start
            add_staff_user(uow, tenant_id=tenant.id, email=email, role=role, password=password)
    return DemoLogins(
        DEMO_STAFF,
        DemoMember(tenant.id, TENANT, "kiezcafe", member.id),
        DEMO_MEMBER,
        secrets.token_urlsafe(16),
    )


def demo_app(engine: Any, logins: DemoLogins) -> Any:
    """The API, portal and console, plus the demo-only shortcuts (``treu serve`` has none)."""
    from treu.api.app import create_app
    from treu.web.demo_links import install_demo_links

    app = create_app(engine)
    install_demo_links(app, secret=logins.secret, member=logins.member)
    return app


def print_logins(console: Console, base: str, logins: DemoLogins) -> None:
    shortcut = f"{base}/demo/{logins.secret}"
    staff = "\n".join(
        f"                 {role.value:<8} {email}  password: {password}"
        for role, email, password in logins.staff
    )
    console.print(
        f"\nServing Treu on {base} (Ctrl-C stops it):\n"
        f"  API docs       {base}/docs\n"
        f"  Staff console  {base}/console/{TENANT}/\n{staff}\n"
        f"  Member portal  {base}/portal/{TENANT}/kiezcafe/\n"
        f"                 member   {logins.member_email}  (log in by code, or at once: "
        f"{shortcut}/portal )\n"
        f"  Widget demo    {base}/widget/demo/{TENANT}/kiezcafe  (as a guest)\n"
        f"                 {shortcut}/shop  (as {logins.member_email})\n",
        highlight=False,
        soft_wrap=True,
    )


def demo_keys(engine: Any) -> tuple[str, str]:
    """A fresh admin key and a till key for the demo tenant; earlier demo keys are revoked."""
    with UnitOfWork(engine) as uow:
        tenant = find_tenant(uow, TENANT)
        assert tenant is not None
        old = [k.id for k in list_api_keys(uow, tenant_id=tenant.id) if k.name.startswith("demo ")]
    for key_id in old:
        with UnitOfWork(engine) as uow:
            revoke_api_key(uow, tenant_id=tenant.id, key_id=key_id)
    with UnitOfWork(engine) as uow:
        admin = create_api_key(uow, tenant_id=tenant.id, scope=Scope.ADMIN, name="demo admin")
    with UnitOfWork(engine) as uow:
        till = create_api_key(
            uow, tenant_id=tenant.id, scope=Scope.POS, name="demo till", store="kastanienallee"
        )
    return admin.token, till.token


def seed(new_uow: Any, clock: FixedClock, *, members: int, days: int) -> None:
    rng = random.Random(2026)
    start = clock.now()
    with new_uow() as uow:
        tenant_id = create_tenant(uow, key=TENANT, name="Kiezcafé GmbH").id
    with new_uow() as uow:
        programme_id = apply_programme(
            uow, tenant_id=tenant_id, document=example_document("kiezcafe.yaml")
        ).programme_id
    member_ids: list[str] = []
    for i in range(members):
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        email = f"{first.lower()}{'' if i < len(FIRST_NAMES) else i}@kiezcafe.example"
        clock.set(start + timedelta(days=rng.randrange(0, days // 2), hours=rng.randrange(0, 10)))
        with new_uow() as uow:
            member = enrol_member(
                uow,
                programme_id=programme_id,
                identifiers_={IdentifierKind.EMAIL: email},
                name=f"{first} {chr(65 + i % 26)}.",
                birthday=date(1980 + i % 25, 1 + i % 12, 1 + i % 28),
                consents_={Channel.EMAIL: rng.random() < 0.7},
                source="demo",
            )
        member_ids.append(member.id)
    regulars = {m: rng.choice([0.05, 0.15, 0.3, 0.5]) for m in member_ids}
    counter = 0
    for day in range(days):
        morning = start + timedelta(days=day)
        for member_id, chance in regulars.items():
            if rng.random() >= chance:
                continue
            counter += 1
            at = morning + timedelta(hours=rng.choice([1, 2, 3, 6, 9]), minutes=rng.randrange(60))
            clock.set(at)
            lines = [
                LineIn(
                    sku=sku,
                    name=name,
                    category=cat,
                    unit_price=price,
                    quantity=rng.choice([1, 1, 2]),
                )
                for sku, name, cat, price in rng.sample(MENU, rng.choice([1, 1, 2, 3]))
            ]
            purchase = PurchaseIn(
                external_id=f"bon-{counter:06d}",
                currency="EUR",
                lines=lines,
                store="kastanienallee",
                channel="pos",
                occurred_at=at,
            )
            try:
                with new_uow() as uow:
                    record_purchase(
                        uow, programme_id=programme_id, purchase=purchase, member=member_id
                    )
                if rng.random() < 0.03:
                    with new_uow() as uow:
                        record_return(
                            uow,
                            programme_id=programme_id,
                            ret=ReturnIn(
                                external_id=f"storno-{counter:06d}",
                                purchase_external_id=purchase.external_id,
                                lines=[ReturnLineIn(line=0, quantity=1)],
                                occurred_at=at,
                            ),
                        )
                if rng.random() < 0.05:
                    with suppress(TreuError), new_uow() as uow:  # the month's reviews: refused
                        record_action(
                            uow,
                            programme_id=programme_id,
                            member=member_id,
                            action=ActionIn(
                                external_id=f"review-{counter}", type="review", occurred_at=at
                            ),
                        )
                if rng.random() < 0.15:
                    with new_uow() as uow:
                        reward = rng.choice(["gratis-kaffee", "kuchen", "fuenf-euro"])
                        voucher = redeem_reward(
                            uow,
                            tenant_id=tenant_id,
                            member_id=member_id,
                            reward_key=reward,
                            idempotency_key=f"demo-{counter}",
                        ).voucher
                    if rng.random() < 0.8:
                        with new_uow() as uow:
                            consume_voucher(uow, tenant_id=tenant_id, code=voucher.code)
            except TreuError:
                pass  # not enough points yet: a real member would not get a voucher either
        clock.set(morning + timedelta(hours=23))
        run_nightly(new_uow, day=(morning + timedelta(days=1)).date(), programme_id=programme_id)
