"""KPI formulas and the counting of facts, on small hand-made frames (no database)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from treu.analytics import kpis
from treu.analytics.kpis import Facts
from treu.analytics.model import KpiSet
from treu.analytics.periods import PeriodUnit, Window, default_range, windows

BERLIN = ZoneInfo("Europe/Berlin")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


# --- periods -------------------------------------------------------------------------------


def test_periods_are_whole_calendar_periods_covering_the_range() -> None:
    months = windows(PeriodUnit.MONTH, date(2026, 1, 15), date(2026, 3, 2))
    assert [m.label for m in months] == ["2026-01", "2026-02", "2026-03"]
    assert (months[1].first, months[1].end) == (date(2026, 2, 1), date(2026, 3, 1))
    (quarter,) = windows(PeriodUnit.QUARTER, date(2026, 5, 1), date(2026, 5, 2))
    assert (quarter.label, quarter.first, quarter.end) == (
        "2026-Q2",
        date(2026, 4, 1),
        date(2026, 7, 1),
    )
    (week,) = windows(PeriodUnit.WEEK, date(2026, 1, 1), date(2026, 1, 2))
    assert (week.label, week.first) == ("2026-W01", date(2025, 12, 29))
    assert Window.containing(PeriodUnit.YEAR, date(2026, 7, 7)).previous().label == "2025"


def test_a_period_boundary_is_local_midnight_whatever_the_daylight_saving() -> None:
    (march,) = windows(PeriodUnit.MONTH, date(2026, 3, 1), date(2026, 3, 2))
    start, end = march.instants(BERLIN)
    assert start == datetime(2026, 2, 28, 23, tzinfo=UTC)  # CET, +01:00
    assert end == datetime(2026, 3, 31, 22, tzinfo=UTC)  # CEST, +02:00


def test_the_default_range_is_the_last_twelve_periods() -> None:
    assert default_range(PeriodUnit.MONTH, date(2026, 5, 20)) == (
        date(2025, 6, 1),
        date(2026, 6, 1),
    )


def test_too_many_periods_or_an_empty_range_are_refused() -> None:
    with pytest.raises(ValueError, match="larger unit"):
        windows(PeriodUnit.DAY, date(2000, 1, 1), date(2026, 1, 1))
    with pytest.raises(ValueError, match="after its start"):
        windows(PeriodUnit.DAY, date(2026, 1, 1), date(2026, 1, 1))


# --- formulas ------------------------------------------------------------------------------


def kpi_set(**given: Any) -> KpiSet:
    facts: dict[str, Any] = {
        "scope": "programme",
        "period": "2026-03",
        "first": date(2026, 3, 1),
        "end": date(2026, 4, 1),
        "currency": "EUR",
        "point_value": Decimal("0.01"),
        "members": 0,
        "enrolments": 0,
        "purchases": 0,
        "member_purchases": 0,
        "revenue_minor": 0,
        "member_revenue_minor": 0,
        "returns_minor": 0,
        "active_members": 0,
        "repeat_members": 0,
        "previous_active": 0,
        "retained_members": 0,
    }
    for name in (
        "points_earned",
        "points_adjusted_in",
        "points_reversed",
        "points_adjusted_out",
        "points_redeemed",
        "points_expired",
        "points_donated",
        "outstanding_points",
        "wallet_outstanding_minor",
        "cashback_minor",
        "credit_minor",
        "dividends_minor",
        "donations_minor",
        "membership_fees_minor",
        "referrals_made",
        "referrals_converted",
    ):
        facts[name] = 0
    return KpiSet(**{**facts, **given})


def test_every_formula_on_numbers_worked_out_by_hand() -> None:
    # given 200 purchases, 150 of them by 60 active members out of 400, 20 of whom bought twice
    k = kpi_set(
        members=400,
        purchases=200,
        member_purchases=150,
        revenue_minor=900_000,
        member_revenue_minor=750_000,
        returns_minor=10_000,
        active_members=60,
        repeat_members=20,
        previous_active=50,
        retained_members=35,
        points_earned=7_000,
        points_adjusted_in=500,
        points_reversed=300,
        points_adjusted_out=200,
        points_redeemed=3_000,
        points_expired=1_000,
        points_donated=1_000,
        outstanding_points=20_000,
        wallet_outstanding_minor=12_345,
        cashback_minor=1_000,
        credit_minor=500,
        dividends_minor=2_000,
        donations_minor=1_500,
        membership_fees_minor=50_000,
    )
    assert k.enrolment_rate == Fraction(3, 4)
    assert k.active_member_rate == Fraction(60, 400)
    assert k.repeat_purchase_rate == Fraction(1, 3)
    assert k.purchase_frequency == Fraction(5, 2)
    assert k.value("aov_members") == Decimal("50.0000")  # 7500.00 / 150
    assert k.value("aov_guests") == Decimal("30.0000")  # 1500.00 / 50
    assert k.member_revenue_share == Fraction(5, 6)
    assert k.value("net_revenue") == Decimal("8900.00")
    assert (k.retention_rate, k.churn_rate) == (Fraction(7, 10), Fraction(3, 10))
    assert (k.points_issued, k.points_taken_back) == (7_500, 500)
    assert k.redemption_rate == Fraction(3_000, 7_500)
    assert k.breakage_rate == Fraction(1_000, 5_000)  # expired of redeemed+expired+donated
    assert k.liability == Decimal("200.00") + Decimal("123.45")
    assert k.rewards_cost == Decimal("30.00")
    assert k.programme_cost == Decimal("30.00") + Decimal("50.00")  # + 10 + 5 + 20 + 15
    # 150 purchases x (50.00 − 30.00)
    assert k.incremental_revenue == Decimal("3000.0000")
    assert k.return_on_cost == Fraction(3000, 80)
    assert k.membership_fee_revenue == Decimal("500.00")
    assert k.display("enrolment_rate") == "75.0 %"
    assert k.display("purchase_frequency") == "2.50"
    assert k.display("liability") == "323.45"


def test_a_rate_over_nothing_is_unknown_not_zero() -> None:
    k = kpi_set(points_redeemed=None)
    assert k.enrolment_rate is None
    assert k.aov_members_minor is None
    assert k.churn_rate is None
    assert k.redemption_rate is None
    assert k.programme_cost is None
    assert k.display("churn_rate") == "–"


# --- counting ------------------------------------------------------------------------------


def frame(rows: list[tuple[Any, ...]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_the_ledger_counts_spending_expiry_donations_and_the_wallet() -> None:
    # given March: Mia earns 100, a manual +10 and −5, redeems 40 of which 10 come back
    # (cancelled), 20 expire, 10 are donated; she gets 3.00 cashback (0.50 taken back),
    # 4.00 store credit and a 6.00 dividend; a 25.00 gift card is sold to a guest
    m = "mbr_mia"

    def t(kind: str, unit: str, amount: int, debit: str, credit: str, day: int = 10) -> tuple:
        return (kind, unit, amount, local(2026, 3, day, 12), m, debit, credit)

    transfers = frame(
        [
            t("earn", "points", 100, "issuance", "available", 2),
            t("adjust", "points", 10, "adjustment", "available"),
            t("adjust", "points", 5, "available", "adjustment"),
            t("hold", "points", 40, "available", "held"),
            t("capture", "points", 40, "held", "redemption"),
            t("restore", "points", 10, "redemption", "available"),
            t("expire", "points", 20, "available", "breakage"),
            t("donate", "points", 10, "available", "donation"),
            t("cashback", "wallet", 300, "issuance", "available"),
            t("reverse", "wallet", 50, "available", "issuance"),
            t("credit", "wallet", 400, "issuance", "available"),
            t("credit", "wallet", 600, "issuance", "available"),
            ("load", "wallet", 2500, local(2026, 3, 9), None, "issuance", "available"),
        ],
        kpis.TRANSFERS,
    )
    money = frame(
        [
            ("dividend", m, local(2026, 3, 10, 12), 600),
            ("donation", m, local(2026, 3, 10, 12), 150),
            ("fee", m, local(2026, 3, 1, 0, 0), 500),
            ("fee", m, local(2026, 2, 28, 23, 59), 500),  # February
        ],
        kpis.MONEY,
    )
    facts = Facts.of(transfers=transfers, money=money)
    (march,) = kpis.count(
        facts,
        windows(PeriodUnit.MONTH, date(2026, 3, 1), date(2026, 4, 1)),
        BERLIN,
        scope="programme",
        currency="EUR",
        point_value=Decimal("0.01"),
    )
    assert (march.points_issued, march.points_taken_back) == (110, 5)
    assert (march.points_redeemed, march.points_expired, march.points_donated) == (30, 20, 10)
    assert march.outstanding_points == 100 + 10 - 5 - 40 + 10 - 20 - 10
    assert march.wallet_outstanding_minor == 300 - 50 + 400 + 600 + 2500
    assert (march.cashback_minor, march.credit_minor, march.dividends_minor) == (250, 400, 600)
    assert (march.donations_minor, march.membership_fees_minor) == (150, 500)
    assert march.breakage_rate == Fraction(20, 60)
    # rewards 0.30 + cashback 2.50 + credit 4.00 + dividend 6.00 + donations 1.50
    assert march.programme_cost == Decimal("14.30")


def independent(activities: list[tuple[Any, ...]], month: tuple[int, int]) -> dict[str, int]:
    """The same counts, in plain Python: the months of programme time, by hand."""

    def in_month(at: datetime, ym: tuple[int, int]) -> bool:
        day = at.astimezone(BERLIN)
        return (day.year, day.month) == ym

    previous = (month[0] - (month[1] == 1), (month[1] - 2) % 12 + 1)
    bought = [a for a in activities if a[1] == "purchase" and in_month(a[4], month)]
    mine = [a for a in bought if a[2] is not None]
    visits: dict[str, int] = {}
    for a in mine:
        visits[a[2]] = visits.get(a[2], 0) + 1
    before = {a[2] for a in activities if a[1] == "purchase" and a[2] and in_month(a[4], previous)}
    return {
        "purchases": len(bought),
        "member_purchases": len(mine),
        "revenue_minor": sum(a[5] for a in bought),
        "member_revenue_minor": sum(a[5] for a in mine),
        "returns_minor": sum(
            a[5] for a in activities if a[1] == "return" and in_month(a[4], month)
        ),
        "active_members": len(visits),
        "repeat_members": sum(1 for n in visits.values() if n >= 2),
        "previous_active": len(before),
        "retained_members": len(before & set(visits)),
    }


def test_the_counts_agree_exactly_with_an_independent_count_on_a_generated_history() -> None:
    rng = random.Random(7)
    start = datetime(2025, 12, 1, tzinfo=UTC)
    people = [f"mbr_{i:03d}" for i in range(60)]
    activities = [
        (
            f"act_{i}",
            rng.choice(("purchase", "purchase", "purchase", "return")),
            rng.choice([*people, None, None]),
            rng.choice(("laden", "online")),
            start + timedelta(minutes=rng.randrange(0, 4 * 31 * 24 * 60)),
            rng.randrange(100, 10_000),
        )
        for i in range(3000)
    ]
    facts = Facts.of(activities=frame(activities, kpis.ACTIVITIES))
    sets = kpis.count(
        facts,
        windows(PeriodUnit.MONTH, date(2026, 1, 1), date(2026, 4, 1)),
        BERLIN,
        scope="programme",
        currency="EUR",
        point_value=Decimal("0.01"),
    )
    by_polars = with_polars(frame(activities, kpis.ACTIVITIES))
    for k, month in zip(sets, [(2026, 1), (2026, 2), (2026, 3)], strict=True):
        expected = independent(activities, month)
        assert {name: getattr(k, name) for name in expected} == expected
        # and a third count, in Polars by the local calendar month
        assert by_polars[f"{month[0]}-{month[1]:02d}"] == expected


def with_polars(acts: pl.DataFrame) -> dict[str, dict[str, int]]:
    """The same counts per local month with Polars' own time-zone conversion and group-bys
    (not the period boundaries and binary search of treu.analytics.kpis)."""
    local = acts.with_columns(
        month=pl.col("occurred_at").dt.convert_time_zone("Europe/Berlin").dt.strftime("%Y-%m")
    )
    bought = local.filter(pl.col("type") == "purchase")
    visits = bought.filter(pl.col("member_id").is_not_null()).group_by("month", "member_id").len()
    out: dict[str, dict[str, int]] = {}
    months = sorted(local["month"].unique())
    for previous, month in itertools.pairwise(months):  # every month has activities
        these = bought.filter(pl.col("month") == month)
        mine = these.filter(pl.col("member_id").is_not_null())
        active = visits.filter(pl.col("month") == month)
        before = set(visits.filter(pl.col("month") == previous)["member_id"])
        returns = local.filter(pl.col("type") == "return", pl.col("month") == month)
        out[month] = {
            "purchases": these.height,
            "member_purchases": mine.height,
            "revenue_minor": int(these["paid_minor"].sum()),
            "member_revenue_minor": int(mine["paid_minor"].sum()),
            "returns_minor": int(returns["paid_minor"].sum()),
            "active_members": active.height,
            "repeat_members": active.filter(pl.col("len") >= 2).height,
            "previous_active": len(before),
            "retained_members": len(before & set(active["member_id"])),
        }
    return out
