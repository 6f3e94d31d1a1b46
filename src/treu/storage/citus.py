"""The Citus statements that distribute the schema by tenant (``treu db citus-script``).

Every table but ``tenants`` is distributed by ``tenant_id`` and co-located with ``programmes``, so
that a tenant's rows of every table sit on one node and the references between them (which all
name ``tenant_id``, ADR 0008) are checked there. ``tenants`` is a reference table: small, read by
every request, and copied to every node, so the references to it are local too. Derived from the
metadata, so it names every table there is.
"""

from __future__ import annotations

from sqlalchemy import MetaData

REFERENCE_TABLES = ("tenants",)
DISTRIBUTION_COLUMN = "tenant_id"
COLOCATE_WITH = "programmes"


def citus_statements(metadata: MetaData) -> list[str]:
    """``create_reference_table`` / ``create_distributed_table`` calls, parents before children.

    Raises ValueError if a table is neither a reference table nor has a ``tenant_id`` column.
    """
    tables = metadata.sorted_tables
    statements = [f"SELECT create_reference_table('{name}');" for name in REFERENCE_TABLES]
    statements.append(
        f"SELECT create_distributed_table('{COLOCATE_WITH}', '{DISTRIBUTION_COLUMN}');"
    )
    for table in tables:
        if table.name in REFERENCE_TABLES or table.name == COLOCATE_WITH:
            continue
        if DISTRIBUTION_COLUMN not in table.c:
            raise ValueError(f"{table.name} has no {DISTRIBUTION_COLUMN} to be distributed by")
        statements.append(
            f"SELECT create_distributed_table('{table.name}', '{DISTRIBUTION_COLUMN}',"
            f" colocate_with => '{COLOCATE_WITH}');"
        )
    return statements
