"""Calendar periods in programme time: day, ISO week (Monday first), month, quarter, year.

A :class:`Window` is a run of local days, ``first`` inclusive and ``end`` exclusive; its instants
are local midnights in the programme's timezone (``ledger.model.start_of_day``), so a period
boundary is where the owner's calendar puts it, whatever the daylight-saving offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from treu.ledger.model import add_months, start_of_day

MAX_WINDOWS = 1000  # a request for more periods than this is a mistake (ten years of weeks: 522)


class PeriodUnit(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


def floor_date(unit: PeriodUnit, day: date) -> date:
    """The first day of the period of ``unit`` that contains ``day``."""
    if unit is PeriodUnit.DAY:
        return day
    if unit is PeriodUnit.WEEK:
        return day - timedelta(days=day.weekday())
    if unit is PeriodUnit.MONTH:
        return day.replace(day=1)
    if unit is PeriodUnit.QUARTER:
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return date(day.year, 1, 1)


def next_start(unit: PeriodUnit, first: date) -> date:
    """The first day of the period after the one starting on ``first``."""
    if unit is PeriodUnit.DAY:
        return first + timedelta(days=1)
    if unit is PeriodUnit.WEEK:
        return first + timedelta(days=7)
    months = {PeriodUnit.MONTH: 1, PeriodUnit.QUARTER: 3, PeriodUnit.YEAR: 12}[unit]
    return add_months(first, months)


@dataclass(frozen=True)
class Window:
    unit: PeriodUnit
    first: date
    end: date  # the day after the last

    @classmethod
    def containing(cls, unit: PeriodUnit, day: date) -> Window:
        first = floor_date(unit, day)
        return cls(unit, first, next_start(unit, first))

    @property
    def label(self) -> str:
        """``2026-03-02``, ``2026-W10``, ``2026-03``, ``2026-Q1``, ``2026``."""
        if self.unit is PeriodUnit.DAY:
            return self.first.isoformat()
        if self.unit is PeriodUnit.WEEK:
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.unit is PeriodUnit.MONTH:
            return f"{self.first:%Y-%m}"
        if self.unit is PeriodUnit.QUARTER:
            return f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}"
        return str(self.first.year)

    def previous(self) -> Window:
        """The period of the same unit just before this one (retention compares with it)."""
        return Window.containing(self.unit, self.first - timedelta(days=1))

    def instants(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return start_of_day(self.first, tz), start_of_day(self.end, tz)


def windows(unit: PeriodUnit, first: date, end: date) -> list[Window]:
    """The whole periods of ``unit`` that cover the days ``[first, end)``: a month report from
    15 January starts with all of January."""
    if end <= first:
        raise ValueError("the period's end must come after its start")
    found: list[Window] = []
    start = floor_date(unit, first)
    while start < end:
        if len(found) == MAX_WINDOWS:
            raise ValueError(f"more than {MAX_WINDOWS} {unit.value} periods: choose a larger unit")
        found.append(Window(unit, start, next_start(unit, start)))
        start = found[-1].end
    return found


def default_range(unit: PeriodUnit, today: date, count: int = 12) -> tuple[date, date]:
    """The last ``count`` periods of ``unit`` up to and with the one containing ``today``."""
    end = next_start(unit, floor_date(unit, today))
    first = end
    for _ in range(count):
        first = floor_date(unit, first - timedelta(days=1))
    return first, end
