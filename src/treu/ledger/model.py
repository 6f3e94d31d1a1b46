"""The points ledger: accounts, transfers, lots — the pure part.

Design (see docs/adr/0001-ledger-append-only-with-lots.md):

* **Accounts.** Each member has ``available``, ``pending`` and ``held`` accounts per unit, plus a
  ``debt`` account that is only ever negative (points reversed that the member no longer had,
  under the ``allow_negative`` return policy). Each programme has system accounts: ``issuance``
  (where earned points come from), ``redemption``, ``breakage`` (expired points), ``adjustment``
  and ``donation``. Account ids are derived from their owner, so no look-up is needed to post.
* **Transfers.** A transfer moves a positive integer amount from a debit account to a different
  credit account of the same unit. It is immutable and carries an idempotency key unique per
  tenant; a correction is a new transfer that names the one it corrects (at most once). A
  transfer is a balanced posting pair by construction (TigerBeetle's model), so the sum over all
  accounts of a unit is always zero.
* **Balances.** Member accounts cache their balance, changed only by a guarded ``UPDATE ... SET
  balance = balance + :delta`` in the same statement that checks the floor (and a CHECK
  constraint backs it). System account balances are never cached: they would be a row every
  event updates. ``treu ledger verify`` replays every transfer and compares.
* **Lots.** Every credit of earned points creates a lot (amount, remaining, activates_at,
  expires_at). Spending, expiry and reversals draw from lots and record an allocation per lot;
  a void or cancellation records the opposite allocation. ``remaining = amount - sum(allocations)``
  and the ``remaining`` of a member's active lots equals their ``available`` balance.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Unit(StrEnum):
    """What an account counts. Units never mix: a transfer moves one unit between two accounts
    of that unit, and no sum adds two units."""

    POINTS = "points"
    STAMPS = "stamps"  # stamp-card stamps, counted per card definition (see treu.stamps)
    WALLET = "wallet"  # money in the programme currency, integer minor units (see treu.wallet)


class MemberAccount(StrEnum):
    AVAILABLE = "available"
    PENDING = "pending"
    HELD = "held"
    DEBT = "debt"


# The member accounts each unit has. Only points can be pending or run into debt; wallet money
# can be held (a payment authorised at the till, captured or voided later).
MEMBER_ACCOUNTS: dict[Unit, tuple[MemberAccount, ...]] = {
    Unit.POINTS: tuple(MemberAccount),
    Unit.STAMPS: (MemberAccount.AVAILABLE,),
    Unit.WALLET: (MemberAccount.AVAILABLE, MemberAccount.HELD),
}


class SystemAccount(StrEnum):
    ISSUANCE = "issuance"
    REDEMPTION = "redemption"
    BREAKAGE = "breakage"
    ADJUSTMENT = "adjustment"
    DONATION = "donation"


class TransferKind(StrEnum):
    EARN = "earn"  # issuance -> available | pending
    ACTIVATE = "activate"  # pending -> available
    HOLD = "hold"  # available -> held
    CAPTURE = "capture"  # held -> redemption
    VOID = "void"  # held -> available
    RESTORE = "restore"  # redemption -> available (cancelled redemption)
    REVERSE = "reverse"  # available | pending -> issuance; debt -> issuance (negative balance)
    SETTLE = "settle"  # available -> debt (new points pay back a negative balance)
    EXPIRE = "expire"  # available -> breakage
    ADJUST = "adjust"  # adjustment <-> available
    DONATE = "donate"  # available -> donation
    MERGE = "merge"  # one member's available | pending | debt -> another's (members merged)
    OPENING = "opening"  # issuance -> available: a balance carried over from another system
    # wallet money (Unit.WALLET, see treu.wallet)
    CREDIT = "credit"  # issuance -> available: store credit, a membership dividend
    CASHBACK = "cashback"  # issuance -> available: a share of a purchase
    PAY = "pay"  # available -> redemption: paid with the wallet at once (no hold)
    LOAD = "load"  # issuance -> a gift card's account: a card sold or topped up
    REDEEM_CARD = "redeem_card"  # a gift card's account -> a member's available wallet money
    COMPLETE = "complete"  # stamps: available -> redemption (a full stamp card gives its voucher)


class LotStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    CLOSED = "closed"  # nothing left: spent, expired or reversed


def member_account_id(member_id: str, kind: MemberAccount, unit: Unit = Unit.POINTS) -> str:
    return f"acc_{member_id.split('_', 1)[1]}_{unit.value[:3]}_{kind.value}"


def system_account_id(programme_id: str, kind: SystemAccount, unit: Unit = Unit.POINTS) -> str:
    return f"acc_{programme_id.split('_', 1)[1]}_{unit.value[:3]}_{kind.value}"


# --- policies (part of the programme document) -------------------------------------------


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpiryPolicy(_Policy):
    """When earned points expire.

    * ``never``
    * ``after``: ``days`` or ``months`` after earning, optionally rounded up to the end of that
      month, quarter or year (programme time)
    * ``fixed_date``: on ``month``/``day`` of the year ``years`` after the year of earning
    * ``inactivity``: all points expire after ``months`` without any activity
    """

    type: Literal["never", "after", "fixed_date", "inactivity"] = "never"
    days: int | None = Field(default=None, gt=0, le=36500)
    months: int | None = Field(default=None, gt=0, le=1200)
    round_to: Literal["month_end", "quarter_end", "year_end"] | None = None
    month: int | None = Field(default=None, ge=1, le=12)
    day: int | None = Field(default=None, ge=1, le=31)
    years: int = Field(default=1, ge=0, le=100)
    reminder_days: int | None = Field(default=None, gt=0, le=365)

    @model_validator(mode="after")
    def _fields_for_type(self) -> ExpiryPolicy:
        if self.type == "after" and (self.days is None) == (self.months is None):
            raise ValueError("expiry 'after' needs exactly one of days or months")
        if self.type == "fixed_date" and (self.month is None or self.day is None):
            raise ValueError("expiry 'fixed_date' needs month and day")
        if self.type == "inactivity" and self.months is None:
            raise ValueError("expiry 'inactivity' needs months")
        return self


class PendingPolicy(_Policy):
    """When earned points become spendable: at once, after ``days``, or when activated."""

    mode: Literal["immediate", "after_days", "on_activation"] = "immediate"
    days: int | None = Field(default=None, gt=0, le=365)

    @model_validator(mode="after")
    def _days_for_after_days(self) -> PendingPolicy:
        if self.mode == "after_days" and self.days is None:
            raise ValueError("pending 'after_days' needs days")
        return self


class ReturnPolicy(_Policy):
    """What a return does to points already earned for the purchase.

    * ``reverse_pending_only``: only points still pending are taken back
    * ``within_balance``: taken back as far as the available balance allows, the rest forgiven
    * ``allow_negative``: taken back in full; what the member no longer has becomes a negative
      balance that later earnings pay back first
    """

    policy: Literal["reverse_pending_only", "within_balance", "allow_negative"] = "within_balance"
    claim_window_days: int = Field(default=30, ge=0, le=3650)


# --- pure decisions ----------------------------------------------------------------------


def expires_at(policy: ExpiryPolicy, earned_at: datetime, tz: ZoneInfo) -> datetime | None:
    """The first instant at which points earned at ``earned_at`` are no longer valid.

    The last valid day is the local date before it (``expires_on``). Inactivity expiry has no
    date per lot; the nightly job handles it.
    """
    local_day = earned_at.astimezone(tz).date()
    last_day: date
    if policy.type in ("never", "inactivity"):
        return None
    if policy.type == "after":
        if policy.months is not None:
            last_day = add_months(local_day, policy.months)
        else:
            last_day = local_day + timedelta(days=policy.days or 0)
        last_day = round_up(last_day, policy.round_to)
    else:
        assert policy.month is not None
        assert policy.day is not None
        year = local_day.year + policy.years
        last_day = clamp_date(year, policy.month, policy.day)
        if last_day < local_day:
            last_day = clamp_date(year + 1, policy.month, policy.day)
    return start_of_day(last_day + timedelta(days=1), tz)


def expires_on(expiry: datetime | None, tz: ZoneInfo) -> date | None:
    if expiry is None:
        return None
    return (expiry.astimezone(tz) - timedelta(microseconds=1)).date()


def activates_at(policy: PendingPolicy, earned_at: datetime) -> datetime | None:
    """When pending points become available; ``earned_at`` for immediate, None if manual."""
    if policy.mode == "immediate":
        return earned_at
    if policy.mode == "after_days":
        return earned_at + timedelta(days=policy.days or 0)
    return None


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return clamp_date(year, month, day.day)


def clamp_date(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def round_up(day: date, to: str | None) -> date:
    if to == "month_end":
        return clamp_date(day.year, day.month, 31)
    if to == "quarter_end":
        last_month = ((day.month - 1) // 3 + 1) * 3
        return clamp_date(day.year, last_month, 31)
    if to == "year_end":
        return date(day.year, 12, 31)
    return day


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """Local midnight as an aware instant (the first existing instant if DST skips it)."""
    return datetime.combine(day, time(0), tzinfo=tz)


@dataclass(frozen=True)
class LotView:
    id: str
    remaining: int
    expires_at: datetime | None
    created_at: datetime


def spend_order(lots: list[LotView]) -> list[LotView]:
    """Soonest expiry first, then oldest; lots that never expire last."""
    return sorted(
        lots,
        key=lambda lot: (
            lot.expires_at is None,
            lot.expires_at or lot.created_at,
            lot.created_at,
            lot.id,
        ),
    )


def allocate_lots(lots: list[LotView], amount: int) -> list[tuple[str, int]]:
    """Which lots pay ``amount``, and how much each; raises if they cannot."""
    plan: list[tuple[str, int]] = []
    left = amount
    for lot in spend_order(lots):
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            plan.append((lot.id, take))
            left -= take
    if left:
        raise ValueError(f"lots hold {amount - left} of the {amount} points asked for")
    return plan


@dataclass(frozen=True)
class Balances:
    """A member's points by bucket; ``available`` is net of any negative balance."""

    available: int
    pending: int
    held: int
    negative: int
    lifetime_earned: int
    spent: int
    expired: int
    reversed: int
