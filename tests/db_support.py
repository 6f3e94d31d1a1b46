"""A PostgreSQL schema of its own for a test run (tests/conftest.py's engine fixture, and the
tests that start processes of their own on one, such as tests/e2e/test_scale_out.py).

Importable by name from any test (``from db_support import pg_schema_engine``): a module
called ``conftest`` is not, since tests/api has one of its own.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from treu.storage.engine import make_engine

PG_URL = os.environ.get(
    "TREU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def pg_schema_engine() -> tuple[Engine, str]:
    """An engine on a new schema of its own."""
    schema = f"test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        pytest.exit(
            f"PostgreSQL at {PG_URL} is unreachable ({exc.orig}); the suite needs it", returncode=3
        )
    finally:
        admin.dispose()
    separator = "&" if "?" in PG_URL else "?"
    return make_engine(f"{PG_URL}{separator}options=-csearch_path%3D{schema}"), schema


def drop_pg_schema(schema: str) -> None:
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
