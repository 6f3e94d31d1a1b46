"""Campaign mechanics beyond the rules: the pure part (programme document section, decisions).

Bonus points on dates, weekdays and hours are earning rules (``treu.rules``); what is here gives
something on an *occasion*: joining, joining early, the anniversary of joining, the Nth visit
or visit-week, or a lucky purchase.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gift(_Data):
    """What an occasion gives: a voucher of ``reward`` (a reward key), points, or both."""

    reward: str | None = Field(default=None, min_length=1, max_length=64)
    points: int | None = Field(default=None, gt=0, le=10_000_000)
    name: str | None = Field(default=None, max_length=200, description="shown in explanations")

    @model_validator(mode="after")
    def _gives_something(self) -> Gift:
        if self.reward is None and self.points is None:
            raise ValueError("a gift needs a reward, points or both")
        return self


class LaunchBonus(Gift):
    """For members who enrol from ``from_`` to ``until`` (programme-time dates, inclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: date = Field(alias="from")
    until: date

    @model_validator(mode="after")
    def _ordered(self) -> LaunchBonus:
        if self.until < self.from_:
            raise ValueError("launch_bonus: until is before from")
        return self


class Surprise(Gift):
    """Every ``every``-th visit-week (distinct ISO week in programme time with a purchase) or
    visit (purchase)."""

    every: int = Field(ge=1, le=1000)
    per: Literal["week", "visit"] = "week"


class RandomSurprise(Gift):
    """A purchase wins with ``probability``; at most ``budget`` wins per programme in total."""

    probability: Decimal = Field(gt=0, le=1)
    budget: int = Field(ge=1)


class CampaignSettings(BaseModel):
    """Welcome gift, launch bonus, anniversary and surprise-and-delight awards."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    welcome: Gift | None = None
    launch_bonus: LaunchBonus | None = None
    anniversary: Gift | None = None
    surprise: Surprise | None = None
    random_surprise: RandomSurprise | None = None

    def reward_keys(self) -> list[tuple[str, str]]:
        """(field path, reward key) of every voucher these campaigns give (cross-checks)."""
        gifts = {
            "welcome": self.welcome,
            "launch_bonus": self.launch_bonus,
            "anniversary": self.anniversary,
            "surprise": self.surprise,
            "random_surprise": self.random_surprise,
        }
        return [(f"campaigns.{k}.reward", g.reward) for k, g in gifts.items() if g and g.reward]


# --- decisions ------------------------------------------------------------------------------


def in_launch_window(bonus: LaunchBonus, enrolled_on: date) -> bool:
    return bonus.from_ <= enrolled_on <= bonus.until


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def is_anniversary(enrolled_on: date, day: date) -> bool:
    """``day`` is a whole number of years (>= 1) after joining; 29 February joiners celebrate on
    28 February in other years."""
    if day.year <= enrolled_on.year:
        return False
    try:
        due = enrolled_on.replace(year=day.year)
    except ValueError:  # 29 February in a common year
        due = date(day.year, 2, 28)
    return due == day


def lucky(member_id: str, activity_id: str, probability: Decimal) -> bool:
    """A reproducible draw for one purchase: the same member and activity always draw the same
    number (a retry or a test run never changes the outcome), and nobody can pick it."""
    digest = hashlib.sha256(f"{member_id}:{activity_id}".encode()).digest()
    draw = Decimal(int.from_bytes(digest[:8], "big")) / Decimal(2**64)
    return draw < probability


def gift_name(gift: Gift, fallback: str) -> str:
    return gift.name or fallback
