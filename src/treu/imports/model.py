"""Bulk import, the pure part: the file formats, one row's parsing, and the job's state.

A file is CSV (UTF-8, a header line, comma-separated, RFC 4180 quoting). Each record is parsed on
its own into a :class:`MemberRow` or an activity row (:class:`PurchaseRow`, :class:`ReturnRow`,
:class:`ActionRow`), or into the :class:`FieldProblem`\\ s that say why not: a bad row never stops
the import, it becomes a line of the error report (line, column, reason).

Money is read as ``Decimal`` from text (``12.50``; JSON columns are parsed with
``parse_float=Decimal``), never as a float. Instants carry an offset (``2025-03-01T09:30:00+01:00``,
``…Z``) or are read in the programme's timezone; a bare date is that day's local midnight.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from treu.activities.model import ActionIn, PurchaseIn, ReturnIn
from treu.errors import ErrorCode, InvalidInput
from treu.members.model import Channel, IdentifierKind, MemberStatus


class ImportKind(StrEnum):
    MEMBERS = "members"
    ACTIVITIES = "activities"


class JobStatus(StrEnum):
    # ``running`` also stands for "interrupted" (a crash or kill -9 cannot say so): running the
    # same file again resumes from the checkpoint either way.
    RUNNING = "running"
    FAILED = "failed"  # stopped by an unexpected error (kept in ``error``); a re-run resumes
    DONE = "done"


ROW = "(row)"  # the column of a problem that is about the whole row


@dataclass(frozen=True)
class FieldProblem:
    column: str
    reason: str


@dataclass(frozen=True)
class RowError:
    """One line of the error report."""

    line: int  # the physical line the record starts on; the header is line 1
    column: str
    reason: str


class RowInvalid(Exception):
    """A row that cannot be imported, and why (one problem per column)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.column}: {p.reason}" for p in problems))
        self.problems = problems


# --- the file formats ----------------------------------------------------------------------

IDENTIFIER_COLUMNS: dict[str, IdentifierKind] = {
    "email": IdentifierKind.EMAIL,
    "phone": IdentifierKind.PHONE,
    "card": IdentifierKind.CARD,
    "external_id": IdentifierKind.EXTERNAL,
}
CONSENT_COLUMNS: dict[str, Channel] = {f"consent_{c.value}": c for c in Channel}
MEMBER_COLUMNS: tuple[str, ...] = (
    "member_id",  # in an export; ignored on import (ids belong to the programme they came from)
    *IDENTIFIER_COLUMNS,
    "name",
    "birthday",
    "locale",
    "status",
    "enrolled_at",
    *CONSENT_COLUMNS,
    "attributes",
    "points",  # an opening balance carried over from another system (a lot)
    "points_expire_at",  # its expiry: the last valid day (a date) or the instant
)
ACTIVITY_COLUMNS: tuple[str, ...] = (
    "type",  # purchase (default), return or action
    "external_id",
    "member",  # mbr_… or kind:value (email:mia@example.org); empty: a guest purchase
    "occurred_at",
    "store",
    "channel",
    "currency",
    "total",
    "lines",  # JSON: purchase lines, or for a return [{"line": 0, "quantity": 1}]
    "order_discount",
    "shipping",
    "tax",
    "prices_include_tax",
    "payments",  # JSON: [{"method": "card", "amount": "12.50"}]
    "purchase_external_id",  # a return: the purchase it returns
    "amount",  # a return by amount
    "action_type",  # an action: review, check_in, …
    "target",
    "attributes",  # an action's attributes (JSON object)
)
COLUMNS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.MEMBERS: MEMBER_COLUMNS,
    ImportKind.ACTIVITIES: ACTIVITY_COLUMNS,
}


def check_header(kind: ImportKind, header: list[str]) -> list[str]:
    """The header's column names, normalised (trimmed, lower case). Unknown, duplicate or
    missing required columns refuse the whole file before any row: a typo ("emial") would
    otherwise drop a column of every row without a word."""
    names = [h.strip().lower() for h in header]
    known = COLUMNS[kind]
    problems = [f"unknown column {n!r}" for n in names if n not in known]
    problems += [f"column {n!r} appears twice" for n in sorted(set(names)) if names.count(n) > 1]
    if kind is ImportKind.MEMBERS and not set(names) & set(IDENTIFIER_COLUMNS):
        problems.append(f"no identifier column (one of {', '.join(IDENTIFIER_COLUMNS)})")
    if kind is ImportKind.ACTIVITIES and "external_id" not in names:
        problems.append("no column 'external_id'")
    if problems:
        raise InvalidInput(
            ErrorCode.INVALID_IMPORT_FILE,
            f"the header of a {kind} file: " + "; ".join(problems),
            errors=[{"path": "header", "message": p} for p in problems],
            columns=list(known),
        )
    return names


# --- members -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpeningBalance:
    points: int
    expires_at: datetime | None  # None: never expires


@dataclass(frozen=True)
class MemberRow:
    """A member to create, or to update if one of the identifiers finds one (upsert)."""

    identifiers: dict[IdentifierKind, str]  # as given; normalised by the service
    name: str | None = None
    birthday: date | None = None
    locale: str | None = None
    status: MemberStatus | None = None  # active or blocked
    enrolled_at: datetime | None = None
    consents: dict[Channel, bool] = field(default_factory=dict)
    attributes: dict[str, Any] | None = None
    opening: OpeningBalance | None = None


def parse_member(values: Mapping[str, str], *, tz: ZoneInfo, now: datetime) -> MemberRow:
    """One record of a members file; raises :class:`RowInvalid` naming every bad column."""
    row = _Cells(values)
    identifiers = {kind: v for col, kind in IDENTIFIER_COLUMNS.items() if (v := row.text(col))}
    if not identifiers:
        row.problem(ROW, f"a member needs an identifier: {', '.join(IDENTIFIER_COLUMNS)}")
    name = row.text("name", limit=200)
    locale = row.text("locale", limit=16)
    birthday = row.parse("birthday", _date)
    if birthday is not None and birthday > now.astimezone(tz).date():
        row.problem("birthday", "is in the future")
    status = row.parse("status", _status)
    enrolled_at = row.parse("enrolled_at", lambda v: instant(v, tz))
    if enrolled_at is not None and enrolled_at > now:
        row.problem("enrolled_at", "is in the future")
    consents = {
        channel: flag
        for col, channel in CONSENT_COLUMNS.items()
        if (flag := row.parse(col, _bool)) is not None
    }
    attributes = row.parse("attributes", _json_object)
    points = row.parse("points", _points)
    expiry = row.parse("points_expire_at", lambda v: _expiry(v, tz))
    opening = None
    if points is None and expiry is not None:
        row.problem("points_expire_at", "given without points")
    elif points:
        if expiry is not None and expiry <= now:
            row.problem("points_expire_at", "is past: these points have expired already")
        opening = OpeningBalance(points, expiry)
    row.raise_problems()
    return MemberRow(
        identifiers, name, birthday, locale, status, enrolled_at, consents, attributes, opening
    )


# --- activities ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PurchaseRow:
    member: str | None
    purchase: PurchaseIn


@dataclass(frozen=True)
class ReturnRow:
    ret: ReturnIn


@dataclass(frozen=True)
class ActionRow:
    member: str
    action: ActionIn


ActivityRow = PurchaseRow | ReturnRow | ActionRow

# The columns each activity type reads (``type`` and ``external_id`` always).
_PURCHASE = (
    *("member", "occurred_at", "store", "channel", "currency", "total", "lines"),
    *("order_discount", "shipping", "tax", "prices_include_tax", "payments"),
)
_USED: dict[str, frozenset[str]] = {
    "purchase": frozenset(_PURCHASE),
    "return": frozenset(("occurred_at", "purchase_external_id", "lines", "amount")),
    "action": frozenset(
        ("member", "occurred_at", "store", "channel", "action_type", "target", "attributes")
    ),
}


def parse_activity(values: Mapping[str, str], *, tz: ZoneInfo, currency: str) -> ActivityRow:
    """One record of an activities file; raises :class:`RowInvalid` naming every bad column.

    ``currency``: the programme's, for rows that leave the column empty."""
    row = _Cells(values)
    kind = (row.text("type") or "purchase").lower()
    if kind not in _USED:
        row.problem("type", f"{kind!r} is not purchase, return or action")
        row.raise_problems()
    for column, value in values.items():
        if value.strip() and column not in _USED[kind] | {"type", "external_id"}:
            row.problem(column, f"is not used for a {kind}: leave it empty")
    occurred = row.parse("occurred_at", lambda v: instant(v, tz))
    body: dict[str, Any] = {"external_id": row.text("external_id"), "occurred_at": occurred}
    if kind == "purchase":
        body["currency"] = row.text("currency") or currency
        for name in ("store", "channel", "total", "order_discount", "shipping", "tax"):
            body[name] = row.text(name)
        body["prices_include_tax"] = row.parse("prices_include_tax", _bool)
        body["lines"] = row.parse("lines", _json_list)
        body["payments"] = row.parse("payments", _json_list)
        purchase = row.model(PurchaseIn, body)
        row.raise_problems()
        assert isinstance(purchase, PurchaseIn)
        return PurchaseRow(row.text("member"), purchase)
    if kind == "return":
        body["purchase_external_id"] = row.text("purchase_external_id")
        body["amount"] = row.text("amount")
        body["lines"] = row.parse("lines", _json_list)
        ret = row.model(ReturnIn, body)
        row.raise_problems()
        assert isinstance(ret, ReturnIn)
        return ReturnRow(ret)
    member = row.text("member")
    if member is None:
        row.problem("member", "an action needs a member")
    for name in ("store", "channel", "target"):
        body[name] = row.text(name)
    body["type"] = row.text("action_type")
    body["attributes"] = row.parse("attributes", _json_object)
    action = row.model(ActionIn, body, renamed={"type": "action_type"})
    row.raise_problems()
    assert isinstance(action, ActionIn)
    assert member is not None
    return ActionRow(member, action)


# --- cells ---------------------------------------------------------------------------------


class _Cells:
    """The values of one record, read column by column; problems are collected, not raised,
    so that the report names every bad column of the row at once."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.problems: list[FieldProblem] = []

    def problem(self, column: str, reason: str) -> None:
        self.problems.append(FieldProblem(column, reason))

    def raise_problems(self) -> None:
        if self.problems:
            raise RowInvalid(self.problems)

    def text(self, column: str, *, limit: int | None = None) -> str | None:
        value = self.values.get(column, "").strip()
        if limit is not None and len(value) > limit:
            self.problem(column, f"is longer than {limit} characters")
            return None
        return value or None

    def parse(self, column: str, parser: Any) -> Any:
        value = self.text(column)
        if value is None:
            return None
        try:
            return parser(value)
        except ValueError as exc:
            self.problem(column, str(exc))
            return None

    def model(
        self, model: type[BaseModel], body: dict[str, Any], renamed: Mapping[str, str] | None = None
    ) -> BaseModel | None:
        """Validate ``body`` (empty cells left out) as ``model``; errors go to their column."""
        given = {k: v for k, v in body.items() if v is not None}
        try:
            return model.model_validate(given)
        except ValidationError as exc:
            for error in exc.errors():
                loc = [str(part) for part in error["loc"]]
                column = (renamed or {}).get(loc[0], loc[0]) if loc else ROW
                if column not in self.values and column != ROW:
                    column = ROW
                where = ".".join(loc[1:])
                message = str(error["msg"]).removeprefix("Value error, ")
                self.problem(column, f"{where}: {message}" if where else message)
            return None


def instant(value: str, tz: ZoneInfo) -> datetime:
    """ISO 8601 with an offset, or local time (or a bare date: local midnight) in ``tz``."""
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), time(0))
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date or time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _expiry(value: str, tz: ZoneInfo) -> datetime:
    """A date is the last day the points are valid (they expire at the next local midnight, as
    ``expires_on`` shows them); a time is the instant they expire."""
    if len(value) == 10:
        last_day = _date(value)
        return datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz)
    return instant(value, tz)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ValueError(f"{value!r} is not true or false")


def _status(value: str) -> MemberStatus:
    if value.lower() not in (MemberStatus.ACTIVE, MemberStatus.BLOCKED):
        raise ValueError(f"{value!r}: a member is imported as active or blocked")
    return MemberStatus(value.lower())


def _points(value: str) -> int:
    if not value.isdigit() or len(value) > 15:
        raise ValueError(f"{value!r} is not a whole number of points (0 or more)")
    return int(value)


def _json(value: str) -> Any:
    try:
        # Decimal, never float: amounts inside JSON columns stay exact ("12.50" or 12.50).
        return json.loads(value, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON: {exc.msg} at character {exc.pos}") from None


def _json_list(value: str) -> list[Any]:
    parsed = _json(value)
    if not isinstance(parsed, list):
        raise ValueError("must be a JSON array ([…])")
    return parsed


def _json_object(value: str) -> dict[str, Any]:
    parsed = _json(value)
    if not isinstance(parsed, dict):
        raise ValueError("must be a JSON object ({…})")
    return parsed


# --- jobs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportJob:
    """An import of one file into one programme, and its checkpoint: every row before
    ``next_offset`` (a byte offset, the start of line ``next_line``) is imported or reported,
    none after it. The checkpoint is written in the transaction of the rows it covers."""

    id: str
    tenant_id: str
    programme_id: str
    kind: ImportKind
    file_name: str
    file_size: int
    fingerprint: str
    status: JobStatus
    rows_done: int
    rows_ok: int
    rows_failed: int
    next_offset: int
    next_line: int
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None

    @property
    def fraction(self) -> float:
        """How much of the file is behind the checkpoint (0..1)."""
        return 1.0 if self.file_size == 0 else min(1.0, self.next_offset / self.file_size)


@dataclass(frozen=True)
class Progress:
    """Where a run stands after a committed batch (for a progress bar)."""

    bytes_done: int
    bytes_total: int
    rows_done: int
    rows_ok: int
    rows_failed: int
