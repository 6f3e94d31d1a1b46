"""The KPIs of a period: what is counted, and every KPI as a formula on the counts (pure).

A :class:`KpiSet` holds the *counted facts* of one period and one scope (the programme, a store,
a tier or a segment): whole numbers of members, purchases, minor units and points. Every KPI is
a property computed from them exactly — rates are ``Fraction``s, money is ``Decimal`` — and
rounded only by :func:`display` (docs/kpis.md has each formula with a worked example). A fact a
scope cannot know (the ledger of one store) is ``None``, and so is every KPI that needs it; a
rate over nothing (no purchases) is ``None`` too, never 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any, Literal

from treu.money import exponent, from_minor

Kind = Literal["count", "points", "money", "rate", "ratio"]


def ratio(numerator: int | Fraction | None, denominator: int | Fraction | None) -> Fraction | None:
    """``numerator / denominator`` exactly; None if either is unknown or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return Fraction(numerator) / Fraction(denominator)


def to_decimal(value: Fraction, places: int) -> Decimal:
    """An exact fraction as a Decimal rounded half-even to ``places`` decimals."""
    quantum = Decimal(1).scaleb(-places)
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        quantum, rounding=ROUND_HALF_EVEN
    )


@dataclass(frozen=True)
class KpiSet:
    """The counted facts of one period ``[first, end)`` (programme days) in one scope."""

    scope: str  # "programme", "store:<key>", "tier:<key>", "segment:<key>"
    period: str  # the period's label: 2026-03, 2026-Q1, 2026-W10 …
    first: date
    end: date
    currency: str
    point_value: Decimal  # money per point (the programme document in force at the end)
    # members
    members: int  # enrolled before the end, not merged into another member
    enrolments: int  # enrolled in the period
    # purchases (activities of type purchase; a claimed receipt counts as the member's)
    purchases: int
    member_purchases: int
    revenue_minor: int  # what customers paid, before returns
    member_revenue_minor: int
    returns_minor: int  # money given back by returns made in the period
    active_members: int  # members with at least one purchase in the period
    repeat_members: int  # members with at least two purchases in the period
    previous_active: int  # members active in the period before (same unit)
    retained_members: int  # active in the period before and in this one
    # points (the ledger; None where the scope cannot know, e.g. per store)
    points_earned: int | None
    points_adjusted_in: int | None
    points_reversed: int | None
    points_adjusted_out: int | None
    points_redeemed: int | None  # captured minus restored (cancelled redemptions)
    points_expired: int | None
    points_donated: int | None
    outstanding_points: int | None  # in members' accounts at the end (available … debt)
    wallet_outstanding_minor: int | None  # members' wallets and gift cards at the end
    # programme cost and revenue beyond purchases
    cashback_minor: int | None
    credit_minor: int | None  # store credit given, dividends not included
    dividends_minor: int | None
    donations_minor: int | None  # money owed to charities for donated points
    membership_fees_minor: int | None
    referrals_made: int | None
    referrals_converted: int | None

    # --- purchases ---------------------------------------------------------------------

    @property
    def guest_purchases(self) -> int:
        return self.purchases - self.member_purchases

    @property
    def guest_revenue_minor(self) -> int:
        return self.revenue_minor - self.member_revenue_minor

    @property
    def net_revenue_minor(self) -> int:
        return self.revenue_minor - self.returns_minor

    @property
    def enrolment_rate(self) -> Fraction | None:
        """Share of purchases made by members."""
        return ratio(self.member_purchases, self.purchases)

    @property
    def active_member_rate(self) -> Fraction | None:
        return ratio(self.active_members, self.members)

    @property
    def repeat_purchase_rate(self) -> Fraction | None:
        return ratio(self.repeat_members, self.active_members)

    @property
    def purchase_frequency(self) -> Fraction | None:
        """Purchases per active member."""
        return ratio(self.member_purchases, self.active_members)

    @property
    def aov_members_minor(self) -> Fraction | None:
        return ratio(self.member_revenue_minor, self.member_purchases)

    @property
    def aov_guests_minor(self) -> Fraction | None:
        return ratio(self.guest_revenue_minor, self.guest_purchases)

    @property
    def member_revenue_share(self) -> Fraction | None:
        return ratio(self.member_revenue_minor, self.revenue_minor)

    @property
    def retention_rate(self) -> Fraction | None:
        return ratio(self.retained_members, self.previous_active)

    @property
    def churn_rate(self) -> Fraction | None:
        kept = self.retention_rate
        return None if kept is None else 1 - kept

    # --- points ------------------------------------------------------------------------

    @property
    def points_issued(self) -> int | None:
        return _sum(self.points_earned, self.points_adjusted_in)

    @property
    def points_taken_back(self) -> int | None:
        return _sum(self.points_reversed, self.points_adjusted_out)

    @property
    def redemption_rate(self) -> Fraction | None:
        return ratio(self.points_redeemed, self.points_issued)

    @property
    def breakage_rate(self) -> Fraction | None:
        """Of the points that left members for good (redeemed, donated, expired): expired."""
        gone = _sum(self.points_redeemed, self.points_expired, self.points_donated)
        return ratio(self.points_expired, gone)

    @property
    def liability(self) -> Decimal | None:
        """Outstanding points at their value, plus the money in wallets and gift cards."""
        if self.outstanding_points is None or self.wallet_outstanding_minor is None:
            return None
        return self.outstanding_points * self.point_value + self._money(
            self.wallet_outstanding_minor
        )

    # --- cost and revenue ----------------------------------------------------------------

    @property
    def rewards_cost(self) -> Decimal | None:
        return None if self.points_redeemed is None else self.points_redeemed * self.point_value

    @property
    def programme_cost(self) -> Decimal | None:
        """Rewards (redeemed points at their value), cashback, store credit, dividends and
        donations of the period."""
        parts = (
            self.cashback_minor,
            self.credit_minor,
            self.dividends_minor,
            self.donations_minor,
        )
        rewards = self.rewards_cost
        if rewards is None or any(p is None for p in parts):
            return None
        return rewards + self._money(sum(p for p in parts if p is not None))

    @property
    def incremental_revenue(self) -> Decimal | None:
        """What members spent beyond the same number of purchases at the guests' average order:
        ``member purchases × (AOV members − AOV guests)``. A comparison, not proof of cause —
        the uplift against a control group is (docs/analytics.md)."""
        members, guests = self.aov_members_minor, self.aov_guests_minor
        if members is None or guests is None:
            return None
        return self._money_exact(self.member_purchases * (members - guests))

    @property
    def return_on_cost(self) -> Fraction | None:
        revenue, cost = self.incremental_revenue, self.programme_cost
        if revenue is None or cost is None or cost == 0:
            return None
        return Fraction(revenue) / Fraction(cost)

    @property
    def membership_fee_revenue(self) -> Decimal | None:
        fees = self.membership_fees_minor
        return None if fees is None else self._money(fees)

    # --- output --------------------------------------------------------------------------

    def _money(self, minor: int) -> Decimal:
        return from_minor(minor, self.currency)

    def _money_exact(self, minor: Fraction) -> Decimal:
        return to_decimal(minor / 10 ** exponent(self.currency), exponent(self.currency) + 2)

    def value(self, name: str) -> Any:
        """A KPI by name (``KPIS``): money in minor-unit fields as Decimal, rates exact."""
        kind = KIND[name]
        raw = getattr(self, SOURCE.get(name, name))
        if kind == "money" and isinstance(raw, int):
            return self._money(raw)
        if kind == "money" and isinstance(raw, Fraction):
            return self._money_exact(raw)
        return raw

    def display(self, name: str) -> str:
        """The KPI as a person reads it: rates in percent with one decimal, money with the
        currency's decimals, ``–`` where it cannot be computed."""
        value = self.value(name)
        if value is None:
            return "–"
        kind = KIND[name]
        if kind == "rate":
            return f"{to_decimal(value * 100, 1)} %"
        if kind == "ratio":
            return str(to_decimal(value, 2))
        if kind == "money":
            return f"{Decimal(value).quantize(Decimal(1).scaleb(-exponent(self.currency)))}"
        return str(value)

    def as_row(self, places: int = 6) -> dict[str, Any]:
        """One flat row for JSON and CSV: counts as ints, money as Decimal strings, rates
        rounded to ``places`` decimals (the counts they come from are in the row too)."""
        row: dict[str, Any] = {
            "scope": self.scope,
            "period": self.period,
            "from": self.first.isoformat(),
            "to": self.end.isoformat(),
            "currency": self.currency,
        }
        for name in KPIS:
            value = self.value(name)
            if isinstance(value, Fraction):
                value = str(to_decimal(value, places))
            elif isinstance(value, Decimal):
                value = str(value)
            row[name] = value
        return row

    def counts(self) -> dict[str, Any]:
        data = asdict(self)
        data["first"], data["end"] = self.first.isoformat(), self.end.isoformat()
        data["point_value"] = str(self.point_value)
        return data


def _sum(*parts: int | None) -> int | None:
    if any(p is None for p in parts):
        return None
    return sum(p for p in parts if p is not None)


# Every KPI in reading order, with its kind; the names are the JSON/CSV columns.
KPIS: dict[str, Kind] = {
    "members": "count",
    "enrolments": "count",
    "purchases": "count",
    "member_purchases": "count",
    "guest_purchases": "count",
    "enrolment_rate": "rate",
    "active_members": "count",
    "active_member_rate": "rate",
    "repeat_purchase_rate": "rate",
    "purchase_frequency": "ratio",
    "revenue": "money",
    "member_revenue": "money",
    "net_revenue": "money",
    "aov_members": "money",
    "aov_guests": "money",
    "member_revenue_share": "rate",
    "retention_rate": "rate",
    "churn_rate": "rate",
    "points_issued": "points",
    "points_taken_back": "points",
    "points_redeemed": "points",
    "points_expired": "points",
    "points_donated": "points",
    "redemption_rate": "rate",
    "breakage_rate": "rate",
    "outstanding_points": "points",
    "liability": "money",
    "rewards_cost": "money",
    "programme_cost": "money",
    "incremental_revenue": "money",
    "return_on_cost": "ratio",
    "membership_fee_revenue": "money",
    "referrals_made": "count",
    "referrals_converted": "count",
}
KIND = KPIS
# KPIs whose value is a field or property of another name
SOURCE = {
    "revenue": "revenue_minor",
    "member_revenue": "member_revenue_minor",
    "net_revenue": "net_revenue_minor",
    "aov_members": "aov_members_minor",
    "aov_guests": "aov_guests_minor",
}
# The dashboard: the KPIs `treu kpi` shows unless asked for all.
DASHBOARD = (
    "members",
    "enrolments",
    "enrolment_rate",
    "active_member_rate",
    "repeat_purchase_rate",
    "purchase_frequency",
    "aov_members",
    "aov_guests",
    "member_revenue_share",
    "retention_rate",
    "points_issued",
    "points_redeemed",
    "redemption_rate",
    "breakage_rate",
    "liability",
    "programme_cost",
    "incremental_revenue",
    "membership_fee_revenue",
)
FACT_FIELDS = tuple(f.name for f in fields(KpiSet))
