"""Helpers of the API tests: a tenant with a programme and keys of every scope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from treu.auth.model import Scope
from treu.auth.service import create_api_key
from treu.programmes.service import create_tenant
from treu.storage.uow import UnitOfWork


def document(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "name": "Kiezcafé Treue",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "country": "DE",
        "stores": [
            {"key": "kastanienallee", "name": "Kastanienallee"},
            {"key": "online", "name": "Webshop", "channel": "online"},
        ],
        "rules": [
            {
                "key": "punkte",
                "name": "1 Punkt je Euro",
                "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
            },
            {
                "key": "bewertung",
                "name": "Bewertung",
                "when": {"activity": "action", "action_types": ["review"]},
                "effect": {"type": "fixed", "points": 10},
            },
        ],
        "rewards": [
            {
                "key": "kaffee",
                "name": "Gratis Kaffee",
                "kind": "free_product",
                "sku": "K",
                "cost": 30,
            },
            {
                "key": "fuenf-euro",
                "name": "5 € Rabatt",
                "kind": "fixed_discount",
                "value": "5.00",
                "cost": 100,
            },
        ],
        "memberships": [{"key": "plus", "name": "Plus", "billing": "monthly", "fee": "5.00"}],
    }


@dataclass
class Tenant:
    """A tenant with one programme, seen through its API keys."""

    id: str
    programme: str
    client: TestClient
    keys: dict[str, str]  # admin, integration, pos (bound to kastanienallee), read

    def headers(self, who: str = "admin", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}

    def get(self, url: str, who: str = "admin", **kw: Any) -> Any:
        return self.client.get(url, headers=self.headers(who), **kw)

    def post(self, url: str, body: Any = None, who: str = "admin", **headers: str) -> Any:
        return self.client.post(url, json=body, headers=self.headers(who, **headers))

    def enrol(self, email: str | None = None, **body: Any) -> dict[str, Any]:
        email = email or f"{uuid.uuid4().hex[:8]}@example.org"
        r = self.post(
            f"/v1/programmes/{self.programme}/members",
            {"identifiers": {"email": email}, **body},
        )
        assert r.status_code == 201, r.text
        member: dict[str, Any] = r.json()
        return member

    def buy(self, member: str | None, total: str, who: str = "admin", **body: Any) -> Any:
        purchase = {
            "external_id": f"bon-{uuid.uuid4().hex[:10]}",
            "currency": "EUR",
            "total": total,
            "member": member,
            **body,
        }
        return self.post(f"/v1/programmes/{self.programme}/purchases", purchase, who=who)


def make_tenant(engine: Engine, client: TestClient) -> Tenant:
    suffix = uuid.uuid4().hex[:10]
    with UnitOfWork(engine) as uow:
        tenant_id = create_tenant(uow, key=f"api-{suffix}").id
    admin = new_key(engine, tenant_id, Scope.ADMIN)
    programme = f"cafe-{suffix}"
    r = client.post(
        "/v1/programmes", json=document(programme), headers={"Authorization": f"Bearer {admin}"}
    )
    assert r.status_code == 201, r.text
    keys = {
        "admin": admin,
        "integration": new_key(engine, tenant_id, Scope.INTEGRATION),
        "pos": new_key(engine, tenant_id, Scope.POS, store="kastanienallee"),
        "read": new_key(engine, tenant_id, Scope.READ),
    }
    return Tenant(tenant_id, programme, client, keys)


def new_key(engine: Engine, tenant_id: str, scope: Scope, store: str | None = None) -> str:
    with UnitOfWork(engine) as uow:
        return create_api_key(
            uow, tenant_id=tenant_id, scope=scope, name=f"test {scope}", store=store
        ).token
