"""Expiry dates in programme time, and which lots pay for a redemption."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from treu.ledger.model import (
    ExpiryPolicy,
    LotView,
    MemberAccount,
    PendingPolicy,
    ReturnPolicy,
    SystemAccount,
    activates_at,
    add_months,
    allocate_lots,
    clamp_date,
    expires_at,
    expires_on,
    member_account_id,
    round_up,
    spend_order,
    start_of_day,
    system_account_id,
)

BERLIN = ZoneInfo("Europe/Berlin")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
SANTIAGO = ZoneInfo("America/Santiago")


def policy(**fields: Any) -> ExpiryPolicy:
    return ExpiryPolicy.model_validate(fields)


def last_valid_day(p: ExpiryPolicy, earned_at: datetime, tz: ZoneInfo) -> date | None:
    return expires_on(expires_at(p, earned_at, tz), tz)


# --- expiry dates ------------------------------------------------------------------------


def test_12_months_rounded_to_month_end_in_sao_paulo() -> None:
    p = policy(type="after", months=12, round_to="month_end")
    earned = datetime(2026, 1, 10, 10, tzinfo=SAO_PAULO)
    at = expires_at(p, earned, SAO_PAULO)
    assert at == datetime(2027, 2, 1, 0, 0, tzinfo=SAO_PAULO)
    assert at is not None
    assert at.astimezone(UTC) == datetime(2027, 2, 1, 3, 0, tzinfo=UTC)
    assert expires_on(at, SAO_PAULO) == date(2027, 1, 31)


def test_the_earning_day_is_the_programme_day_not_the_utc_day() -> None:
    # 02:30 UTC on 1 February is still 31 January, 23:30, in São Paulo
    p = policy(type="after", months=12, round_to="month_end")
    earned = datetime(2026, 2, 1, 2, 30, tzinfo=UTC)
    assert last_valid_day(p, earned, SAO_PAULO) == date(2027, 1, 31)
    assert last_valid_day(p, earned, BERLIN) == date(2027, 2, 28)


@pytest.mark.parametrize(
    ("fields", "earned", "last_day"),
    [
        ({"months": 12, "round_to": "quarter_end"}, date(2026, 2, 15), date(2027, 3, 31)),
        ({"months": 3, "round_to": "quarter_end"}, date(2026, 11, 20), date(2027, 3, 31)),
        ({"months": 1, "round_to": "quarter_end"}, date(2026, 5, 31), date(2026, 6, 30)),
        ({"months": 24, "round_to": "year_end"}, date(2026, 3, 2), date(2028, 12, 31)),
        ({"months": 6, "round_to": "month_end"}, date(2026, 8, 31), date(2027, 2, 28)),
        ({"months": 1}, date(2026, 1, 31), date(2026, 2, 28)),
        ({"months": 1}, date(2028, 1, 31), date(2028, 2, 29)),
        ({"months": 12}, date(2028, 2, 29), date(2029, 2, 28)),
        ({"days": 90}, date(2026, 1, 10), date(2026, 4, 10)),
        ({"days": 1}, date(2026, 12, 31), date(2027, 1, 1)),
        ({"days": 30, "round_to": "month_end"}, date(2026, 1, 10), date(2026, 2, 28)),
    ],
)
def test_expiry_after_a_period(fields: dict[str, Any], earned: date, last_day: date) -> None:
    p = policy(type="after", **fields)
    assert last_valid_day(p, datetime.combine(earned, time(12), BERLIN), BERLIN) == last_day


@pytest.mark.parametrize(
    ("fields", "earned", "last_day"),
    [
        # points of a year expire at the end of the next year
        ({"month": 12, "day": 31}, date(2026, 5, 5), date(2027, 12, 31)),
        ({"month": 12, "day": 31}, date(2026, 12, 31), date(2027, 12, 31)),
        ({"month": 3, "day": 31, "years": 2}, date(2026, 5, 5), date(2028, 3, 31)),
        # 29 February only exists in leap years
        ({"month": 2, "day": 29}, date(2026, 5, 5), date(2027, 2, 28)),
        ({"month": 2, "day": 29}, date(2027, 5, 5), date(2028, 2, 29)),
        # years=0: the next such date, this year or the next
        ({"month": 3, "day": 31, "years": 0}, date(2026, 2, 1), date(2026, 3, 31)),
        ({"month": 3, "day": 31, "years": 0}, date(2026, 5, 5), date(2027, 3, 31)),
    ],
)
def test_expiry_on_a_fixed_date_of_the_year(
    fields: dict[str, Any], earned: date, last_day: date
) -> None:
    p = policy(type="fixed_date", **fields)
    assert last_valid_day(p, datetime.combine(earned, time(12), BERLIN), BERLIN) == last_day


@pytest.mark.parametrize("fields", [{"type": "never"}, {"type": "inactivity", "months": 18}])
def test_points_without_an_expiry_date(fields: dict[str, Any]) -> None:
    assert expires_at(policy(**fields), datetime(2026, 1, 10, tzinfo=UTC), BERLIN) is None
    assert expires_on(None, BERLIN) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "after"},
        {"type": "after", "months": 12, "days": 30},
        {"type": "after", "months": 0},
        {"type": "fixed_date", "month": 12},
        {"type": "fixed_date", "month": 13, "day": 1},
        {"type": "inactivity"},
        {"type": "after", "months": 12, "round_to": "week_end"},
        {"type": "sometimes"},
        {"type": "never", "colour": "red"},
    ],
)
def test_malformed_expiry_policies(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ExpiryPolicy.model_validate(fields)


def test_month_arithmetic_clamps_to_the_end_of_shorter_months() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 3, 31), 1) == date(2026, 4, 30)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)
    assert add_months(date(2026, 1, 10), 120) == date(2036, 1, 10)
    assert clamp_date(2026, 2, 31) == date(2026, 2, 28)


def test_rounding_up_to_period_ends() -> None:
    day = date(2026, 8, 14)
    assert round_up(day, None) == day
    assert round_up(day, "month_end") == date(2026, 8, 31)
    assert round_up(day, "quarter_end") == date(2026, 9, 30)
    assert round_up(date(2026, 2, 1), "quarter_end") == date(2026, 3, 31)
    assert round_up(date(2026, 12, 31), "quarter_end") == date(2026, 12, 31)
    assert round_up(day, "year_end") == date(2026, 12, 31)


# --- daylight saving time --------------------------------------------------------------


def test_local_midnight_in_berlin_on_the_spring_forward_day() -> None:
    # 29 March 2026: clocks go from 02:00 to 03:00; midnight is still winter time
    assert start_of_day(date(2026, 3, 29), BERLIN).astimezone(UTC) == datetime(
        2026, 3, 28, 23, 0, tzinfo=UTC
    )
    assert start_of_day(date(2026, 3, 30), BERLIN).astimezone(UTC) == datetime(
        2026, 3, 29, 22, 0, tzinfo=UTC
    )


def test_local_midnight_in_berlin_on_the_fall_back_day() -> None:
    # 25 October 2026: clocks go from 03:00 back to 02:00; the day has 25 hours
    start = start_of_day(date(2026, 10, 25), BERLIN)
    end = start_of_day(date(2026, 10, 26), BERLIN)
    assert start.astimezone(UTC) == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)


@pytest.mark.parametrize(
    ("last_day", "first_invalid_utc"),
    [
        (date(2026, 3, 28), datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),
        (date(2026, 3, 29), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),
        (date(2026, 10, 24), datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
        (date(2026, 10, 25), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),
    ],
)
def test_points_expiring_around_a_dst_change_last_the_whole_local_day(
    last_day: date, first_invalid_utc: datetime
) -> None:
    p = policy(type="after", days=10)
    earned = datetime.combine(last_day - timedelta(days=10), time(15), BERLIN)
    at = expires_at(p, earned, BERLIN)
    assert at is not None
    assert at.astimezone(UTC) == first_invalid_utc
    assert expires_on(at, BERLIN) == last_day


def test_midnight_skipped_by_dst_gives_the_first_existing_instant() -> None:
    # Chile springs forward at midnight: 6 September 2026 starts at 01:00 local time
    start = start_of_day(date(2026, 9, 6), SANTIAGO)
    assert start.astimezone(UTC) == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)
    assert start.astimezone(UTC).astimezone(SANTIAGO).time() == time(1, 0)
    assert expires_on(start, SANTIAGO) == date(2026, 9, 5)


@given(
    earned=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
    ),
    tz=st.sampled_from([BERLIN, SAO_PAULO, SANTIAGO, ZoneInfo("Pacific/Auckland")]),
    fields=st.one_of(
        st.builds(
            dict,
            type=st.just("after"),
            months=st.integers(1, 120),
            round_to=st.sampled_from([None, "month_end", "quarter_end", "year_end"]),
        ),
        st.builds(dict, type=st.just("after"), days=st.integers(1, 3650)),
        st.builds(
            dict,
            type=st.just("fixed_date"),
            month=st.integers(1, 12),
            day=st.integers(1, 31),
            years=st.integers(0, 5),
        ),
    ),
)
def test_points_stay_valid_through_a_whole_local_day_from_the_day_they_are_earned(
    earned: datetime, tz: ZoneInfo, fields: dict[str, Any]
) -> None:
    at = expires_at(policy(**fields), earned, tz)
    assert at is not None
    assert at > earned
    last_day = expires_on(at, tz)
    assert last_day is not None
    assert last_day >= earned.astimezone(tz).date()
    # the first invalid instant is the first instant of the next local day
    assert (at - timedelta(microseconds=1)).astimezone(tz).date() == last_day
    assert at.astimezone(UTC).astimezone(tz).date() == last_day + timedelta(days=1)


# --- pending points --------------------------------------------------------------------


def test_when_pending_points_become_available() -> None:
    earned = datetime(2026, 3, 2, 8, 10, tzinfo=BERLIN)
    assert activates_at(PendingPolicy(), earned) == earned
    assert activates_at(PendingPolicy(mode="after_days", days=14), earned) == datetime(
        2026, 3, 16, 8, 10, tzinfo=BERLIN
    )
    assert activates_at(PendingPolicy(mode="on_activation"), earned) is None


def test_other_policies_validate_their_fields() -> None:
    with pytest.raises(ValidationError):
        PendingPolicy(mode="after_days")
    with pytest.raises(ValidationError):
        ReturnPolicy.model_validate({"policy": "forgive_everything"})
    assert ReturnPolicy().policy == "within_balance"
    assert ReturnPolicy().claim_window_days == 30


def test_account_ids_derive_from_their_owner() -> None:
    assert member_account_id("mbr_01J9", MemberAccount.AVAILABLE) == "acc_01J9_poi_available"
    assert system_account_id("prg_01J8", SystemAccount.BREAKAGE) == "acc_01J8_poi_breakage"


# --- spending lots ---------------------------------------------------------------------


def lot(
    lot_id: str, remaining: int, expires: date | None, created: date, tz: ZoneInfo = UTC
) -> LotView:
    return LotView(
        lot_id,
        remaining,
        datetime.combine(expires, time(0), tz) if expires else None,
        datetime.combine(created, time(12), tz),
    )


JANUARY = lot("january", 120, date(2027, 2, 1), date(2026, 1, 10))
EARLY_JANUARY = lot("early-january", 10, date(2027, 2, 1), date(2026, 1, 5))
BIRTHDAY = lot("birthday", 100, date(2027, 8, 1), date(2026, 7, 15))
DECEMBER = lot("december", 240, date(2028, 1, 1), date(2026, 12, 22))
WELCOME = lot("welcome", 50, None, date(2025, 6, 1))
GIFT = lot("gift", 30, None, date(2025, 9, 1))


def test_spend_order_soonest_expiry_first_then_oldest_then_never_expiring_last() -> None:
    lots = [GIFT, DECEMBER, WELCOME, JANUARY, BIRTHDAY, EARLY_JANUARY]
    assert [x.id for x in spend_order(lots)] == [
        "early-january",
        "january",
        "birthday",
        "december",
        "welcome",
        "gift",
    ]


def test_spend_order_compares_instants_across_timezones() -> None:
    # midnight in São Paulo is 03:00 UTC, after midnight in Berlin (23:00 UTC the day before)
    sp = lot("sp", 10, date(2027, 2, 1), date(2026, 1, 1), SAO_PAULO)
    berlin = lot("berlin", 10, date(2027, 2, 1), date(2026, 6, 1), BERLIN)
    assert [x.id for x in spend_order([sp, berlin])] == ["berlin", "sp"]


def test_a_redemption_uses_the_lot_that_expires_first() -> None:
    assert allocate_lots([DECEMBER, JANUARY, BIRTHDAY], 200) == [
        ("january", 120),
        ("birthday", 80),
    ]


def test_allocation_exact_to_the_point_and_skips_empty_lots() -> None:
    empty = lot("empty", 0, date(2026, 6, 1), date(2025, 6, 1))
    assert allocate_lots([empty, JANUARY, WELCOME], 170) == [("january", 120), ("welcome", 50)]
    assert allocate_lots([JANUARY], 120) == [("january", 120)]
    assert allocate_lots([JANUARY], 0) == []


def test_allocation_raises_when_the_lots_hold_too_little() -> None:
    with pytest.raises(ValueError, match="lots hold 170 of the 171 points asked for"):
        allocate_lots([JANUARY, WELCOME], 171)
    with pytest.raises(ValueError, match="lots hold 0 of the 1 points"):
        allocate_lots([], 1)


lots_st = st.lists(
    st.builds(
        lambda i, remaining, expires, created: lot(f"lot-{i}", remaining, expires, created),
        st.integers(0, 10**6),
        st.integers(0, 500),
        st.one_of(st.none(), st.dates(date(2026, 1, 1), date(2030, 12, 31))),
        st.dates(date(2024, 1, 1), date(2026, 12, 31)),
    ),
    max_size=10,
    unique_by=lambda x: x.id,
)


@given(lots_st, st.data())
def test_allocation_pays_exactly_in_spend_order(lots: list[LotView], data: st.DataObject) -> None:
    held = sum(x.remaining for x in lots)
    amount = data.draw(st.integers(0, held))
    plan = allocate_lots(lots, amount)
    assert sum(take for _, take in plan) == amount
    by_id = {x.id: x for x in lots}
    assert all(0 < take <= by_id[lot_id].remaining for lot_id, take in plan)
    # every lot before the last one used is used up
    order = [x.id for x in spend_order(lots) if x.remaining > 0]
    assert [lot_id for lot_id, _ in plan] == order[: len(plan)]
    assert all(take == by_id[lot_id].remaining for lot_id, take in plan[:-1])
    with pytest.raises(ValueError, match="lots hold"):
        allocate_lots(lots, held + 1)
