"""Paid memberships: the pure part (programme document section, decisions).

A membership is what a member pays for (a plan: monthly, yearly or once for life) and what the
plan gives while it runs (perks). Treu does not take the money: the shop reports each payment,
failed renewal and cancellation, and the membership's status is a pure function of those
reports and the time, with day boundaries in programme time:

* every successful payment covers one **period**: from the later of its payment time and the end
  of the period before it (a renewal paid early extends, it does not overlap) to local midnight
  of the same day one month / one year later; a lifetime plan's period never ends;
* ``active`` inside a paid period; ``past_due`` after a reported failure, or inside the grace
  days after a period ended unrenewed (perks stay on: the shop is still collecting);
  ``cancelled`` when a cancellation was reported, until the paid period ends (perks stay on,
  nobody loses what they paid for); ``expired`` afterwards. A lifetime plan cancelled is over at
  once — there is no period end to run to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from treu.ledger.model import add_months, clamp_date, start_of_day
from treu.rules.model import Multiplier, Rule, When

Billing = Literal["monthly", "yearly", "lifetime"]
_MONTHS: dict[str, int] = {"monthly": 1, "yearly": 12}


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Discount(_Def):
    """Money off at the till on some categories; Treu shows it, the till applies it."""

    percent: Decimal = Field(gt=0, le=100)
    categories: list[str] = Field(min_length=1)

    def label(self) -> str:
        return f"{self.percent.normalize():f} % on {', '.join(self.categories)}"


class PayDate(_Def):
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)

    def in_year(self, year: int) -> date:
        return clamp_date(year, self.month, self.day)


class Dividend(_Def):
    """A share of a calendar year's eligible purchases (net of returns, made while the
    membership was active), paid as store credit on ``paid_on`` of the following year."""

    percent: Decimal = Field(gt=0, le=100)
    exclude_categories: list[str] = Field(default_factory=list)
    paid_on: PayDate = Field(default_factory=lambda: PayDate(month=3, day=15))


class Perks(_Def):
    earn_multiplier: Decimal | None = Field(default=None, gt=1, le=100)
    discounts: list[Discount] = Field(default_factory=list)
    free_shipping: bool = False
    dividend: Dividend | None = None

    def labels(self) -> list[str]:
        """What the till reads: ``10 % on Classes``, ``free shipping``, ``x2 points``."""
        found = [d.label() for d in self.discounts]
        if self.free_shipping:
            found.append("free shipping")
        if self.earn_multiplier is not None:
            found.append(f"x{self.earn_multiplier.normalize():f} points")
        if self.dividend is not None:
            found.append(f"{self.dividend.percent.normalize():f} % dividend")
        return found


class PlanDef(_Def):
    """One membership plan: what it costs, how often, and what it gives."""

    # 40, not 64: the plan's implied earn rule is called ``membership-<key>``
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    name: str = Field(min_length=1, max_length=200)
    billing: Billing
    fee: Decimal = Field(ge=0, le=Decimal("1000000"), description="in the programme currency")
    grace_days: int = Field(default=0, ge=0, le=90, description="past_due before expired")
    perks: Perks = Field(default_factory=Perks)

    @model_validator(mode="after")
    def _lifetime_has_no_grace(self) -> PlanDef:
        if self.billing == "lifetime" and self.grace_days:
            raise ValueError("a lifetime plan never runs out: grace_days must be 0")
        return self


class Status(StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELLED = "cancelled"  # runs to the end of the paid period
    EXPIRED = "expired"

    @property
    def has_perks(self) -> bool:
        return self is not Status.EXPIRED


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime | None  # None: lifetime


def period_for(
    plan: PlanDef, paid_at: datetime, previous_end: datetime | None, tz: ZoneInfo
) -> Period:
    """The period a payment at ``paid_at`` covers; an early renewal starts where the last
    period ends, a late one at the payment."""
    if plan.billing == "lifetime":
        return Period(paid_at, None)
    start = paid_at if previous_end is None or previous_end < paid_at else previous_end
    local = start.astimezone(tz).date()
    return Period(start, start_of_day(add_months(local, _MONTHS[plan.billing]), tz))


@dataclass(frozen=True)
class Facts:
    """What was reported about one member's membership of one plan."""

    periods: tuple[Period, ...]
    failed_at: datetime | None = None  # the latest reported failed payment
    cancelled_at: datetime | None = None


def status_at(plan: PlanDef, facts: Facts, at: datetime) -> Status | None:
    """The membership's status at ``at``; None before its first payment."""
    started = [p for p in facts.periods if p.start <= at]
    if not started:
        return None
    end = paid_until(facts.periods)
    cancelled = facts.cancelled_at is not None and facts.cancelled_at <= at
    if end is None:  # lifetime
        return Status.EXPIRED if cancelled else Status.ACTIVE
    if at < end:
        if cancelled:
            return Status.CANCELLED
        last_paid = max(p.start for p in facts.periods)
        failed = facts.failed_at is not None and last_paid < facts.failed_at <= at
        return Status.PAST_DUE if failed else Status.ACTIVE
    if not cancelled and at < end + timedelta(days=plan.grace_days):
        return Status.PAST_DUE
    return Status.EXPIRED


def paid_until(periods: tuple[Period, ...]) -> datetime | None:
    """The end of the last paid period (None: lifetime, or never paid)."""
    if any(p.end is None for p in periods):
        return None
    ends = [p.end for p in periods if p.end is not None]
    return max(ends) if ends else None


def perks_end(plan: PlanDef, end: datetime | None) -> datetime | None:
    """When the perks of a membership paid up to ``end`` switch off (grace included)."""
    return None if end is None else end + timedelta(days=plan.grace_days)


def implied_rules(plans: list[PlanDef]) -> list[Rule]:
    """A plan's earn multiplier as a rule that only matches its members: the rule engine then
    explains it like any other multiplier ("Plus members earn x2")."""
    return [
        Rule(
            key=f"membership-{plan.key}",
            name=f"{plan.name} members earn x{plan.perks.earn_multiplier.normalize():f}",
            when=When(memberships=[plan.key]),
            effect=Multiplier(type="multiplier", factor=plan.perks.earn_multiplier),
        )
        for plan in plans
        if plan.perks.earn_multiplier is not None
    ]
