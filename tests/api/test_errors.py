"""Every error is application/problem+json (RFC 9457) with a stable code."""

from __future__ import annotations

from api_support import Tenant
from fastapi.testclient import TestClient

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


def assert_problem(response: object, status: int, code: str) -> dict[str, object]:
    r = response  # httpx response
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = r.json()  # type: ignore[attr-defined]
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:treu:error:{code}"
    return body


def test_unknown_routes_and_methods(client: TestClient, shop: Tenant) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(client.get("/nothing"), 404, "not_found")
    assert_problem(
        client.delete("/v1/programmes", headers=shop.headers()), 405, "method_not_allowed"
    )


def test_authentication_errors(client: TestClient, shop: Tenant) -> None:
    missing = client.get("/v1/programmes")
    assert_problem(missing, 401, "unauthenticated")
    assert missing.headers["www-authenticate"] == "Bearer"
    forged = shop.keys["admin"][:-4] + "AAAA"
    assert_problem(
        client.get("/v1/programmes", headers={"Authorization": f"Bearer {forged}"}),
        401,
        "unauthenticated",
    )
    assert_problem(
        client.get("/v1/programmes", headers={"Authorization": "Basic dXNlcjpwdw=="}),
        401,
        "unauthenticated",
    )
    assert_problem(shop.post("/v1/ledger/verify", who="read"), 403, "forbidden")


def test_validation_errors_name_their_field_paths(shop: Tenant) -> None:
    url = f"/v1/programmes/{shop.programme}/purchases"
    body = {
        "external_id": "v1",
        "currency": "EUR",
        "lines": [{"unit_price": "-1"}],
        "balance": 1_000_000,  # unknown fields are refused: no mass assignment
    }
    problem = assert_problem(shop.post(url, body), 422, "validation_error")
    paths = {e["path"] for e in problem["errors"]}  # type: ignore[attr-defined]
    assert paths == {"lines.0.unit_price", "balance"}


def test_malformed_json_and_domain_validation(shop: Tenant) -> None:
    url = f"/v1/programmes/{shop.programme}/purchases"
    r = shop.client.post(
        url, content=b"{not json", headers=shop.headers(**{"Content-Type": "application/json"})
    )
    assert_problem(r, 422, "validation_error")
    body = {"external_id": "v2", "currency": "EUR", "total": "1.001"}
    assert_problem(shop.post(url, body), 422, "invalid_amount")
    wrong = {"external_id": "v3", "currency": "USD", "total": "1.00"}
    assert_problem(shop.post(url, wrong), 422, "currency_mismatch")
    document = {"key": "kaputt", "name": "x", "currency": "EUR", "timezone": "Mars/Olympus"}
    invalid = assert_problem(shop.post("/v1/programmes", document), 422, "invalid_programme")
    assert invalid["errors"]


def test_domain_errors_map_to_statuses(shop: Tenant) -> None:
    member = shop.enrol("dup@example.org")
    assert_problem(
        shop.post(
            f"/v1/programmes/{shop.programme}/members",
            {"identifiers": {"email": "DUP@example.org"}},
        ),
        409,
        "duplicate_identifier",
    )
    assert_problem(shop.get("/v1/members/mbr_00000000000000000000000000"), 404, "member_not_found")
    assert_problem(
        shop.get(
            f"/v1/programmes/{shop.programme}/members/lookup", params={"identifier": "fax:123"}
        ),
        422,
        "invalid_identifier",
    )
    assert_problem(
        shop.post(f"/v1/members/{member['id']}/redemptions", {"reward": "fuenf-euro"}),
        422,
        "insufficient_points",
    )
    assert_problem(shop.get("/v1/programmes/nope"), 404, "programme_not_found")
    assert_problem(shop.post("/v1/vouchers/AAAABBBBCCCC/consume"), 404, "voucher_not_found")
    assert_problem(
        shop.post(f"/v1/members/{member['id']}/adjustments", {"points": 0, "reason": "x"}),
        422,
        "invalid_amount",
    )


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    schema = client.get("/openapi.json").json()
    assert "/v1/programmes/{programme}/purchases" in schema["paths"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
