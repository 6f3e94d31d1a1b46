"""The till-side contract over HTTP (docs/pos-offline.md): a queued purchase is sent with its
own time and receipt number; too late is 422 ``activity_too_old``; sent twice, it counts once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import Tenant, document


@pytest.fixture
def cafe(shop: Tenant) -> Tenant:
    doc = document(shop.programme)
    doc["offline_window_hours"] = 72
    applied = shop.post("/v1/programmes", doc)
    assert applied.status_code == 200, applied.text
    return shop


def queued(receipt: str, hours_ago: int, member: str | None = None) -> dict[str, object]:
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    body: dict[str, object] = {
        "external_id": receipt,
        "occurred_at": at.isoformat(),
        "currency": "EUR",
        "total": "12.40",
    }
    if member is not None:
        body["token"] = member
    return body


def test_a_queued_purchase_within_the_window_is_recorded_with_its_time(cafe: Tenant) -> None:
    member = cafe.enrol("offline@example.org")

    sent = cafe.post(
        "/v1/pos/purchases",
        queued("kasse2-000123", 50, "email:offline@example.org"),
        who="pos",
        **{"Idempotency-Key": "kasse2-000123"},
    )

    assert sent.status_code == 201, sent.text
    assert sent.json()["activity"]["points"] == 12
    again = cafe.post(
        "/v1/pos/purchases",
        queued("kasse2-000123", 50, "email:offline@example.org"),
        who="pos",
    )
    assert again.status_code == 200, again.text
    assert again.json()["activity"]["replayed"] is True
    assert cafe.get(f"/v1/members/{member['id']}/balances").json()["available"] == 12


def test_a_purchase_older_than_the_window_is_refused_as_activity_too_old(cafe: Tenant) -> None:
    cafe.enrol("late@example.org")

    sent = cafe.post(
        "/v1/pos/purchases", queued("kasse2-000124", 80, "email:late@example.org"), who="pos"
    )

    assert sent.status_code == 422, sent.text
    assert sent.headers["content-type"].startswith("application/problem+json")
    assert sent.json()["code"] == "activity_too_old"


def test_a_purchase_in_the_future_is_a_till_clock_problem(cafe: Tenant) -> None:
    sent = cafe.post("/v1/pos/purchases", queued("kasse2-000125", -2), who="pos")

    assert (sent.status_code, sent.json()["errors"][0]["path"]) == (422, "occurred_at")
