"""Helpers of the shop webhook tests: a café with a webshop, its connections, and deliveries
signed the way Shopify and WooCommerce sign them."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

from api_support import Tenant, document, new_key
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from treu.activities.tables import activities
from treu.auth.model import Scope
from treu.programmes.service import create_tenant
from treu.storage.uow import UnitOfWork

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shops"
SHOPIFY_SECRET = "0f3c9d2e8b7a4c1d6e5f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d"


def fixture(name: str) -> dict[str, Any]:
    """A platform payload, fresh for each use (tests change ids and addresses)."""
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return copy.deepcopy(loaded)


def cafe_document(key: str) -> dict[str, Any]:
    """The API tests' café, with rules that look at categories and brands:
    1 point per euro, 1 more per euro of coffee, 1 more per euro of anything by Acme."""
    doc = document(key)
    doc["rules"] = [
        {
            "key": "punkte",
            "name": "1 Punkt je Euro",
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        },
        {
            "key": "kaffee",
            "name": "Kaffee zählt doppelt",
            "when": {"include": {"categories": ["Kaffee"]}},
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        },
        {
            "key": "acme",
            "name": "Acme-Bonus",
            "when": {"include": {"brands": ["Acme"]}},
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        },
    ]
    return doc


def cafe(engine: Engine, client: TestClient) -> Tenant:
    suffix = uuid.uuid4().hex[:10]
    with UnitOfWork(engine) as uow:
        tenant_id = create_tenant(uow, key=f"shop-{suffix}").id
    admin = new_key(engine, tenant_id, Scope.ADMIN)
    programme = f"kiez-{suffix}"
    created = client.post(
        "/v1/programmes",
        json=cafe_document(programme),
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert created.status_code == 201, created.text
    keys = {"admin": admin, "integration": new_key(engine, tenant_id, Scope.INTEGRATION)}
    return Tenant(tenant_id, programme, client, keys)


def connect(t: Tenant, platform: str, **body: Any) -> dict[str, Any]:
    shop = "kiezcafe.myshopify.com" if platform == "shopify" else "shop.example.org"
    given = {"platform": platform, "shop": shop, "store": "online", **body}
    if platform == "shopify":
        given.setdefault("secret", SHOPIFY_SECRET)
    r = t.post(f"/v1/programmes/{t.programme}/shop-connections", given)
    assert r.status_code == 201, r.text
    connection: dict[str, Any] = r.json()
    return connection


def sign(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def shopify(
    t: Tenant,
    connection: dict[str, Any],
    topic: str,
    payload: dict[str, Any],
    *,
    webhook_id: str | None = None,
    secret: str | None = None,
    signature: str | None = None,
    shop: str | None = None,
) -> Any:
    """POST as Shopify does: the raw JSON, signed, with the topic and the webhook id."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature or sign(secret or connection["secret"], body),
        "X-Shopify-Shop-Domain": shop or connection["shop"],
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Triggered-At": "2026-11-20T13:03:12.123456789Z",
    }
    return t.client.post(f"/v1/shops/{connection['id']}/shopify", content=body, headers=headers)


def woocommerce(
    t: Tenant,
    connection: dict[str, Any],
    topic: str,
    payload: dict[str, Any],
    *,
    delivery_id: str | None = None,
    secret: str | None = None,
) -> Any:
    """POST as WooCommerce does (``WC_Webhook::deliver``)."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7)",
        "X-WC-Webhook-Source": "https://shop.example.org/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": topic.split(".")[-1],
        "X-WC-Webhook-Signature": sign(secret or connection["secret"], body),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
    }
    return t.client.post(f"/v1/shops/{connection['id']}/woocommerce", content=body, headers=headers)


def balance(t: Tenant, member_id: str) -> int:
    r = t.get(f"/v1/members/{member_id}/balances")
    assert r.status_code == 200, r.text
    available: int = r.json()["available"]
    return available


def receipts(t: Tenant, connection: dict[str, Any], **params: str) -> list[dict[str, Any]]:
    r = t.get(f"/v1/shop-connections/{connection['id']}/receipts", params=params)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["data"]
    return found


def activity_rows(engine: Engine, tenant_id: str) -> list[Any]:
    """The tenant's activities as stored (amounts in minor units), oldest first."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(activities)
                .where(activities.c.tenant_id == tenant_id)
                .order_by(activities.c.id)
            )
        )
