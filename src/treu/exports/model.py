"""Exports, the pure part: what can be exported, and how rows become CSV or JSON lines.

Both encoders take an iterator of rows and yield text a line at a time, so an export of any size
streams in constant memory. Money is written as decimal text (``12.50``), never as a float;
instants as ISO 8601 in UTC; JSON values (attributes) as JSON text in a CSV cell.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class ExportKind(StrEnum):
    MEMBERS = "members"
    BALANCES = "balances"
    LOTS = "lots"
    VOUCHERS = "vouchers"
    ACTIVITIES = "activities"


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


MEDIA_TYPES = {ExportFormat.CSV: "text/csv", ExportFormat.JSONL: "application/x-ndjson"}


@dataclass(frozen=True)
class Export:
    """The columns of an export and its rows (a stream: read it while its unit of work is
    open)."""

    kind: ExportKind
    columns: tuple[str, ...]
    rows: Generator[dict[str, Any], None, None]


def encode(export: Export, fmt: ExportFormat) -> Iterator[str]:
    if fmt is ExportFormat.CSV:
        return csv_lines(export.columns, export.rows)
    return json_lines(export.rows)


def csv_lines(columns: tuple[str, ...], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: Iterable[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield line(columns)
    for row in rows:
        yield line(_cell(row.get(c)) for c in columns)


def json_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, default=_json_default, ensure_ascii=False, sort_keys=False) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # money stays exact: "12.50", not 12.5
    raise TypeError(f"{type(value).__name__} is not exportable")
