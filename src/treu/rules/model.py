"""The rule engine: rules are data, evaluated by a pure function.

A :class:`Rule` is a condition (:class:`When`) and an effect (:class:`Effect`), with a priority,
a stacking policy and caps. :func:`evaluate` takes a rule set and an :class:`EarnContext` (the
activity, what we know about the member, what the caps have already used) and returns the
:class:`Award` list: how many points each rule gives, and a sentence that explains why. It reads no
clock and no database, so the same function serves real earning, "what would this basket earn?"
simulation, returns (recomputed on the net basket) and the later "what if?" replay.

Evaluation, in order:

1. Rules are sorted by priority (highest first, then by key). A rule whose conditions do not hold
   is skipped. A matching rule with ``stacking: exclusive`` stops the evaluation of every rule of
   lower priority.
2. ``per_amount`` and ``fixed`` effects produce *base* awards. ``per_amount`` earns ``points`` per
   ``per`` of the earning base of the lines the rule selects (see ``treu.activities.model``).
3. ``multiplier`` effects add ``(factor - 1) x`` the base points of the lines they select.
4. ``bonus`` effects add fixed points that no multiplier touches.
5. Caps, on each rule's exact ``Fraction`` of points: per activity, then per member per
   day/week/month (programme time) or lifetime, then per action target, then the campaign
   budget; each cap cuts the award and says
   so in the explanation. A multiplier multiplies the base points as capped.
6. Rounding (programme policy, floor by default) happens once per activity, on the sum of the
   exact points: 6.80 EUR at 1 point per euro with a x2 multiplier earns 13, not 6 + 6. Each
   rule's award is its exact points rounded down, and the points the remainders add up to go to
   the largest remainders; a sub-point remainder is never carried into another activity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from treu.activities.model import Basket, Line


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEKDAYS = list(Weekday)


class Rounding(StrEnum):
    FLOOR = "floor"
    HALF_UP = "half_up"
    CEIL = "ceil"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    LIFETIME = "lifetime"  # since the member enrolled


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ItemFilter(_Data):
    skus: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)

    def matches(self, line: Line) -> bool:
        return (
            (line.sku is not None and line.sku in self.skus)
            or (line.category is not None and line.category in self.categories)
            or (line.brand is not None and line.brand in self.brands)
        )

    @property
    def empty(self) -> bool:
        return not (self.skus or self.categories or self.brands)


class Hours(_Data):
    start: time = Field(alias="from")
    end: time = Field(alias="to")

    def contains(self, at: time) -> bool:
        if self.start <= self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end  # window across midnight


class When(_Data):
    """Conditions; all given ones must hold. Dates and hours are in programme time."""

    activity: Literal["purchase", "action"] = "purchase"
    action_types: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    stores: list[str] = Field(default_factory=list)
    valid_from: date | None = None
    valid_until: date | None = None  # inclusive
    weekdays: list[Weekday] = Field(default_factory=list)
    hours: Hours | None = None
    min_spend: Decimal | None = Field(default=None, ge=0)
    include: ItemFilter = Field(default_factory=ItemFilter)
    exclude: ItemFilter = Field(default_factory=ItemFilter)
    first_purchase: bool | None = None
    member_attributes: dict[str, str | int | bool] = Field(default_factory=dict)
    # A rule that names tiers, membership plans or segments only matches members in one of them.
    tiers: list[str] = Field(default_factory=list)
    memberships: list[str] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _dates_in_order(self) -> When:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


class PerAmount(_Data):
    type: Literal["per_amount"]
    points: int = Field(gt=0, le=1_000_000)
    per: Decimal = Field(default=Decimal("1"), gt=0)


class Fixed(_Data):
    type: Literal["fixed"]
    points: int = Field(gt=0, le=10_000_000)


class Multiplier(_Data):
    type: Literal["multiplier"]
    factor: Decimal = Field(gt=1, le=100)


class Bonus(_Data):
    type: Literal["bonus"]
    points: int = Field(gt=0, le=10_000_000)


Effect = Annotated[PerAmount | Fixed | Multiplier | Bonus, Field(discriminator="type")]


class Caps(_Data):
    per_activity: int | None = Field(default=None, gt=0)
    per_member: dict[Period, int] = Field(default_factory=dict)
    # points per member for actions on one ``target`` (the product reviewed, the store checked
    # into): reviewing the same product twice earns once
    per_target: int | None = Field(default=None, gt=0)
    budget: int | None = Field(default=None, gt=0)


class Rule(_Data):
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    when: When = Field(default_factory=When)
    effect: Effect
    priority: int = 0
    stacking: Literal["stack", "exclusive"] = "stack"
    caps: Caps = Field(default_factory=Caps)

    @model_validator(mode="after")
    def _effect_fits_activity(self) -> Rule:
        if self.when.activity == "action" and not isinstance(self.effect, Fixed | Bonus):
            raise ValueError("rules on actions give fixed or bonus points")
        return self


@dataclass(frozen=True)
class MemberFacts:
    """What the engine may know about the member; ``None`` for a purchase without a member."""

    attributes: dict[str, object] = field(default_factory=dict)
    is_first_purchase: bool = False
    tier: str | None = None
    memberships: frozenset[str] = frozenset()  # keys of the active membership plans
    segments: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EarnContext:
    activity: Literal["purchase", "action"]
    local_time: datetime  # the activity's time in programme time (naive wall clock)
    basket: Basket | None = None
    action_type: str | None = None
    channel: str | None = None
    store: str | None = None
    member: MemberFacts = field(default_factory=MemberFacts)
    # points already given per (rule key, period) for the member and per rule budget
    used_per_member: dict[tuple[str, Period], int] = field(default_factory=dict)
    target: str | None = None  # what an action was about (see Caps.per_target)
    used_per_target: dict[str, int] = field(default_factory=dict)  # rule key -> points
    budget_left: dict[str, int] = field(default_factory=dict)
    rounding: Rounding = Rounding.FLOOR


@dataclass(frozen=True)
class Award:
    rule_key: str
    rule_name: str
    points: int
    explanation: str


def evaluate(rules: list[Rule], ctx: EarnContext) -> list[Award]:
    line_points: dict[str, dict[int, Fraction]] = {}  # per_amount rule -> line -> exact points
    base_rules: list[tuple[Rule, Fraction, str]] = []
    multipliers: list[tuple[Rule, Fraction, str]] = []
    bonuses: list[tuple[Rule, Fraction, str]] = []
    stop_below: int | None = None  # priority of a matching exclusive rule
    for rule in sorted(rules, key=lambda r: (-r.priority, r.key)):
        if stop_below is not None and rule.priority < stop_below:
            break
        if not _matches(rule.when, ctx):
            continue
        effect = rule.effect
        if isinstance(effect, PerAmount):
            assert ctx.basket is not None
            per_line, why = _per_amount(rule, effect, ctx.basket)
            line_points[rule.key] = per_line
            base_rules.append((rule, sum(per_line.values(), Fraction(0)), why))
        elif isinstance(effect, Fixed):
            base_rules.append((rule, Fraction(effect.points), f"{effect.points} points"))
        elif isinstance(effect, Multiplier):
            multipliers.append((rule, Fraction(effect.factor), f"x{effect.factor}"))
        else:
            bonuses.append((rule, Fraction(effect.points), f"bonus {effect.points} points"))
        if rule.stacking == "exclusive":
            stop_below = rule.priority
    drafts = [_capped(rule, exact, why, ctx) for rule, exact, why in base_rules]
    base_drafts = list(drafts)
    for rule, factor, why in multipliers:
        selected = _select_lines(rule.when, ctx.basket)
        base = sum((_base_on(d, selected, line_points) for d in base_drafts), Fraction(0))
        extra = base * (factor - 1)
        drafts.append(_capped(rule, extra, f"{why} on {_fmt(base)} base points", ctx))
    drafts.extend(_capped(rule, points, why, ctx) for rule, points, why in bonuses)
    return [a for a in _round_activity(drafts, ctx.rounding) if a.points > 0]


def total_points(awards: list[Award]) -> int:
    return sum(a.points for a in awards)


def limits_reached(rules: list[Rule], ctx: EarnContext) -> list[str]:
    """The keys of the matching rules whose per-member limits (per period, lifetime, per
    target) leave nothing to earn; all of them when the activity can earn nothing because of
    its member's limits, which is how an action farmed in a loop is recognised and refused.
    Empty if any matching rule can still give points (or none matches)."""
    matching = [r for r in rules if _matches(r.when, ctx)]
    spent = [r.key for r in matching if _member_limit_left(r, ctx) == 0]
    return spent if matching and len(spent) == len(matching) else []


def _member_limit_left(rule: Rule, ctx: EarnContext) -> int | None:
    lefts = [
        limit - ctx.used_per_member.get((rule.key, period), 0)
        for period, limit in rule.caps.per_member.items()
    ]
    if rule.caps.per_target is not None and ctx.target is not None:
        lefts.append(rule.caps.per_target - ctx.used_per_target.get(rule.key, 0))
    return max(0, min(lefts)) if lefts else None


@dataclass(frozen=True)
class _Draft:
    """A rule's exact (not yet rounded) points after its caps."""

    rule: Rule
    uncapped: Fraction
    exact: Fraction
    why: str
    notes: tuple[str, ...]


def _per_amount(rule: Rule, effect: PerAmount, basket: Basket) -> tuple[dict[int, Fraction], str]:
    selected = _select_lines(rule.when, basket)
    per_minor = Fraction(effect.per) * 10**basket.exponent
    per_line = {
        i: Fraction(basket.lines[i].base_minor) / per_minor * effect.points for i in selected
    }
    amount = basket.format(sum(basket.lines[i].base_minor for i in selected))
    return per_line, f"{effect.points} per {effect.per} {basket.currency} on {amount}"


def _base_on(
    draft: _Draft, lines: list[int], line_points: dict[str, dict[int, Fraction]]
) -> Fraction:
    """The base points ``draft`` gives on ``lines``, after its caps (a capped base rule is
    multiplied as far as it was given, not as far as it would have been)."""
    if isinstance(draft.rule.effect, Fixed):
        return draft.exact
    if draft.uncapped == 0:
        return Fraction(0)
    per_line = line_points.get(draft.rule.key, {})
    on_lines = sum((per_line.get(i, Fraction(0)) for i in lines), Fraction(0))
    return on_lines * draft.exact / draft.uncapped


def _capped(rule: Rule, exact: Fraction, why: str, ctx: EarnContext) -> _Draft:
    """Caps: per activity, then per member per day/week/month, then the campaign budget; each
    cut is named in the explanation."""
    capped = exact
    notes: list[str] = []
    caps = rule.caps
    if caps.per_activity is not None and capped > caps.per_activity:
        capped = Fraction(caps.per_activity)
        notes.append(f"capped at {caps.per_activity} per activity")
    for period, limit in caps.per_member.items():
        left = max(0, limit - ctx.used_per_member.get((rule.key, period), 0))
        if capped > left:
            capped = Fraction(left)
            notes.append(f"capped at {limit} per {period.value}")
    if caps.per_target is not None and ctx.target is not None:
        left = max(0, caps.per_target - ctx.used_per_target.get(rule.key, 0))
        if capped > left:
            capped = Fraction(left)
            notes.append(f"capped at {caps.per_target} per {ctx.target}")
    if caps.budget is not None:
        left = max(0, ctx.budget_left.get(rule.key, caps.budget))
        if capped > left:
            capped = Fraction(left)
            notes.append("campaign budget used up")
    return _Draft(rule, exact, capped, why, tuple(notes))


def _round_activity(drafts: list[_Draft], mode: Rounding) -> list[Award]:
    """Round once per activity: the activity earns ``round(sum of exact points)``, shared out so
    that each rule gets its exact points rounded down plus, largest remainder first, one of the
    points the remainders add up to. Caps hold (a capped rule's points are whole already)."""
    total = _round(sum((d.exact for d in drafts), Fraction(0)), mode)
    points = [math.floor(d.exact) for d in drafts]
    left = total - sum(points)
    by_remainder = sorted(range(len(drafts)), key=lambda i: -(drafts[i].exact - points[i]))
    for i in by_remainder[:left]:
        points[i] += 1
    awards = []
    for draft, given in zip(drafts, points, strict=True):
        text = f"{draft.rule.name}: {draft.why} = {given} points"
        notes = list(draft.notes)
        if given > draft.exact:
            notes.append(f"{_fmt(draft.exact)} exactly, the activity's remainders make one more")
        if notes:
            text += " (" + "; ".join(notes) + ")"
        awards.append(Award(draft.rule.key, draft.rule.name, given, text))
    return awards


def _round(exact: Fraction, mode: Rounding) -> int:
    if mode is Rounding.FLOOR:
        return math.floor(exact)
    if mode is Rounding.CEIL:
        return math.ceil(exact)
    return math.floor(exact + Fraction(1, 2))


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.2f}"


def _matches(when: When, ctx: EarnContext) -> bool:
    if when.activity != ctx.activity:
        return False
    if when.action_types and ctx.action_type not in when.action_types:
        return False
    if when.channels and ctx.channel not in when.channels:
        return False
    if when.stores and ctx.store not in when.stores:
        return False
    day = ctx.local_time.date()
    if when.valid_from and day < when.valid_from:
        return False
    if when.valid_until and day > when.valid_until:
        return False
    if when.weekdays and WEEKDAYS[day.weekday()] not in when.weekdays:
        return False
    if when.hours and not when.hours.contains(ctx.local_time.time()):
        return False
    if when.first_purchase is not None and when.first_purchase != ctx.member.is_first_purchase:
        return False
    for key, value in when.member_attributes.items():
        if ctx.member.attributes.get(key) != value:
            return False
    if when.tiers and ctx.member.tier not in when.tiers:
        return False
    if when.memberships and not ctx.member.memberships.intersection(when.memberships):
        return False
    if when.segments and not ctx.member.segments.intersection(when.segments):
        return False
    if ctx.activity == "purchase":
        assert ctx.basket is not None
        selected = _select_lines(when, ctx.basket)
        if not selected:
            return False
        if when.min_spend is not None:
            spent = sum(ctx.basket.lines[i].base_minor for i in selected)
            if spent < when.min_spend.scaleb(ctx.basket.exponent):
                return False
    return True


def _select_lines(when: When, basket: Basket | None) -> list[int]:
    if basket is None:
        return []
    return [
        i
        for i, line in enumerate(basket.lines)
        if line.quantity > 0  # 0: returned in full
        and (when.include.empty or when.include.matches(line))
        and not when.exclude.matches(line)
    ]
