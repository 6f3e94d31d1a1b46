"""Tiers: the programme document section and the decisions (pure).

A programme's tiers are ordered levels (``levels``, lowest first) that a member qualifies for by
a *metric* (points earned, spend net of returns, visits) over a *period* (lifetime, calendar
year, rolling 12 months, membership year from the enrolment anniversary). Decisions:

* :func:`tier_for` — the highest level whose threshold a period's result reaches;
* :func:`upgrade_due` — after an activity: the level to move up to now (never down mid-period);
* :func:`evaluate_tier` — at a period boundary: the level the finished period earns, with the
  downgrade policy (never more than ``max_steps_down`` steps) applied;
* :func:`period_containing` / :func:`finished_before` — period bounds as local dates in
  programme time (the service turns them into instants with the programme's timezone).

Nothing here reads a clock or a database: the same functions serve the till, the nightly run
and the property tests ("the tier is a pure function of the period's activities").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from treu.ledger.model import add_months, clamp_date
from treu.rules.model import Rule


class Metric(StrEnum):
    POINTS_EARNED = "points_earned"  # points earned in the period, net of points taken back
    SPEND = "spend"  # the earning base of purchases (e.g. without shipping and tax), net of returns
    VISITS = "visits"  # purchases in the period that were not returned in full


class PeriodKind(StrEnum):
    LIFETIME = "lifetime"
    CALENDAR_YEAR = "calendar_year"
    ROLLING_12_MONTHS = "rolling_12_months"
    ANNIVERSARY = "anniversary"  # the membership year, from the member's enrolment date


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierDef(_Doc):
    """One level. ``threshold`` is money in the programme currency for ``spend``, a whole
    number of points or visits otherwise."""

    # short enough for the implied rule's key, ``tier-<key>``
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,58}$")
    name: str = Field(min_length=1, max_length=100)
    threshold: Decimal = Field(ge=0, le=Decimal("100000000"), allow_inf_nan=False)
    earn_multiplier: Decimal = Field(default=Decimal(1), ge=1, le=100, allow_inf_nan=False)
    perks: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="shown at look-up, e.g. free_shipping",
    )


class DowngradePolicy(_Doc):
    """Downgrades happen only when a period ends (never mid-period)."""

    grace_days: int = Field(default=0, ge=0, le=366, description="days after the period end")
    max_steps_down: int | None = Field(default=None, gt=0, description="1: one level at most")


class TierSettings(_Doc):
    """The programme's tiers and how members qualify for them."""

    metric: Metric = Metric.SPEND
    period: PeriodKind = PeriodKind.CALENDAR_YEAR
    upgrade: Literal["immediately", "next_period"] = "immediately"
    downgrade: DowngradePolicy = Field(default_factory=DowngradePolicy)
    will_downgrade_warning_days: int | None = Field(default=None, gt=0, le=366)
    levels: list[TierDef] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _levels_in_order(self) -> TierSettings:
        if self.levels[0].threshold != 0:
            raise ValueError("levels.0.threshold: the first (lowest) tier starts at 0")
        seen: set[str] = set()
        for i, level in enumerate(self.levels):
            if level.key in seen:
                raise ValueError(f"levels.{i}.key: {level.key!r} is used twice")
            seen.add(level.key)
            if i and level.threshold <= self.levels[i - 1].threshold:
                raise ValueError(
                    f"levels.{i}.threshold: thresholds must increase strictly"
                    f" ({level.threshold} after {self.levels[i - 1].threshold})"
                )
            if self.metric is not Metric.SPEND and level.threshold != level.threshold.to_integral():
                raise ValueError(
                    f"levels.{i}.threshold: {self.metric} thresholds are whole numbers"
                )
        return self

    @property
    def lowest(self) -> TierDef:
        return self.levels[0]

    def keys(self) -> tuple[str, ...]:
        return tuple(level.key for level in self.levels)

    def level(self, key: str | None) -> TierDef | None:
        return next((t for t in self.levels if t.key == key), None)

    def rank(self, key: str | None) -> int:
        """0 for the lowest tier; an unknown key (a tier removed since) counts as the lowest."""
        keys = self.keys()
        return keys.index(key) if key in keys else 0

    def threshold_units(self, level: TierDef, exponent: int) -> int:
        """The threshold in the metric's units: minor units for spend, else points or visits."""
        if self.metric is Metric.SPEND:
            return int(level.threshold.scaleb(exponent))
        return int(level.threshold)


def implied_rules(settings: TierSettings | None) -> list[Rule]:
    """A tier's earn multiplier as a ``multiplier`` rule that matches members of that tier
    (the standing read before the rules run, so it applies from the order after an upgrade)."""
    if settings is None:
        return []
    return [
        Rule.model_validate(
            {
                "key": f"tier-{level.key}",
                "name": f"{level.name} tier: x{level.earn_multiplier}",
                "when": {"activity": "purchase", "tiers": [level.key]},
                "effect": {"type": "multiplier", "factor": level.earn_multiplier},
            }
        )
        for level in settings.levels
        if level.earn_multiplier > 1
    ]


@dataclass(frozen=True)
class PeriodResult:
    """What a member did in a period, as the metrics count it."""

    spend_minor: int = 0
    points: int = 0
    visits: int = 0

    def value(self, metric: Metric) -> int:
        if metric is Metric.SPEND:
            return self.spend_minor
        if metric is Metric.POINTS_EARNED:
            return self.points
        return self.visits

    def __add__(self, other: PeriodResult) -> PeriodResult:
        return PeriodResult(
            self.spend_minor + other.spend_minor,
            self.points + other.points,
            self.visits + other.visits,
        )


@dataclass(frozen=True)
class Window:
    """A period as local dates in programme time: ``start`` inclusive, ``end`` exclusive;
    ``None`` is open (lifetime)."""

    start: date | None
    end: date | None

    def label(self, kind: PeriodKind) -> str:
        """How an explanation names the period: ``in 2026``, ``in the last 12 months`` ..."""
        if kind is PeriodKind.CALENDAR_YEAR and self.start is not None:
            return f"in {self.start.year}"
        if kind is PeriodKind.ANNIVERSARY and self.start is not None:
            return f"in the membership year from {self.start.isoformat()}"
        if kind is PeriodKind.ROLLING_12_MONTHS:
            return "in the last 12 months"
        return "in total"


def period_containing(kind: PeriodKind, day: date, enrolled_on: date) -> Window:
    """The period ``day`` belongs to. For a rolling period: the 12 months up to and with ``day``.
    An enrolment on 29 February has its anniversary on 28 February in other years."""
    if kind is PeriodKind.CALENDAR_YEAR:
        return Window(date(day.year, 1, 1), date(day.year + 1, 1, 1))
    if kind is PeriodKind.ROLLING_12_MONTHS:
        end = day + timedelta(days=1)
        return Window(add_months(end, -12), end)
    if kind is PeriodKind.ANNIVERSARY:
        start = clamp_date(day.year, enrolled_on.month, enrolled_on.day)
        if start > day:
            start = clamp_date(day.year - 1, enrolled_on.month, enrolled_on.day)
        return Window(start, clamp_date(start.year + 1, enrolled_on.month, enrolled_on.day))
    return Window(None, None)


def is_boundary(kind: PeriodKind, day: date, enrolled_on: date) -> bool:
    """Does a period begin on ``day``? Every day for a rolling period, never for lifetime."""
    if kind is PeriodKind.LIFETIME:
        return False
    if kind is PeriodKind.ROLLING_12_MONTHS:
        return True
    return period_containing(kind, day, enrolled_on).start == day


def finished_before(kind: PeriodKind, boundary: date, enrolled_on: date) -> Window:
    """The period that ended when ``boundary`` began."""
    return period_containing(kind, boundary - timedelta(days=1), enrolled_on)


@dataclass(frozen=True)
class Decision:
    """Where a member should be, and why (``reason`` as tier history records it)."""

    target: TierDef
    reason: Literal["upgrade", "downgrade"] | None  # None: stays
    explanation: str


def tier_for(settings: TierSettings, result: PeriodResult, exponent: int) -> TierDef:
    """The highest level whose threshold ``result`` reaches."""
    value = result.value(settings.metric)
    reached = settings.lowest
    for level in settings.levels:
        if value >= settings.threshold_units(level, exponent):
            reached = level
    return reached


def upgrade_due(
    settings: TierSettings,
    current: str | None,
    result: PeriodResult,
    *,
    exponent: int,
    currency: str,
    window: Window,
) -> Decision | None:
    """After an activity: the level to move up to now, if the programme upgrades immediately
    and the running period reaches a higher level. Never a downgrade: a return lowers the
    result, but members keep their tier until the period ends."""
    if settings.upgrade != "immediately":
        return None
    reached = tier_for(settings, result, exponent)
    if settings.rank(reached.key) <= settings.rank(current):
        return None
    return Decision(reached, "upgrade", _why(settings, reached, result, exponent, currency, window))


def evaluate_tier(
    settings: TierSettings,
    current: str | None,
    finished: PeriodResult,
    *,
    running: PeriodResult | None = None,
    exponent: int,
    currency: str,
    window: Window,
) -> Decision:
    """At a period boundary: the level the finished period earns. ``running`` (the new
    period so far) counts too when upgrades are immediate — a member who already qualifies
    again is not taken down to be lifted up with the next purchase. ``max_steps_down`` limits
    a downgrade."""
    earned = tier_for(settings, finished, exponent)
    basis = finished
    if running is not None and settings.upgrade == "immediately":
        now = tier_for(settings, running, exponent)
        if settings.rank(now.key) > settings.rank(earned.key):
            earned, basis = now, running
    have, want = settings.rank(current), settings.rank(earned.key)
    steps = settings.downgrade.max_steps_down
    if want < have and steps is not None:
        want = max(want, have - steps)
    target = settings.levels[want]
    why = _why(settings, target, basis, exponent, currency, window)
    if want > have:
        return Decision(target, "upgrade", why)
    if want < have:
        above = settings.levels[want + 1]
        done = describe(settings.metric, basis.value(settings.metric), exponent, currency)
        needs = describe(
            settings.metric,
            settings.threshold_units(above, exponent),
            exponent,
            currency,
            bare=True,
        )
        why = (
            f"{target.name} from now on: {done} {window.label(settings.period)}"
            f" ({above.name} needs {needs})"
        )
        return Decision(target, "downgrade", why)
    return Decision(target, None, why)


def _why(
    settings: TierSettings,
    level: TierDef,
    result: PeriodResult,
    exponent: int,
    currency: str,
    window: Window,
) -> str:
    done = describe(settings.metric, result.value(settings.metric), exponent, currency)
    threshold = describe(
        settings.metric, settings.threshold_units(level, exponent), exponent, currency, bare=True
    )
    return f"{level.name} reached: {done} {window.label(settings.period)} (threshold {threshold})"


def describe(
    metric: Metric, value: int, exponent: int, currency: str, *, bare: bool = False
) -> str:
    """``260.00 USD spent``, ``300 points earned``, ``5 visits`` (``bare``: the number only)."""
    if metric is Metric.SPEND:
        amount = f"{Decimal(value).scaleb(-exponent):.{exponent}f}"
        return amount if bare else f"{amount} {currency} spent"
    if bare:
        return str(value)
    return f"{value} points earned" if metric is Metric.POINTS_EARNED else f"{value} visits"
