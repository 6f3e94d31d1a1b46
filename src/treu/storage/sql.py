"""Statements for hot paths that SQLAlchemy would otherwise compile on every execution.

SQLAlchemy caches the compiled form of its Core constructs, except for the dialect-specific
``insert().on_conflict_do_nothing()`` (``inherit_cache = False`` in 2.0): those are compiled again
each time, which costs more than the statement itself. ``INSERT … ON CONFLICT (…) DO NOTHING
RETURNING …`` is the same SQL on SQLite (3.35+) and PostgreSQL, so it is written once as a text
statement with typed parameters (the columns' own types: JSON, UTC instants), which SQLAlchemy
caches like any other.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Table, UniqueConstraint, bindparam, text
from sqlalchemy.sql.selectable import TextualSelect


def insert_or_skip(
    table: Table, columns: tuple[str, ...], *, conflict: tuple[str, ...], returning: str
) -> TextualSelect:
    """``INSERT INTO table (columns) … ON CONFLICT (conflict) DO NOTHING RETURNING returning``.

    Execute it with one dict of ``columns``; the result has a row only if the row was inserted.
    ``conflict`` must be the columns of the table's primary key or of one of its unique
    constraints (both databases refuse anything else, but only when the statement runs).
    """
    return _insert_or_skip(table, tuple(columns), tuple(conflict), returning)


@cache
def _insert_or_skip(
    table: Table, columns: tuple[str, ...], conflict: tuple[str, ...], returning: str
) -> TextualSelect:
    if frozenset(conflict) not in _unique_keys(table):
        raise ValueError(f"{table.name} has no unique key on {', '.join(conflict)}")

    def quote(name: str) -> str:
        if not name.isidentifier() or name.lower() != name:
            raise ValueError(f"unexpected SQL name {name!r}")
        return f'"{name}"'

    name = (
        quote(table.name) if table.schema is None else f"{quote(table.schema)}.{quote(table.name)}"
    )
    # Names come from the Table and are checked above; values are bound parameters.
    names = ", ".join(quote(c) for c in columns)
    values = ", ".join(f":{c}" for c in columns)
    keys = ", ".join(quote(c) for c in conflict)
    sql = f"INSERT INTO {name} ({names}) VALUES ({values})"  # noqa: S608
    sql += f" ON CONFLICT ({keys}) DO NOTHING RETURNING {quote(returning)}"
    return (
        text(sql)
        .bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))
        .columns(table.c[returning])
    )


def _unique_keys(table: Table) -> set[frozenset[str]]:
    keys = {frozenset(c.name for c in table.primary_key.columns)}
    keys |= {
        frozenset(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    }
    keys |= {frozenset(c.name for c in index.columns) for index in table.indexes if index.unique}
    return keys
