"""The one MetaData every ``tables.py`` registers on, with a naming convention.

Every constraint gets a predictable name so Alembic can drop and alter it on both databases
(SQLite's batch mode silently loses unnamed CHECK constraints).

Every table but ``tenants`` is keyed by tenant (ADR 0008): ``tenant_id`` is the last column of its
primary key and of every unique constraint, and a reference to a row of another table names the
tenant too (:func:`tenant_fk`), so the schema can be distributed by ``tenant_id`` (Citus).
"""

from __future__ import annotations

from sqlalchemy import ForeignKeyConstraint, MetaData

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def tenant_fk(column: str, table: str) -> ForeignKeyConstraint:
    """``(column, tenant_id)`` references ``table (id, tenant_id)``: a row of the same tenant.

    A NULL ``column`` (an optional reference) is not checked (MATCH SIMPLE), as before.
    """
    return ForeignKeyConstraint([column, "tenant_id"], [f"{table}.id", f"{table}.tenant_id"])
