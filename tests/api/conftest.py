"""API fixtures: one app per database, tenants with a programme and keys of every scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from api_support import Tenant, make_tenant
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from treu.api.app import create_app
from treu.api.ratelimit import RateLimiter


@pytest.fixture(scope="session")
def app(engine: Engine) -> FastAPI:
    made = create_app(engine)
    # Every test client request comes from one address: the real limits would make the suite's
    # outcome depend on its speed. test_rate_limits.py checks them on apps of its own.
    made.state.rate_limiter = RateLimiter(per_key="100000/minute", per_address="100000/minute")
    return made


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def new_tenant(engine: Engine, client: TestClient) -> Callable[[], Tenant]:
    return lambda: make_tenant(engine, client)


@pytest.fixture
def shop(new_tenant: Callable[[], Tenant]) -> Tenant:
    return new_tenant()
