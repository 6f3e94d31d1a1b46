"""Every table is keyed so that it can be distributed by tenant (ADR 0008): the metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKeyConstraint, MetaData, String, Table, UniqueConstraint
from typer.testing import CliRunner

from treu.cli.main import app
from treu.storage.citus import citus_statements
from treu.storage.metadata import tenant_fk
from treu.storage.schema import metadata
from treu.storage.sql import insert_or_skip

TENANT_TABLES = sorted(t for t in metadata.tables if t != "tenants")


def key_problems(table: Table) -> list[str]:
    """What keeps ``table`` from being distributed by tenant_id with its keys checked locally."""
    if "tenant_id" not in table.c:
        return ["no tenant_id column"]
    problems = []
    primary_key = [c.name for c in table.primary_key.columns]
    # last, so that every look-up by id (or the key's leading columns) still uses the index
    if primary_key[-1:] != ["tenant_id"] or primary_key.count("tenant_id") != 1:
        problems.append(f"primary key {primary_key} does not end in tenant_id")
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            names = [c.name for c in constraint.columns]
            if "tenant_id" not in names:
                problems.append(f"unique {names} without tenant_id")
    for index in table.indexes:
        names = [c.name for c in index.columns]
        if index.unique and "tenant_id" not in names:
            problems.append(f"unique index {names} without tenant_id")
    for fk in table.foreign_key_constraints:
        pairs = {e.parent.name: e.column for e in fk.elements}
        if fk.referred_table.name == "tenants":
            if list(pairs) != ["tenant_id"]:
                problems.append(f"reference to tenants from {list(pairs)}")
            continue
        own = pairs.get("tenant_id")
        if own is None or own.name != "tenant_id" or own.table is not fk.referred_table:
            problems.append(
                f"reference {list(pairs)} -> {fk.referred_table.name} ignores tenant_id"
            )
    return problems


@pytest.mark.parametrize("name", TENANT_TABLES)
def test_every_tenant_table_is_keyed_by_tenant(name: str) -> None:
    assert key_problems(metadata.tables[name]) == []


def test_the_check_finds_a_table_keyed_the_old_way() -> None:
    old = MetaData()
    Table("parents", old, Column("id", String, primary_key=True), Column("tenant_id", String))
    child = Table(
        "children",
        old,
        Column("id", String, primary_key=True),
        Column("tenant_id", String, nullable=False),
        Column("parent_id", String),
        Column("code", String),
        UniqueConstraint("code"),
        ForeignKeyConstraint(["parent_id"], ["parents.id"]),
    )
    assert key_problems(child) == [
        "primary key ['id'] does not end in tenant_id",
        "unique ['code'] without tenant_id",
        "reference ['parent_id'] -> parents ignores tenant_id",
    ]


def test_a_tenant_reference_pairs_the_ids_and_the_tenants() -> None:
    fk = tenant_fk("member_id", "members")
    assert fk.column_keys == ["member_id", "tenant_id"]
    assert [e.target_fullname for e in fk.elements] == ["members.id", "members.tenant_id"]


def test_an_insert_or_skip_must_name_a_whole_unique_key() -> None:
    activities = metadata.tables["activities"]
    columns = ("id", "tenant_id", "programme_id", "type", "external_id")
    insert_or_skip(
        activities,
        columns,
        conflict=("programme_id", "type", "external_id", "tenant_id"),
        returning="id",
    )
    with pytest.raises(ValueError, match="no unique key"):
        insert_or_skip(
            activities, columns, conflict=("programme_id", "type", "external_id"), returning="id"
        )


def test_the_citus_script_distributes_every_table_once_parents_first() -> None:
    statements = citus_statements(metadata)
    assert statements[0] == "SELECT create_reference_table('tenants');"
    distributed = [s.split("'")[1] for s in statements[1:]]
    assert sorted(distributed) == TENANT_TABLES
    assert all("'tenant_id'" in s for s in statements[1:])
    position = {name: i for i, name in enumerate(distributed)}
    for name in distributed:
        for fk in metadata.tables[name].foreign_key_constraints:
            referred = fk.referred_table.name
            if referred not in ("tenants", name):
                assert position[referred] < position[name], (name, referred)


def test_the_citus_script_refuses_a_table_without_tenant() -> None:
    loose = MetaData()
    Table("tenants", loose, Column("id", String, primary_key=True))
    Table("programmes", loose, Column("id", String, primary_key=True), Column("tenant_id", String))
    Table("settings", loose, Column("key", String, primary_key=True))
    with pytest.raises(ValueError, match="settings has no tenant_id"):
        citus_statements(loose)


def test_the_cli_prints_the_script() -> None:
    result = CliRunner().invoke(app, ["db", "citus-script"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == citus_statements(metadata)


def test_the_deployment_guide_lists_the_script_as_it_is() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "deployment.md").read_text(encoding="utf-8")
    listed = [
        line.strip() for line in guide.splitlines() if "create_" in line and "_table('" in line
    ]
    assert listed == citus_statements(metadata), "docs/deployment.md: paste `treu db citus-script`"
