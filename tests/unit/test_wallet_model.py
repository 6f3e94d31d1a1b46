"""Cashback and take-back decisions, gift card codes: the wallet's pure part."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from treu.activities.model import Basket, Line
from treu.rewards.model import CODE_ALPHABET
from treu.rules.model import ItemFilter
from treu.wallet.model import (
    GIFT_CARD_CODE_LENGTH,
    CashbackRule,
    WalletSettings,
    cashback_minor,
    eligible_minor,
    new_gift_card_code,
    percent_of,
    take_back,
)


def line(category: str, paid: int, *, shipping: bool = False) -> Line:
    return Line(None, category, None, 1, paid, paid, is_shipping=shipping)


BASKET = Basket(
    "USD",
    2,
    (line("Outdoor", 20_000), line("Gift cards", 5_000), line("Shipping", 999, shipping=True)),
)


def test_eligible_spend_follows_the_filters_and_never_counts_shipping() -> None:
    assert eligible_minor(BASKET, ItemFilter(), ItemFilter()) == 25_000
    assert eligible_minor(BASKET, ItemFilter(), ItemFilter(categories=["Gift cards"])) == 20_000
    assert eligible_minor(BASKET, ItemFilter(categories=["Gift cards"]), ItemFilter()) == 5_000


def test_a_percentage_is_rounded_down_to_the_cent() -> None:
    assert percent_of(999, Decimal("10")) == 99
    assert percent_of(32_000, Decimal("10")) == 3_200


def test_cashback_is_capped_per_purchase() -> None:
    rule = CashbackRule(key="back", percent=Decimal("5"))
    assert cashback_minor(rule, BASKET, None) == 1_250
    assert cashback_minor(rule, BASKET, 1_000) == 1_000


def test_a_return_takes_back_what_the_wallet_has_and_forgives_the_rest() -> None:
    assert take_back(500, 2_000) == (500, 0)
    assert take_back(500, 200) == (200, 300)
    assert take_back(500, 0) == (0, 500)
    assert take_back(-10, 100) == (0, 0)  # nothing owed


def test_gift_card_codes_are_long_and_from_the_voucher_alphabet() -> None:
    codes = {new_gift_card_code() for _ in range(50)}
    assert len(codes) == 50
    assert all(len(c) == GIFT_CARD_CODE_LENGTH and set(c) <= set(CODE_ALPHABET) for c in codes)


def test_wallet_settings_refuse_a_cashback_of_nothing() -> None:
    with pytest.raises(ValidationError, match="percent"):
        WalletSettings.model_validate({"cashback": [{"key": "zero", "percent": "0"}]})
