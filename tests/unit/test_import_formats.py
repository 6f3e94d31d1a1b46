"""The import's file formats, row by row, and the reader's checkpoints (pure, no database)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from treu.imports.model import (
    ActionRow,
    PurchaseRow,
    ReturnRow,
    RowInvalid,
    instant,
    parse_activity,
    parse_member,
)
from treu.imports.reader import read_header, read_records
from treu.members.model import Channel, IdentifierKind, MemberStatus

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def problems(fn, values):  # type: ignore[no-untyped-def]
    with pytest.raises(RowInvalid) as invalid:
        fn(values)
    return [(p.column, p.reason) for p in invalid.value.problems]


def member(values: dict[str, str]):  # type: ignore[no-untyped-def]
    return parse_member(values, tz=BERLIN, now=NOW)


def activity(values: dict[str, str]):  # type: ignore[no-untyped-def]
    return parse_activity(values, tz=BERLIN, currency="EUR")


def test_times_without_an_offset_are_programme_time_and_a_date_is_local_midnight() -> None:
    assert instant("2025-07-01T09:30:00Z", BERLIN) == datetime(2025, 7, 1, 9, 30, tzinfo=UTC)
    assert instant("2025-07-01 09:30", BERLIN).astimezone(UTC) == datetime(
        2025, 7, 1, 7, 30, tzinfo=UTC
    )
    assert instant("2025-01-01", BERLIN).astimezone(UTC) == datetime(2024, 12, 31, 23, tzinfo=UTC)
    with pytest.raises(ValueError, match="not an ISO 8601"):
        instant("01.07.2025", BERLIN)


def test_a_member_row_with_everything_an_old_system_knows() -> None:
    row = member(
        {
            "email": "mia@example.org",
            "card": "4711",
            "name": " Mia ",
            "birthday": "1990-04-01",
            "status": "Blocked",
            "consent_email": "yes",
            "consent_sms": "0",
            "attributes": '{"spend": 12.50}',
            "points": "120",
            "points_expire_at": "2026-06-30",
        }
    )
    assert row.identifiers == {IdentifierKind.EMAIL: "mia@example.org", IdentifierKind.CARD: "4711"}
    assert (row.name, row.birthday, row.status) == ("Mia", date(1990, 4, 1), MemberStatus.BLOCKED)
    assert row.consents == {Channel.EMAIL: True, Channel.SMS: False}
    assert row.attributes == {"spend": Decimal("12.50")}  # never a float
    assert row.opening is not None
    # a date is the last valid day: the points expire at the next local midnight
    assert row.opening.points == 120
    assert row.opening.expires_at == datetime(2026, 7, 1, tzinfo=BERLIN)


def test_every_bad_cell_of_a_member_row_is_named() -> None:
    assert problems(
        member,
        {
            "name": "x" * 201,
            "birthday": "2026-02-30",
            "status": "erased",
            "points_expire_at": "2027-01-01",
        },
    ) == [
        ("(row)", "a member needs an identifier: email, phone, card, external_id"),
        ("name", "is longer than 200 characters"),
        ("birthday", "'2026-02-30' is not a date (YYYY-MM-DD)"),
        ("status", "'erased': a member is imported as active or blocked"),
        ("points_expire_at", "given without points"),
    ]
    expired = {"email": "a@example.org", "points": "5", "points_expire_at": "2025-12-31"}
    assert problems(member, expired) == [
        ("points_expire_at", "is past: these points have expired already")
    ]


def test_an_activity_row_becomes_a_purchase_a_return_or_an_action() -> None:
    purchase = activity(
        {
            "external_id": "B-1",
            "member": "card:4711",
            "occurred_at": "2025-03-01 10:00",
            "lines": '[{"sku": "K", "quantity": 2, "unit_price": 3.20}]',
            "payments": '[{"method": "card", "amount": "6.40"}]',
        }
    )
    assert isinstance(purchase, PurchaseRow)
    assert purchase.member == "card:4711"
    assert purchase.purchase.currency == "EUR"
    assert purchase.purchase.lines[0].unit_price == Decimal("3.20")
    returned = activity(
        {"type": "return", "external_id": "R-1", "purchase_external_id": "B-1", "amount": "1.00"}
    )
    assert isinstance(returned, ReturnRow)
    assert returned.ret.amount == Decimal("1.00")
    action = activity(
        {"type": "action", "external_id": "A-1", "member": "mbr_1", "action_type": "review"}
    )
    assert isinstance(action, ActionRow)
    assert action.action.type == "review"


def test_every_bad_cell_of_an_activity_row_is_named() -> None:
    bad = {"external_id": "B-2", "total": "1,50", "lines": "[", "amount": "3"}
    assert problems(activity, bad) == [
        ("amount", "is not used for a purchase: leave it empty"),
        ("lines", "is not valid JSON: Expecting value at character 1"),
        ("total", "Input should be a valid decimal"),
    ]
    assert problems(activity, {"external_id": "B-3"}) == [
        ("(row)", "give either lines or total, not both and not neither")
    ]
    no_member = {"type": "action", "external_id": "A-2", "action_type": "Bad Type"}
    assert problems(activity, no_member) == [
        ("member", "an action needs a member"),
        ("action_type", "String should match pattern '^[a-z][a-z0-9_]{0,63}$'"),
    ]
    assert problems(activity, {"type": "refund", "external_id": "X"}) == [
        ("type", "'refund' is not purchase, return or action")
    ]


def test_the_reader_knows_where_each_record_ends_so_a_run_can_resume_there() -> None:
    data = (
        '\ufeffemail,name\r\na@example.org,"Anna\nMaria"\r\n\r\n'
        'b@example.org,"B"x\r\nc@example.org,C\r\n'
    )
    f = io.BytesIO(data.encode())
    header, offset, line = read_header(f)
    assert (header, line) == (["email", "name"], 2)
    records = list(read_records(f, header, offset=offset, line=line))
    assert [(r.line, r.values.get("name"), r.problem is None) for r in records] == [
        (2, "Anna\nMaria", True),
        (5, None, False),  # a quote in the middle of a field: that record only
        (6, "C", True),
    ]
    # from the end of the first record on, the reader finds exactly the rest
    again = list(read_records(f, header, offset=records[0].end, line=records[0].next_line))
    assert [(r.line, r.end) for r in again] == [(r.line, r.end) for r in records[1:]]
    assert records[-1].end == len(data.encode())
