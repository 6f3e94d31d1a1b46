"""Referrals: the pure part (programme document section, codes, the fraud decision).

A member's referral code is short and drawn from an unambiguous alphabet (8 characters of 31:
~2^40, so guessing a live code by trying is hopeless behind the API's rate limits). A friend who
enrols with it becomes a *referral*: ``pending`` until their first qualifying purchase converts
it (rewards for the referrer and/or the friend; with ``confirm_after_days`` it is ``qualified``
first and the nightly run confirms it once the return window has passed without the purchase
falling below the minimum), or ``held`` for staff review when it looks like one person or one
ring farming rewards, or ``rejected`` by staff.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from treu.rewards.model import CODE_ALPHABET

REFERRAL_CODE_LENGTH = 8


class ReferralStatus(StrEnum):
    PENDING = "pending"  # waiting for the friend's first qualifying purchase
    QUALIFIED = "qualified"  # purchase made; confirmed by the nightly run after the window
    HELD = "held"  # suspicious: waiting for staff (approve -> pending or converted; reject)
    CONVERTED = "converted"  # the qualifying purchase happened; rewards given
    REJECTED = "rejected"  # staff said no: nobody is rewarded


class ReferralReward(BaseModel):
    """Points, or a voucher of a catalogue reward (``reward``: its key), not both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: int | None = Field(default=None, gt=0, le=10_000_000)
    reward: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one_kind(self) -> ReferralReward:
        if (self.points is None) == (self.reward is None):
            raise ValueError("a referral reward is either points or a reward key")
        return self


class ReferralSettings(BaseModel):
    """The referral programme."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    referrer_reward: ReferralReward | None = None
    friend_reward: ReferralReward | None = None
    min_purchase: Decimal = Field(
        default=Decimal(0), ge=0, description="what the friend's purchase must reach (paid)"
    )
    per_referrer_per_month: int | None = Field(
        default=None, gt=0, description="rewarded referrals per referrer and calendar month"
    )
    per_referrer_total: int | None = Field(default=None, gt=0)
    confirm_after_days: int | None = Field(
        default=None,
        gt=0,
        le=365,
        description="wait this long (the return window) before the conversion is confirmed",
    )
    link_base: str | None = Field(
        default=None,
        max_length=300,
        pattern=r"^https?://",
        description="the member's link is this followed by their code",
    )

    @model_validator(mode="after")
    def _rewards_someone(self) -> ReferralSettings:
        if self.referrer_reward is None and self.friend_reward is None:
            raise ValueError("a referral programme rewards the referrer, the friend or both")
        return self


def new_referral_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))


def normalise_referral_code(code: str) -> str:
    return code.strip().upper().replace("-", "").replace(" ", "")


def referral_link(settings: ReferralSettings, code: str) -> str | None:
    return None if settings.link_base is None else f"{settings.link_base}{code}"


def address_hash(address: str | None) -> str | None:
    """Client addresses are compared, never kept: a hash is enough to see two are the same."""
    if not address or not address.strip():
        return None
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def canonical_email(email: str) -> str:
    """One mailbox, however it is written: ``+tags`` dropped, and dots for Gmail, which ignores
    them (``a.na+2@gmail.com`` is ``ana@gmail.com``). Only used to compare, never stored."""
    local, _, domain = email.lower().partition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def shared_identifiers(referrer: dict[str, set[str]], friend: dict[str, set[str]]) -> list[str]:
    """Which kinds of identifier (``email``, ``phone``, ``payment``: token hashes) the friend
    shares with the referrer, compared in canonical form. Exact duplicates never get this far
    (identifiers are unique per programme); ``ana+2@gmail.com`` does."""
    shared = []
    emails = {canonical_email(e) for e in referrer.get("email", set())}
    if emails & {canonical_email(e) for e in friend.get("email", set())}:
        shared.append("email")
    for kind in ("phone", "payment"):
        if referrer.get(kind, set()) & friend.get(kind, set()):
            shared.append(kind)
    return shared


@dataclass(frozen=True)
class SignUp:
    """What the fraud checks know about a referral at the friend's enrolment."""

    friend_address: str | None  # hashes
    referrer_address: str | None
    shared_identifiers: tuple[str, ...]  # see shared_identifiers()
    referrer_referrals_from_address: int  # the referrer's earlier referrals from this address
    chain_addresses: frozenset[str]  # enrolment addresses of whoever referred the referrer, up


def suspicions(signup: SignUp) -> list[str]:
    """Why a referral should wait for a person to look at it (empty: it looks fine)."""
    reasons = [f"same_{kind}" for kind in signup.shared_identifiers]
    if signup.friend_address is not None:
        if signup.friend_address == signup.referrer_address:
            reasons.append("same_address")
        if signup.referrer_referrals_from_address:
            reasons.append("many_referrals_from_one_address")
        if signup.friend_address in signup.chain_addresses:
            reasons.append("referral_ring")
    return reasons
