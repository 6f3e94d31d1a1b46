"""Rewards (the catalogue) and vouchers (what a redemption produces) — the pure part."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from treu.errors import ErrorCode, Rejected

# No 0/O, 1/I/L: a code read aloud at the till or typed from a receipt must not be ambiguous.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12  # 31^12 ~ 2^59: guessing one of a million live codes takes ~2^39 tries


class RewardKind(StrEnum):
    FIXED_DISCOUNT = "fixed_discount"
    PERCENTAGE_DISCOUNT = "percentage_discount"
    FREE_PRODUCT = "free_product"
    FREE_SHIPPING = "free_shipping"
    EXPERIENCE = "experience"
    CUSTOM = "custom"
    DONATION = "donation"  # points turned into money for a charity (see treu.donations)


class VoucherStatus(StrEnum):
    ISSUED = "issued"
    USED = "used"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class RewardDef(BaseModel):
    """A catalogue item as written in the programme document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    kind: RewardKind
    cost: int | None = Field(
        default=None,
        gt=0,
        le=100_000_000,
        description="points; none: only given (welcome gift, full stamp card), never bought",
    )
    value: Decimal | None = Field(default=None, gt=0, description="money off (fixed_discount)")
    percent: Decimal | None = Field(default=None, gt=0, le=100)
    sku: str | None = Field(default=None, max_length=64, description="free_product")
    stock: int | None = Field(default=None, ge=0)
    per_member_limit: int | None = Field(default=None, gt=0)
    available_from: datetime | None = None
    available_until: datetime | None = None
    voucher_valid_days: int | None = Field(default=None, gt=0, le=3650)
    tiers: list[str] = Field(default_factory=list)
    min_tier: str | None = Field(default=None, description="this tier and the tiers above it")
    memberships: list[str] = Field(
        default_factory=list, description="only for members with one of these plans active"
    )
    segments: list[str] = Field(default_factory=list)
    active: bool = True
    description: str | None = Field(default=None, max_length=2000)
    # donation: ``points_per_step`` points give ``amount_per_step`` to ``charity``
    charity: str | None = Field(default=None, max_length=64, description="donation")
    points_per_step: int | None = Field(default=None, gt=0, le=100_000_000)
    amount_per_step: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _kind_has_its_fields(self) -> RewardDef:
        if self.kind is RewardKind.FIXED_DISCOUNT and self.value is None:
            raise ValueError("a fixed_discount reward needs a value")
        if self.kind is RewardKind.PERCENTAGE_DISCOUNT and self.percent is None:
            raise ValueError("a percentage_discount reward needs a percent")
        if self.kind is RewardKind.FREE_PRODUCT and self.sku is None:
            raise ValueError("a free_product reward needs a sku")
        if self.kind is RewardKind.DONATION:
            if None in (self.charity, self.points_per_step, self.amount_per_step):
                raise ValueError(
                    "a donation reward needs charity, points_per_step and amount_per_step"
                )
            if self.cost is not None:
                # Donations are bought by the step through /donations, never as a voucher.
                raise ValueError("a donation reward has points_per_step, not a cost")
        elif (self.charity, self.points_per_step, self.amount_per_step) != (None, None, None):
            raise ValueError("charity, points_per_step and amount_per_step are for donations")
        for name in ("available_from", "available_until"):
            at = getattr(self, name)
            if at is not None and at.tzinfo is None:
                raise ValueError(f"{name} needs a timezone offset")
        return self


@dataclass(frozen=True)
class RewardState:
    """A reward as stored: the definition's fields that matter for a redemption, and stock."""

    id: str
    key: str
    name: str
    cost: int | None
    active: bool
    stock: int | None
    per_member_limit: int | None
    available_from: datetime | None
    available_until: datetime | None
    tiers: tuple[str, ...]
    segments: tuple[str, ...]
    min_tier: str | None = None
    memberships: tuple[str, ...] = ()


def check_redeemable(
    reward: RewardState,
    *,
    now: datetime,
    redeemed_by_member: int,
    member_tier: str | None,
    member_segments: frozenset[str],
    tier_order: tuple[str, ...] = (),
    member_plans: frozenset[str] = frozenset(),
) -> None:
    """Raise the reason a member cannot redeem ``reward`` now (stock and points are checked
    where they are guarded: in the conditional updates). ``tier_order``: the programme's tier
    keys, lowest first (for ``min_tier``)."""
    if reward.min_tier is not None and not _at_least(member_tier, reward.min_tier, tier_order):
        raise Rejected(
            ErrorCode.REWARD_NOT_ELIGIBLE, f"{reward.name} is for {reward.min_tier} and above"
        )
    if not reward.active:
        raise Rejected(ErrorCode.REWARD_UNAVAILABLE, f"{reward.name} is not offered any more")
    if reward.cost is None:
        raise Rejected(ErrorCode.REWARD_UNAVAILABLE, f"{reward.name} is given, not redeemed")
    if reward.available_from and now < reward.available_from:
        raise Rejected(ErrorCode.REWARD_UNAVAILABLE, f"{reward.name} is not available yet")
    if reward.available_until and now >= reward.available_until:
        raise Rejected(ErrorCode.REWARD_UNAVAILABLE, f"{reward.name} is no longer available")
    if reward.tiers and member_tier not in reward.tiers:
        raise Rejected(ErrorCode.REWARD_NOT_ELIGIBLE, f"{reward.name} is for other tiers")
    if reward.memberships and not member_plans.intersection(reward.memberships):
        raise Rejected(ErrorCode.REWARD_NOT_ELIGIBLE, f"{reward.name} is for members of a plan")
    if reward.segments and not member_segments.intersection(reward.segments):
        raise Rejected(
            ErrorCode.REWARD_NOT_ELIGIBLE, f"{reward.name} is not offered to this member"
        )
    if reward.per_member_limit is not None and redeemed_by_member >= reward.per_member_limit:
        raise Rejected(
            ErrorCode.REDEMPTION_LIMIT_REACHED,
            f"{reward.name} can be redeemed {reward.per_member_limit} time(s) per member",
        )


def _at_least(tier: str | None, floor: str, order: tuple[str, ...]) -> bool:
    return tier in order and floor in order and order.index(tier) >= order.index(floor)


def new_voucher_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    """Accept what a person types: lower case, spaces and dashes."""
    return code.strip().upper().replace("-", "").replace(" ", "")


VoucherAction = Literal["consume", "cancel"]


def check_voucher(status: VoucherStatus, expires_at: datetime | None, now: datetime) -> None:
    if status is VoucherStatus.USED:
        raise Rejected(ErrorCode.VOUCHER_ALREADY_USED, "this voucher has already been used")
    if status is VoucherStatus.CANCELLED:
        raise Rejected(ErrorCode.VOUCHER_CANCELLED, "this voucher has been cancelled")
    if status is VoucherStatus.EXPIRED or (expires_at is not None and now >= expires_at):
        raise Rejected(ErrorCode.VOUCHER_EXPIRED, "this voucher has expired")
