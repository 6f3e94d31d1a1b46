"""Cohort retention (pure, on Polars frames).

A cohort is the members who enrolled (or first bought) in one calendar month of programme
time. Its retention in month offset ``k`` is the share of the cohort that bought at least once
in the ``k``-th month after the cohort's month (``k = 0``: the cohort's own month; for
first-purchase cohorts that is 100 % by definition).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

import polars as pl

from treu.analytics.model import ratio, to_decimal

Basis = Literal["enrolment", "first_purchase"]


def month_index(column: str, tz: ZoneInfo) -> pl.Expr:
    """Months since year 0 of an instant's local date (programme time)."""
    local = pl.col(column).dt.convert_time_zone(tz.key)
    return local.dt.year().cast(pl.Int64) * 12 + local.dt.month().cast(pl.Int64) - 1


def _label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _index(day: date) -> int:
    return day.year * 12 + day.month - 1


@dataclass(frozen=True)
class Cohort:
    month: str  # 2026-01
    size: int
    active: list[int]  # members active in month offset 0, 1, …

    @property
    def rates(self) -> list[Fraction | None]:
        return [ratio(n, self.size) for n in self.active]


@dataclass(frozen=True)
class Cohorts:
    basis: Basis
    cohorts: list[Cohort]
    source: str = "database"  # or "store": the columnar store, as of ``as_of``
    as_of: datetime | None = None

    def series(self) -> list[dict[str, Any]]:
        """Chart-ready points: one per cohort and month offset (a heat map or one line per
        cohort); ``rate`` rounded to 4 decimals, the counts exact."""
        return [
            {
                "cohort": c.month,
                "offset": k,
                "members": c.size,
                "active": n,
                "rate": None if c.size == 0 else str(to_decimal(Fraction(n, c.size), 4)),
            }
            for c in self.cohorts
            for k, n in enumerate(c.active)
        ]


def retention(
    members: pl.DataFrame,
    purchases: pl.DataFrame,
    tz: ZoneInfo,
    *,
    first: date,
    end: date,
    basis: Basis = "enrolment",
) -> Cohorts:
    """Cohorts of the months from ``first`` to the month before ``end`` (programme days).

    ``members``: ``id``, ``enrolled_at``, ``first_purchase_at``; ``purchases``: ``member_id``,
    ``occurred_at`` (members' purchases; guests are ignored).
    """
    column = "enrolled_at" if basis == "enrolment" else "first_purchase_at"
    low, high = _index(first), _index(end) if end.day == 1 else _index(end) + 1
    cohort_of = (
        members.filter(pl.col(column).is_not_null())
        .select(pl.col("id").alias("member_id"), month_index(column, tz).alias("cohort"))
        .filter(pl.col("cohort").is_between(low, high - 1))
    )
    active = (
        purchases.filter(pl.col("member_id").is_not_null())
        .select("member_id", month_index("occurred_at", tz).alias("month"))
        .unique()
        .join(cohort_of, on="member_id", how="inner")
        .filter((pl.col("month") >= pl.col("cohort")) & (pl.col("month") < high))
        .group_by("cohort", "month")
        .agg(pl.len().alias("n"))
    )
    sizes = dict(cohort_of.group_by("cohort").agg(pl.len()).iter_rows())
    counts = {(int(c), int(m)): int(n) for c, m, n in active.iter_rows()}
    cohorts = [
        Cohort(
            _label(c),
            int(sizes.get(c, 0)),
            [counts.get((c, m), 0) for m in range(c, high)],
        )
        for c in range(low, high)
    ]
    return Cohorts(basis, cohorts)
