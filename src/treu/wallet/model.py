"""The wallet: the pure part (programme document section, decisions).

A member's wallet is money in the programme currency, kept in the ledger as its own unit
(``Unit.WALLET``, integer minor units) so it can never be added to points. It fills with store
credit (a dividend, a refund as credit), cashback on purchases and staff goodwill, and empties
when the member pays with it at the till — directly, or held first and captured or voided.

Gift cards are bearer money: each card owns a wallet ``available`` account like a member does
(the card is the owner; no member), with a cached balance the ledger's guarded update and the
accounts CHECK keep at zero or more, so every cent loaded, spent, moved into a wallet or expired
is a transfer like any other. Only the SHA-256 of a card's code is stored (the code is cash).
"""

from __future__ import annotations

import hashlib
import secrets
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from treu.activities.model import Basket
from treu.rewards.model import CODE_ALPHABET, normalise_code
from treu.rules.model import ItemFilter

GIFT_CARD_CODE_LENGTH = 16  # 31^16 ~ 2^79: a gift card is cash, so longer than a voucher code


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CashbackRule(_Def):
    """``percent`` of the eligible spend of a purchase back as store credit, at most ``cap``
    per purchase; lines are eligible if ``include`` is empty or matches them and ``exclude``
    does not; ``memberships``: only for members of these plans (at the time of purchase)."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    percent: Decimal = Field(gt=0, le=100)
    include: ItemFilter = Field(default_factory=ItemFilter)
    exclude: ItemFilter = Field(default_factory=ItemFilter)
    cap: Decimal | None = Field(default=None, gt=0, description="per purchase")
    memberships: list[str] = Field(default_factory=list)


class GiftCardPolicy(_Def):
    expiry_months: int | None = Field(default=None, gt=0, le=600, description="none: never")
    max_load: Decimal = Field(default=Decimal("500"), gt=0, description="balance limit per card")


class WalletSettings(_Def):
    """Cashback rules, gift cards and store credit."""

    cashback: list[CashbackRule] = Field(default_factory=list)
    gift_cards: GiftCardPolicy = Field(default_factory=GiftCardPolicy)


CreditKind = Literal["store_credit", "goodwill"]


def eligible_minor(basket: Basket, include: ItemFilter, exclude: ItemFilter) -> int:
    """The paid amount of the lines a filter lets through (shipping never counts)."""
    return sum(
        line.paid_minor
        for line in basket.lines
        if not line.is_shipping
        and (include.empty or include.matches(line))
        and not exclude.matches(line)
    )


def percent_of(amount_minor: int, percent: Decimal) -> int:
    """``percent`` of an amount, rounded down to the minor unit: the programme never pays out
    a cent it did not promise."""
    return int((Decimal(amount_minor) * percent / 100).to_integral_value(rounding=ROUND_DOWN))


def cashback_minor(rule: CashbackRule, basket: Basket, cap_minor: int | None) -> int:
    earned = percent_of(eligible_minor(basket, rule.include, rule.exclude), rule.percent)
    return earned if cap_minor is None else min(earned, cap_minor)


def take_back(owed: int, available: int) -> tuple[int, int]:
    """Of ``owed`` cashback that a return takes back, what the wallet gives and what is
    forgiven: a wallet never goes below zero for cashback already spent."""
    taken = max(0, min(owed, available))
    return taken, max(0, owed - taken)


def new_gift_card_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(GIFT_CARD_CODE_LENGTH))


def hash_gift_card_code(code: str) -> str:
    """What is stored and looked up: a code is 79 random bits, so a fast hash is enough."""
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()
