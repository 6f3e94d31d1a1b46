"""Test fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL is not optional: if ``TREU_TEST_POSTGRES_URL`` (default: the local server's ``test``
database) cannot be reached, the run stops with an error instead of skipping half the suite.
Each run migrates a fresh SQLite file and a fresh PostgreSQL schema of its own (so parallel runs
never collide); tests isolate themselves from each other by tenant.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from db_support import drop_pg_schema, pg_schema_engine
from treu.clock import FixedClock
from treu.programmes.service import Tenant, create_tenant
from treu.storage.engine import make_engine
from treu.storage.migrate import upgrade
from treu.storage.uow import UnitOfWork

# smtp_server (a real SMTP server on 127.0.0.1) and provider (an HTTP SMS/push provider)
pytest_plugins = ["messaging_support"]

BACKENDS = os.environ.get("TREU_TEST_BACKENDS", "sqlite,postgresql").split(",")
# The tests' webhook receivers listen on 127.0.0.1, which production refuses (SSRF guard);
# tests/integration/test_webhooks.py checks the guard with it switched back on.
os.environ.setdefault("TREU_WEBHOOK_ALLOW_PRIVATE", "true")


@pytest.fixture(scope="session", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    schema = None
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "treu.db"
        eng = make_engine(f"sqlite:///{path}")
    else:
        eng, schema = pg_schema_engine()
    upgrade(eng)
    yield eng
    eng.dispose()
    if schema:
        drop_pg_schema(schema)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 1, 1, 12, tzinfo=UTC))


@pytest.fixture
def new_uow(engine: Engine, clock: FixedClock) -> Callable[[], UnitOfWork]:
    return lambda: UnitOfWork(engine, clock)


@pytest.fixture
def tenant(new_uow: Callable[[], UnitOfWork]) -> Tenant:
    with new_uow() as uow:
        return create_tenant(uow, key=f"t-{uuid.uuid4().hex[:12]}")
