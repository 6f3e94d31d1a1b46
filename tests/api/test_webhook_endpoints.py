"""Webhook endpoints over HTTP: register (secret shown once), change, delete, the delivery log
and manual redelivery. Sending itself is tested in tests/integration/test_webhooks.py."""

from __future__ import annotations

from collections.abc import Callable

from api_support import Tenant
from sqlalchemy import Engine

from treu.storage.uow import UnitOfWork
from treu.webhooks.service import fan_out

URL = "http://127.0.0.1:9/hooks"  # never sent to here: no dispatcher runs in these tests


def test_an_endpoint_is_registered_with_its_secret_shown_once(shop: Tenant) -> None:
    created = shop.post(
        "/v1/webhook-endpoints",
        {"url": URL, "event_types": ["points.earned", "member.enrolled"], "description": "CRM"},
        who="integration",
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["event_types"] == ["member.enrolled", "points.earned"]
    assert endpoint["enabled"] is True

    read = shop.get(f"/v1/webhook-endpoints/{endpoint['id']}").json()
    assert read["secret"] is None
    listed = shop.get("/v1/webhook-endpoints", who="integration").json()["data"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert endpoint["secret"] not in str(listed)


def test_an_endpoint_is_changed_switched_off_and_deleted(shop: Tenant) -> None:
    endpoint = shop.post("/v1/webhook-endpoints", {"url": URL}).json()
    url = f"/v1/webhook-endpoints/{endpoint['id']}"
    assert endpoint["event_types"] == ["*"]

    changed = shop.client.patch(
        url,
        json={"enabled": False, "event_types": ["voucher.used"], "description": "Kasse"},
        headers=shop.headers(),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False
    assert changed.json()["event_types"] == ["voucher.used"]
    assert changed.json()["description"] == "Kasse"

    deleted = shop.client.delete(url, headers=shop.headers("integration"))
    assert deleted.json() == {"object": "webhook_endpoint", "id": endpoint["id"], "deleted": True}
    assert shop.get(url).json()["code"] == "webhook_endpoint_not_found"
    assert shop.client.delete(url, headers=shop.headers()).status_code == 404


def test_bad_urls_and_unknown_events_are_refused_with_their_field(shop: Tenant) -> None:
    for body, path in (
        ({"url": "ftp://example.org/x"}, "url"),
        ({"url": "/relative"}, "url"),
        ({"url": URL, "event_types": ["points.earned", "api_key.created"]}, "event_types"),
        ({"url": URL, "secret": "mine"}, "secret"),
    ):
        r = shop.post("/v1/webhook-endpoints", body)
        assert r.status_code == 422, body
        assert [e["path"] for e in r.json()["errors"]] == [path]


def test_the_delivery_log_shows_deliveries_and_redelivery_schedules_one_again(
    shop: Tenant, engine: Engine
) -> None:
    endpoint = shop.post("/v1/webhook-endpoints", {"url": URL}).json()
    shop.enrol()
    with UnitOfWork(engine) as uow:
        fan_out(uow, tenant_id=shop.id)
    base = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"

    [delivery] = shop.get(base).json()["data"]
    assert delivery["event_type"] == "member.enrolled"
    assert delivery["event_id"].startswith("evt_")
    assert (delivery["status"], delivery["attempts"]) == ("pending", 0)
    assert shop.get(base, params={"status": "succeeded"}).json()["data"] == []
    one = shop.get(f"{base}/{delivery['id']}").json()
    assert one["log"] == []

    again = shop.post(f"{base}/{delivery['id']}/redeliver", who="integration")
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "pending"
    assert shop.get(f"{base}/whd_nope").json()["code"] == "webhook_delivery_not_found"


def test_webhooks_are_for_admin_and_integration_keys_of_the_same_tenant(
    shop: Tenant, new_tenant: Callable[[], Tenant]
) -> None:
    endpoint = shop.post("/v1/webhook-endpoints", {"url": URL}).json()
    for who in ("pos", "read"):
        assert shop.get("/v1/webhook-endpoints", who=who).status_code == 403
        assert shop.post("/v1/webhook-endpoints", {"url": URL}, who=who).status_code == 403
    other = new_tenant()
    assert other.get(f"/v1/webhook-endpoints/{endpoint['id']}").status_code == 404
    assert other.get("/v1/webhook-endpoints").json()["data"] == []
