"""/metrics, request ids and JSON logs (treu.observability)."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from api_support import Tenant
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from treu.api.app import create_app
from treu.observability import logging_config, new_request_id, request_id


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition ``text`` (0 if it is not there)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_requests_and_committed_events_are_counted(shop: Tenant, client: TestClient) -> None:
    before = client.get("/metrics").text
    member = shop.enrol()
    assert shop.buy(member["id"], "12.00").status_code == 201
    assert shop.get("/v1/members/mbr_nobody").status_code == 404
    after = client.get("/metrics")
    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    route = "/v1/programmes/{programme}/purchases"
    counted = sample(text, "treu_http_requests_total", method="POST", route=route, status="201")
    assert counted - sample(before, "treu_http_requests_total", route=route, status="201") == 1
    # the member's id is not a label: the route template is
    assert "mbr_nobody" not in text
    assert (
        sample(text, "treu_http_requests_total", route="/v1/members/{member_id}", status="404") >= 1
    )
    assert sample(text, "treu_http_request_duration_seconds_count", route=route) >= 1
    earned = sample(text, "treu_events_total", type="points.earned")
    assert earned - sample(before, "treu_events_total", type="points.earned") >= 1
    assert sample(text, "treu_outbox_pending", consumer="webhooks") >= 1  # nobody dispatches here


def test_a_request_id_is_kept_or_made_and_returned(shop: Tenant, client: TestClient) -> None:
    sent = client.get("/healthz", headers={"X-Request-Id": "till-7:abc-123"})
    assert sent.headers["x-request-id"] == "till-7:abc-123"
    made = client.get("/healthz", headers={"X-Request-Id": "no spaces\nor newlines"})
    assert made.headers["x-request-id"].startswith("req_")
    assert new_request_id(None) != new_request_id(None)


def test_metrics_can_require_a_token(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREU_METRICS_TOKEN", "s3cret")
    app: FastAPI = create_app(engine)
    with TestClient(app) as c:
        denied = c.get("/metrics")
        assert denied.status_code == 401
        assert denied.json()["code"] == "unauthenticated"
        assert c.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_json_log_lines_carry_the_request_id() -> None:
    config = logging_config(fmt="json", level="INFO")
    stream = io.StringIO()
    config["handlers"]["stderr"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        token = request_id.set("req_test")
        logging.getLogger("treu.test").info("Punkte gebucht", extra={"points": 12})
        request_id.reset(token)
        line = json.loads(stream.getvalue().splitlines()[-1])
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
        logging.getLogger().handlers.clear()
    assert line["message"] == "Punkte gebucht"
    assert line["request_id"] == "req_test"
    assert line["level"] == "INFO"
    assert line["logger"] == "treu.test"
    assert line["points"] == 12
    assert "time" in line
