"""Schemathesis fuzzes every operation of ``/openapi.json`` with an admin key.

A tenant is seeded with a programme, a member with points, an activity, a voucher and a spare
API key. Each operation gets requests that fit its schema and requests that do not, with random
path parameters (which must answer a documented 404) and with the seeded objects' real ids.
Every response must be no server error, have a documented status and content type, and match
its declared schema.

Driven through each operation's Hypothesis strategy rather than
``schemathesis.pytest.from_fixture``: the schema depends on the per-database ``app`` fixture,
and the lazy loader does not run on pytest 9.2 (it sets ``Node._nodeid``, which is gone).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from api_support import Tenant, make_tenant
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema
from sqlalchemy import Engine

from treu.api.app import route_table
from treu.auth.model import Scope
from treu.auth.service import create_api_key
from treu.storage.uow import UnitOfWork

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = [("GET", "/healthz"), ("GET", "/readyz")] + [
    (method, route.path) for method, route in route_table()
]
# Per operation and database: the default keeps the run (both databases) well under a minute
# and repeatable; TREU_FUZZ_EXAMPLES=500 runs a longer hunt with a new random seed each time.
EXAMPLES = int(os.environ.get("TREU_FUZZ_EXAMPLES", "30"))
REPEATABLE = "TREU_FUZZ_EXAMPLES" not in os.environ


class Seeded:
    """Real objects of one tenant, by the name of the path parameter that addresses them."""

    def __init__(self, admin_key: str, path_parameters: dict[str, str]) -> None:
        self.headers = {"Authorization": f"Bearer {admin_key}"}
        self.path_parameters = path_parameters


@pytest.fixture(scope="module")
def seeded(engine: Engine, client: TestClient) -> Seeded:
    shop = make_tenant(engine, client)
    member = shop.enrol("fuzz@example.org", name="Fuzz")
    bought = shop.buy(member["id"], "500.00")
    assert bought.status_code == 201, bought.text
    redeemed = shop.post(f"/v1/members/{member['id']}/redemptions", {"reward": "kaffee"})
    assert redeemed.status_code == 201, redeemed.text
    # rotated and revoked by the fuzzer: never the key it authenticates with
    with UnitOfWork(engine) as uow:
        spare = create_api_key(uow, tenant_id=shop.id, scope=Scope.READ, name="spare").key.id
    return Seeded(
        shop.keys["admin"],
        {
            "programme": shop.programme,
            "member_id": member["id"],
            "activity_id": bought.json()["id"],
            "code": redeemed.json()["voucher"]["code"],
            "key_id": spare,
        },
    )


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> OpenApiSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_route_is_fuzzed() -> None:
    assert len(OPERATIONS) == len(set(OPERATIONS)) > 20


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_api_keeps_its_openapi_promises(
    api_schema: OpenApiSchema, seeded: Seeded, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    real = {
        p.name: seeded.path_parameters[p.name]
        for p in operation.path_parameters
        if p.name in seeded.path_parameters
    }
    cases = st.one_of(
        operation.as_strategy(path_parameters=real),
        operation.as_strategy(),
        operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=real),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=REPEATABLE,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=seeded.headers, checks=CHECKS)

    run()


# --- what the fuzzer found, pinned ---------------------------------------------------------


def test_errors_are_documented_as_problem_json(app: FastAPI) -> None:
    document = app.openapi()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    content = response["content"]
                    assert list(content) == ["application/problem+json"], (method, path, status)
                    assert content["application/problem+json"]["schema"] == {
                        "$ref": "#/components/schemas/Problem"
                    }


def test_a_nul_character_is_refused_on_every_database(shop: Tenant) -> None:
    member = shop.enrol()
    patched = shop.client.patch(
        f"/v1/members/{member['id']}",
        content=b'{"attributes": {"note": "a\\u0000b"}}',
        headers=shop.headers(**{"Content-Type": "application/json"}),
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["errors"] == [
        {"path": "(body)", "message": "the NUL character (U+0000) is not allowed"}
    ]
    looked_up = shop.get(
        f"/v1/programmes/{shop.programme}/members/lookup", params={"identifier": "email:a\x00b"}
    )
    assert (looked_up.status_code, looked_up.json()["errors"][0]["path"]) == (422, "query")
    # an escaped backslash followed by "u0000" is just text
    fine = shop.client.patch(
        f"/v1/members/{member['id']}",
        content=b'{"attributes": {"note": "C:\\\\u0000"}}',
        headers=shop.headers(**{"Content-Type": "application/json"}),
    )
    assert fine.status_code == 200, fine.text
    assert fine.json()["attributes"] == {"note": "C:\\u0000"}


def test_the_nightly_run_takes_only_days_it_can_compute_with(shop: Tenant) -> None:
    for day in ("0001-01-01", "9999-12-31"):
        r = shop.post("/v1/jobs/nightly", {"date": day})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["path"] == "date"
    assert shop.post("/v1/jobs/nightly", {"date": "2026-03-02"}).status_code == 200
