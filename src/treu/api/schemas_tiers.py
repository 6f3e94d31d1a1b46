"""Tiers over HTTP: a member's tier and progress, the tier history, a manual override."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from treu.tiers.model import Metric, TierDef
from treu.tiers.service import TierChange, TierStatus


class TierSummaryRead(BaseModel):
    """The tier as a till shows it after a scan."""

    key: str
    name: str
    perks: list[str] = Field(description="shown at look-up, e.g. free_shipping")

    @classmethod
    def of(cls, tier: TierDef) -> TierSummaryRead:
        return cls(key=tier.key, name=tier.name, perks=list(tier.perks))


class TierStatusRead(BaseModel):
    object: Literal["member_tier"] = "member_tier"
    member_id: str
    tier: TierSummaryRead
    since: datetime | None = Field(description="when the member reached it (none: from the start)")
    overridden: bool = Field(description="set by hand by staff")
    override_reason: str | None
    metric: str = Field(description="points_earned, spend or visits")
    period_start: date | None = Field(description="first day of the running period (local)")
    period_end: date | None = Field(description="the day after its last day (local)")
    value: Decimal = Field(description="the metric so far in the period (money for spend)")
    next_tier: TierSummaryRead | None
    missing: Decimal | None = Field(description="what the next tier still needs")

    @classmethod
    def of(cls, s: TierStatus, metric: Metric, exponent: int) -> TierStatusRead:
        def amount(units: int) -> Decimal:
            return Decimal(units).scaleb(-exponent) if metric is Metric.SPEND else Decimal(units)

        return cls(
            member_id=s.member_id,
            tier=TierSummaryRead.of(s.tier),
            since=s.since,
            overridden=s.overridden,
            override_reason=s.override_reason,
            metric=metric.value,
            period_start=s.window.start,
            period_end=s.window.end,
            value=amount(s.value),
            next_tier=None if s.next is None else TierSummaryRead.of(s.next),
            missing=None if s.missing is None else amount(s.missing),
        )


class TierChangeRead(BaseModel):
    object: Literal["tier_change"] = "tier_change"
    id: str
    member_id: str
    from_tier: str | None
    to_tier: str
    at: datetime = Field(description="when the change took effect")
    reason: str = Field(description="upgrade, downgrade, override or initial")
    explanation: str
    activity_id: str | None = Field(description="the activity that brought an upgrade")
    job_date: date | None = Field(description="the nightly run that made the change")
    actor: str | None = Field(description="who made an override")

    @classmethod
    def of(cls, c: TierChange) -> TierChangeRead:
        return cls(
            id=c.id,
            member_id=c.member_id,
            from_tier=c.from_tier,
            to_tier=c.to_tier,
            at=c.at,
            reason=c.reason,
            explanation=c.explanation,
            activity_id=c.activity_id,
            job_date=c.job_date,
            actor=c.actor,
        )


class TierOverrideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: str = Field(min_length=1, max_length=64, description="tier key")
    # Not min_length=1: an empty reason is refused by the service with ``reason_required``.
    reason: str = Field(default="", max_length=500, description="why, for the audit trail")
