"""Run Alembic migrations from code (``treu db upgrade``, tests, ``treu demo``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def current_heads(engine: Engine) -> list[str]:
    """The revisions the database is at, sorted (one, once the migration branches are merged)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return sorted(MigrationContext.configure(conn).get_current_heads())
