"""Donations: the pure part (programme document section, the step rule, the report period).

A charity is listed in the programme document's ``charities``; the *rate* is a reward of kind
``donation`` in the catalogue (``charity``, ``points_per_step``, ``amount_per_step``), so the
member sees donating next to the other ways to redeem, and the catalogue stays the one place
where a point's worth is written down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from treu.errors import ErrorCode, InvalidInput
from treu.money import exponent


class CharityDef(BaseModel):
    """A charity members can donate to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    wallet: bool = Field(
        default=False, description="takes donations of wallet money, such as round-ups"
    )


@dataclass(frozen=True)
class DonationRate:
    """``points_per_step`` points give ``amount_per_step_minor`` to the charity."""

    charity: str
    points_per_step: int
    amount_per_step_minor: int


def donation_amount(rate: DonationRate, points: int) -> int:
    """The money (minor units) ``points`` give; only whole steps can be donated.

    Refused rather than rounded: silently donating 0 of 300 points, or keeping the remainder,
    would surprise the member either way."""
    if points <= 0 or points % rate.points_per_step:
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT,
            f"donations go in steps of {rate.points_per_step} points, {points} is not one",
            errors=[{"path": "points", "message": f"must be a multiple of {rate.points_per_step}"}],
        )
    return points // rate.points_per_step * rate.amount_per_step_minor


def round_up_minor(total_minor: int, currency: str) -> int:
    """What rounds a purchase total up to the next whole unit of money (23.40 -> 0.60).

    A whole total has nothing to round up: refused, as a donation of 0 would be."""
    step = 10 ** exponent(currency)
    up: int = -total_minor % step
    if total_minor <= 0 or up == 0:
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT,
            "a whole amount has nothing to round up",
            errors=[{"path": "round_up_of", "message": "must have cents to round up"}],
        )
    return up


def check_period(start: date | None, end: date | None) -> None:
    """A report period is ``[start, end)`` in programme days; an empty or reversed one is a
    mistake worth saying so."""
    if start is not None and end is not None and end <= start:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "the report period ends before it starts",
            errors=[{"path": "to", "message": "must be after from"}],
        )
