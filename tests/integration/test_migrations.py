"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, Engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from treu.clock import FixedClock
from treu.demo import TENANT, seed
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.members.tables import consents
from treu.programmes.service import Tenant, apply_programme, create_tenant, find_tenant
from treu.storage.engine import make_engine
from treu.storage.migrate import current, downgrade, upgrade
from treu.storage.schema import metadata
from treu.storage.uow import UnitOfWork

BEFORE_TENANT_KEYS = "e2f3a4b5c602"


def differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        return list(compare_metadata(context, metadata))


def test_the_migrated_database_matches_the_declared_tables(engine: Engine) -> None:
    assert differences(engine) == []


def test_the_migrated_keys_and_checks_are_the_declared_ones(engine: Engine) -> None:
    """What the comparison above leaves out: primary keys (in order) and CHECK constraints,
    which SQLite's table rebuilds must carry over."""
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        declared = [c.name for c in table.primary_key.columns]
        assert inspector.get_pk_constraint(table.name)["constrained_columns"] == declared
        checks = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert checks == {c.name for c in table.constraints if isinstance(c, CheckConstraint)}


@pytest.fixture
def fresh(engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of its own, of the same kind, not migrated yet."""
    schema = None
    if engine.dialect.name == "sqlite":
        own = make_engine(f"sqlite:///{tmp_path / 'own.db'}")
    else:
        schema = f"test_{uuid.uuid4().hex[:10]}"
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
        own = make_engine(url.render_as_string(hide_password=False))
    yield own
    own.dispose()
    if schema:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table, of the tables the database has at its revision."""
    present = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
            if t.name in present
        }


def test_the_tenant_keys_migrate_down_and_up_with_data(fresh: Engine) -> None:
    upgrade(fresh)
    clock = FixedClock(datetime(2026, 3, 1, 7, tzinfo=UTC))
    seed(lambda: UnitOfWork(fresh, clock), clock, members=5, days=14)
    counts = row_counts(fresh)
    assert min(counts["activities"], counts["lots"], counts["awards"], counts["vouchers"]) > 0

    downgrade(fresh, BEFORE_TENANT_KEYS)
    assert current(fresh) == BEFORE_TENANT_KEYS
    assert inspect(fresh).get_pk_constraint("members")["constrained_columns"] == ["id"]
    down = row_counts(fresh)
    assert down == {name: counts[name] for name in down}
    # tables of later revisions are gone, and held nothing the seed wrote
    assert all(counts[name] == 0 for name in set(counts) - set(down))

    upgrade(fresh)
    assert differences(fresh) == []
    assert inspect(fresh).get_pk_constraint("members")["constrained_columns"] == ["id", "tenant_id"]
    assert row_counts(fresh) == counts
    with UnitOfWork(fresh, clock) as uow:
        tenant = find_tenant(uow, TENANT)
        assert tenant is not None
        assert verify_ledger(uow, tenant_id=tenant.id).ok


def test_a_row_cannot_reference_a_row_of_another_tenant(
    new_uow: Callable[[], UnitOfWork], tenant: Tenant, clock: FixedClock
) -> None:
    with new_uow() as uow:
        programme_id = apply_programme(
            uow,
            tenant_id=tenant.id,
            document={
                "key": "laden",
                "name": "Laden",
                "currency": "EUR",
                "timezone": "Europe/Berlin",
            },
        ).programme_id
    with new_uow() as uow:
        member = enrol_member(
            uow, programme_id=programme_id, identifiers_={IdentifierKind.EMAIL: "ada@example.org"}
        )
    with new_uow() as uow:
        other = create_tenant(uow, key=f"t-{uuid.uuid4().hex[:12]}").id

    def consent(tenant_id: str) -> None:
        with new_uow() as uow:
            uow.conn.execute(
                consents.insert().values(
                    id=f"cns_{uuid.uuid4().hex[:20]}",
                    tenant_id=tenant_id,
                    member_id=member.id,
                    channel="email",
                    granted=True,
                    source="test",
                    recorded_at=clock.now(),
                )
            )
            uow.commit()

    consent(tenant.id)
    with pytest.raises(IntegrityError):
        consent(other)
