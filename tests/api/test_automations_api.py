"""Automations over HTTP: the definitions with their run counts, the run log, shop events, and
the worker inside the API process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import Tenant, document, make_tenant
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from treu.api.app import create_app
from treu.automations.service import process_events
from treu.outbox.service import list_events
from treu.storage.engine import make_engine
from treu.storage.migrate import upgrade
from treu.storage.uow import UnitOfWork

WELCOME = {
    "key": "willkommen",
    "name": "Willkommen",
    "trigger": {"event": "member.enrolled"},
    "action": {"type": "points", "points": 10},
    "control_group": 50,
}
CART = {
    "key": "warenkorb",
    "name": "Warenkorb vergessen",
    "trigger": {"event": "cart.abandoned"},
    "action": {"type": "webhook", "data": {"campaign": "cart"}},
}


def with_automations(shop: Tenant, *automations: dict[str, Any]) -> None:
    doc = document(shop.programme)
    doc["automations"] = list(automations)
    r = shop.post("/v1/programmes", doc)
    assert r.status_code in (200, 201), r.text


def process(engine: Engine, shop: Tenant) -> None:
    process_events(lambda: UnitOfWork(engine), tenant_id=shop.id)


def test_automations_list_with_their_runs_by_outcome(engine: Engine, shop: Tenant) -> None:
    with_automations(shop, WELCOME, CART)
    members = [shop.enrol()["id"] for _ in range(12)]
    process(engine, shop)
    found = shop.get("/v1/automations", who="read").json()["data"]
    assert [(a["key"], a["trigger"], a["control_group"]) for a in found] == [
        ("willkommen", {"event": "member.enrolled"}, 50),
        ("warenkorb", {"event": "cart.abandoned"}, 0),
    ]
    counts = found[0]["runs"]
    assert counts["done"] + counts["held_out"] == 12
    assert counts["skipped"] == 0
    assert 0 < counts["held_out"] < 12  # half, give or take: some of each
    assert found[1]["runs"] == {"pending": 0, "done": 0, "held_out": 0, "skipped": 0}

    runs = shop.get("/v1/automations/willkommen/runs", params={"limit": 100}).json()["data"]
    assert sorted(r["member_id"] for r in runs) == sorted(members)
    held = shop.get(
        "/v1/automations/willkommen/runs", params={"outcome": "held_out", "limit": 100}
    ).json()["data"]
    assert len(held) == counts["held_out"]
    assert {r["reason"] for r in held} == {"control group of 50%"}
    first = shop.get("/v1/automations/willkommen/runs", params={"limit": 5}).json()
    rest = shop.get(
        "/v1/automations/willkommen/runs",
        params={"limit": 100, "starting_after": first["next_starting_after"]},
    ).json()
    assert first["has_more"]
    assert not rest["has_more"]
    assert [r["id"] for r in first["data"] + rest["data"]] == [r["id"] for r in runs]
    one = shop.get("/v1/automations/willkommen/runs", params={"member_id": members[3]}).json()
    assert [r["occasion"] for r in one["data"]] == ["enrolment"]


def test_an_unknown_automation_is_404_and_a_tenant_of_several_programmes_must_name_one(
    shop: Tenant,
) -> None:
    missing = shop.get("/v1/automations/nichts/runs")
    assert (missing.status_code, missing.json()["code"]) == (404, "automation_not_found")
    r = shop.post("/v1/programmes", document(f"zweites-{uuid.uuid4().hex[:6]}"))
    assert r.status_code == 201, r.text
    several = shop.get("/v1/automations")
    assert (several.status_code, several.json()["code"]) == (422, "validation_error")
    named = shop.get("/v1/automations", params={"programme": shop.programme})
    assert named.status_code == 200


def test_the_shop_sends_an_event_once_by_its_id_and_the_automation_gets_its_data(
    engine: Engine, shop: Tenant, new_tenant: Callable[[], Tenant]
) -> None:
    with_automations(shop, CART)
    lea = shop.enrol()["id"]
    cart = {"type": "cart.abandoned", "id": "cart-4711", "data": {"items": 2, "url": "/cart"}}
    sent = shop.post(f"/v1/members/{lea}/events", cart, who="integration")
    again = shop.post(f"/v1/members/{lea}/events", {**cart, "data": {}}, who="integration")
    assert (sent.status_code, again.status_code) == (202, 202)
    assert (sent.json()["created"], again.json()["created"]) == (True, False)
    assert sent.json()["event_id"] == again.json()["event_id"]
    process(engine, shop)
    with UnitOfWork(engine) as uow:
        fired = list_events(uow, tenant_id=shop.id, type="automation.fired")
    assert [(f["payload"]["occasion"], f["payload"]["context"]["data"]) for f in fired] == [
        ("cart-4711", {"items": 2, "url": "/cart"})
    ]
    assert fired[0]["payload"]["data"] == {"campaign": "cart"}

    till = shop.post(f"/v1/members/{lea}/events", cart, who="pos")
    assert till.status_code == 403
    wrong = shop.post(f"/v1/members/{lea}/events", {**cart, "type": "cart.exploded"})
    assert (wrong.status_code, wrong.json()["code"]) == (422, "validation_error")
    huge = shop.post(f"/v1/members/{lea}/events", {**cart, "data": {"x": "y" * 20_000}})
    assert huge.status_code == 422
    other = new_tenant()
    foreign = other.post(f"/v1/members/{lea}/events", cart)
    assert (foreign.status_code, foreign.json()["code"]) == (404, "member_not_found")


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "treu-worker" and t.is_alive()]


def test_an_app_given_an_engine_runs_no_worker_unless_asked(engine: Engine) -> None:
    before = len(_worker_threads())
    with TestClient(create_app(engine)):
        assert len(_worker_threads()) == before


@pytest.fixture
def own_engine(engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own, of the same kind: the worker takes every tenant's work, and the
    other tests' outbox is none of its business."""
    schema = None
    if engine.dialect.name == "sqlite":
        fresh = make_engine(f"sqlite:///{tmp_path / 'own.db'}")
    else:
        schema = f"test_{uuid.uuid4().hex[:10]}"
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
        fresh = make_engine(url.render_as_string(hide_password=False))
    upgrade(fresh)
    yield fresh
    fresh.dispose()
    if schema:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def test_the_inprocess_worker_fires_automations_while_the_api_serves(
    own_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TREU_INPROCESS_WORKER", "true")
    with TestClient(create_app(own_engine)) as own:
        assert len(_worker_threads()) == 1
        shop = make_tenant(own_engine, own)
        with_automations(shop, {**WELCOME, "control_group": 0})
        member = shop.enrol()["id"]
        deadline = time.monotonic() + 60
        while shop.get(f"/v1/members/{member}/balances").json()["available"] != 10:
            if time.monotonic() > deadline:
                pytest.fail("the in-process worker did not fire the automation")
            time.sleep(0.1)
    assert _worker_threads() == []  # stopped with the app
