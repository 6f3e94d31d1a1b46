"""Alembic environment: the URL comes from the caller (``treu db upgrade``) or TREU_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from treu.storage.engine import make_engine
from treu.storage.migrate import sqlite_foreign_keys_off
from treu.storage.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    with engine.connect() as conn, sqlite_foreign_keys_off(conn):
        _migrate(conn)
    engine.dispose()


def _migrate(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,  # SQLite: ALTER by copying the table, keeping named constraints
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `treu db upgrade`")
run()
