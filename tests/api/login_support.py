"""Helpers of the log-in tests: members log in with a code read from the outbox (until the
messaging issue e-mails it), staff users with a password."""

from __future__ import annotations

from typing import Any

from api_support import Tenant
from sqlalchemy import Engine, select

from treu.auth.model import StaffRole
from treu.auth.staff import add_staff_user
from treu.outbox.service import list_events
from treu.programmes.tables import tenants
from treu.storage.uow import UnitOfWork

PASSWORD = "correct horse battery staple"


def programme_id(shop: Tenant) -> str:
    found: str = shop.get(f"/v1/programmes/{shop.programme}").json()["id"]
    return found


def tenant_key(engine: Engine, shop: Tenant) -> str:
    with UnitOfWork(engine) as uow:
        return str(uow.conn.execute(select(tenants.c.key).where(tenants.c.id == shop.id)).scalar())


def last_code(engine: Engine, shop: Tenant, member_id: str) -> dict[str, Any]:
    """The newest ``member.login_code`` event of the member: what the e-mail will say."""
    with UnitOfWork(engine) as uow:
        events = list_events(uow, tenant_id=shop.id, type="member.login_code")
    mine = [e["payload"] for e in events if e["payload"]["member_id"] == member_id]
    assert mine, "no login code published"
    return mine[-1]


def request_code(shop: Tenant, identifier: str) -> Any:
    body = {"programme": programme_id(shop), "identifier": identifier}
    return shop.client.post("/v1/member-auth/code", json=body)


def exchange(shop: Tenant, identifier: str, code: str) -> Any:
    body = {"programme": programme_id(shop), "identifier": identifier, "code": code}
    return shop.client.post("/v1/member-auth/token", json=body)


def member_token(engine: Engine, shop: Tenant, member: dict[str, Any], email: str) -> str:
    """Log ``member`` in the way the portal does: request a code, read it, exchange it."""
    assert request_code(shop, email).status_code == 202
    r = exchange(shop, email, last_code(engine, shop, member["id"])["code"])
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def staff_token(engine: Engine, shop: Tenant, role: StaffRole, email: str) -> str:
    with UnitOfWork(engine) as uow:
        add_staff_user(uow, tenant_id=shop.id, email=email, role=role, password=PASSWORD)
    body = {"tenant": tenant_key(engine, shop), "email": email, "password": PASSWORD}
    r = shop.client.post("/v1/staff/login", json=body)
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
