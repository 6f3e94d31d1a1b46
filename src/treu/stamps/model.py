"""Stamp cards: the pure part (programme document section, decisions).

A card definition says what earns a stamp (a visit with a minimum spend, or each unit of some
products), how many stamps fill a card, and which reward a full card gives. The decisions here
take everything as arguments — the basket, the stamps already given today, the card's count — so
the same functions serve purchases, returns (recomputed on what is left of the basket) and tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from treu.activities.model import Basket, Line
from treu.money import format_money, to_minor
from treu.rules.model import ItemFilter


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PerVisit(_Data):
    """One stamp per purchase, if it (or its ``items`` lines, when given) reaches ``min_spend``."""

    type: Literal["per_visit"] = "per_visit"
    min_spend: Decimal | None = Field(default=None, ge=0)
    items: ItemFilter = Field(default_factory=ItemFilter)


class PerUnit(_Data):
    """One stamp per unit of every line ``items`` selects (2 × Cappuccino: 2 stamps)."""

    type: Literal["per_unit"] = "per_unit"
    items: ItemFilter

    @model_validator(mode="after")
    def _selects_something(self) -> PerUnit:
        if self.items.empty:
            raise ValueError("per_unit stamps need items: skus, categories or brands")
        return self


Earn = Annotated[PerVisit | PerUnit, Field(discriminator="type")]


class StampCaps(_Data):
    max_per_day: int | None = Field(default=None, ge=1, description="per programme-time day")
    max_per_activity: int | None = Field(default=None, ge=1)


class StampCardDef(BaseModel):
    """One stamp card type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    stamps_needed: int = Field(le=1000)
    earn: Earn
    caps: StampCaps = Field(default_factory=StampCaps)
    reward: str = Field(min_length=1, max_length=64, description="reward key of the voucher")
    carry_over: bool = True
    expires_after_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="an incomplete card expires this long after its first stamp",
    )
    on_return: Literal["cancel_voucher", "keep_voucher"] = "cancel_voucher"

    @field_validator("stamps_needed")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        # Said in words: "greater than or equal to 1" does not tell a shop what went wrong.
        if value < 1:
            raise ValueError(f"a stamp card needs at least 1 stamp to be complete, not {value}")
        return value


# --- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StampDecision:
    """How many stamps a basket earns on one card, and the sentence that says why.

    ``units``: for per-unit cards, line index -> (units counted, paid minor units of the line), so
    that a later return can tell how many of those units came back.
    """

    stamps: int
    explanation: str
    units: dict[int, tuple[int, int]] = field(default_factory=dict)


def describe(items: ItemFilter) -> str:
    """``Kaffee`` / ``KAFFEE-KLEIN or Kaffee``: what a filter selects, for explanations."""
    return " or ".join([*items.skus, *items.categories, *items.brands])


def _selected(items: ItemFilter, line: Line) -> bool:
    return items.empty or items.matches(line)


def stamps_for(
    card: StampCardDef,
    basket: Basket,
    *,
    stamped_today: int = 0,
    units_before: dict[int, tuple[int, int]] | None = None,
) -> StampDecision:
    """The stamps ``basket`` earns on ``card``.

    ``stamped_today``: stamps this card already gave the member today (the daily cap).
    ``units_before``: for a return, the units the purchase was stamped for; units count as
    returned only when their full price came back (a price correction keeps the stamp).
    """
    if isinstance(card.earn, PerUnit):
        due, units, why_not = _per_unit(card.earn, basket, units_before)
        counted = f"{sum(u for u, _ in units.values())} × {describe(card.earn.items)}"
    else:
        due, why_not = _per_visit(card.earn, basket)
        units, counted = {}, f"the visit ({format_money(basket.paid_minor, basket.currency)})"
    if due == 0:
        return StampDecision(0, f"{card.name}: {why_not}", units)
    notes = []
    if card.caps.max_per_activity is not None and due > card.caps.max_per_activity:
        due = card.caps.max_per_activity
        notes.append(f"at most {due} per purchase")
    if card.caps.max_per_day is not None:
        room = max(card.caps.max_per_day - stamped_today, 0)
        if room == 0:
            return StampDecision(0, f"{card.name}: already stamped today", units)
        if due > room:
            due = room
            notes.append(f"at most {card.caps.max_per_day} per day")
    noun = "stamp" if due == 1 else "stamps"
    capped = f" ({', '.join(notes)})" if notes else ""
    return StampDecision(due, f"{card.name}: {due} {noun} for {counted}{capped}", units)


def _per_visit(earn: PerVisit, basket: Basket) -> tuple[int, str]:
    lines = [line for line in basket.lines if _selected(earn.items, line) and line.quantity]
    if not earn.items.empty and not lines:
        return 0, f"no {describe(earn.items)} item"
    spent = sum(line.paid_minor for line in lines)
    if spent <= 0:
        return 0, "nothing paid"
    if earn.min_spend is not None:
        floor = to_minor(earn.min_spend, basket.currency, field="min_spend")
        if spent < floor:
            return 0, f"below minimum spend {format_money(floor, basket.currency)}"
    return 1, ""


def _per_unit(
    earn: PerUnit, basket: Basket, before: dict[int, tuple[int, int]] | None
) -> tuple[int, dict[int, tuple[int, int]], str]:
    units: dict[int, tuple[int, int]] = {}
    for i, line in enumerate(basket.lines):
        if not earn.items.matches(line) or line.paid_minor <= 0:
            continue
        if before is None:
            units[i] = (line.quantity, line.paid_minor)
        elif i in before:
            counted, paid = before[i]
            # ceil: a unit is returned only when its whole share of the price came back
            units[i] = (min(counted, math.ceil(counted * line.paid_minor / paid)), paid)
    due = sum(u for u, _ in units.values())
    return due, units, f"no {describe(earn.items)} item"


@dataclass(frozen=True)
class Fill:
    """A card with ``current`` stamps after ``earned`` more: ``completed`` full cards, ``left``
    stamps on the card that stays open, ``forfeited`` surplus (only without carry-over)."""

    completed: int
    left: int
    forfeited: int = 0


def fill(card: StampCardDef, current: int, earned: int) -> Fill:
    """12 stamps on an empty 10-card complete one card and leave 2 (carry-over), or complete
    one and forfeit 2 (no carry-over); 25 complete two and leave 5."""
    total = current + earned
    if total < card.stamps_needed:
        return Fill(0, total)
    if card.carry_over:
        return Fill(total // card.stamps_needed, total % card.stamps_needed)
    return Fill(1, 0, total - card.stamps_needed)


def almost_complete(card: StampCardDef, stamps: int) -> bool:
    """One stamp to go (a card of one stamp is never "almost" anything)."""
    return card.stamps_needed >= 2 and stamps == card.stamps_needed - 1
