"""Stamp cards, the pure part: what a basket earns, how a card fills, why no stamp."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from treu.activities.model import Basket, EarningBase, LineIn, PurchaseIn, build_basket
from treu.stamps.model import StampCardDef, almost_complete, fill, stamps_for


def card(**overrides: Any) -> StampCardDef:
    data: dict[str, Any] = {
        "key": "kaffeekarte",
        "name": "Kaffeekarte",
        "stamps_needed": 10,
        "earn": {"type": "per_unit", "items": {"categories": ["Kaffee"]}},
        "reward": "gratis-kaffee",
    }
    return StampCardDef.model_validate({**data, **overrides})


BROTKARTE = card(
    key="brotkarte",
    name="Brotkarte",
    stamps_needed=8,
    earn={"type": "per_visit", "min_spend": "2.00"},
    caps={"max_per_day": 1},
    reward="gratis-brot",
    carry_over=False,
)


def basket(*lines: tuple[str, str, int, str]) -> Basket:
    purchase = PurchaseIn(
        external_id="b",
        currency="EUR",
        lines=[
            LineIn(sku=sku, category=category, quantity=qty, unit_price=Decimal(price))
            for sku, category, qty, price in lines
        ],
    )
    return build_basket(purchase, "EUR", EarningBase())


CAPPUCCINOS = ("CAPPU", "Kaffee", 2, "3.40")
CROISSANT = ("CROISSANT", "Gebäck", 1, "2.50")


def test_two_cappuccinos_earn_two_stamps_and_a_croissant_none() -> None:
    kaffee = card()
    assert stamps_for(kaffee, basket(CAPPUCCINOS)).stamps == 2
    assert stamps_for(kaffee, basket(CAPPUCCINOS, CROISSANT)).stamps == 2
    none = stamps_for(kaffee, basket(CROISSANT))
    assert (none.stamps, none.explanation) == (0, "Kaffeekarte: no Kaffee item")


def test_a_visit_earns_one_stamp_from_the_minimum_spend_once_a_day() -> None:
    bread = basket(("BROT", "Brot", 1, "3.50"))
    earned = stamps_for(BROTKARTE, bread)
    assert (earned.stamps, earned.explanation) == (1, "Brotkarte: 1 stamp for the visit (3.50 EUR)")
    again = stamps_for(BROTKARTE, bread, stamped_today=1)
    assert (again.stamps, again.explanation) == (0, "Brotkarte: already stamped today")
    small = stamps_for(BROTKARTE, basket(("BROT", "Brot", 1, "1.50")))
    assert (small.stamps, small.explanation) == (0, "Brotkarte: below minimum spend 2.00 EUR")
    assert stamps_for(BROTKARTE, basket(("BROT", "Brot", 1, "2.00"))).stamps == 1


def test_a_per_activity_cap_cuts_the_stamps_and_says_so() -> None:
    capped = card(caps={"max_per_activity": 3})
    decision = stamps_for(capped, basket(("CAPPU", "Kaffee", 5, "3.40")))
    assert decision.stamps == 3
    assert decision.explanation == "Kaffeekarte: 3 stamps for 5 × Kaffee (at most 3 per purchase)"


def test_twelve_stamps_on_a_ten_card_complete_one_and_carry_two() -> None:
    result = fill(card(), 0, 12)
    assert (result.completed, result.left, result.forfeited) == (1, 2, 0)
    assert (fill(card(), 7, 25).completed, fill(card(), 7, 25).left) == (3, 2)
    assert (fill(card(), 3, 4).completed, fill(card(), 3, 4).left) == (0, 7)


def test_without_carry_over_the_surplus_is_forfeited() -> None:
    no_carry = card(carry_over=False)
    result = fill(no_carry, 9, 3)
    assert (result.completed, result.left, result.forfeited) == (1, 0, 2)


def test_a_return_gives_back_the_stamps_of_the_units_that_came_back() -> None:
    bought = stamps_for(card(), basket(CAPPUCCINOS))
    assert bought.units == {0: (2, 680)}
    one_back = basket(CAPPUCCINOS).after_returns([340])
    assert stamps_for(card(), one_back, units_before=bought.units).stamps == 1
    price_corrected = basket(CAPPUCCINOS).after_returns([10])
    assert stamps_for(card(), price_corrected, units_before=bought.units).stamps == 2


def test_one_stamp_to_go_is_almost_complete() -> None:
    assert almost_complete(BROTKARTE, 7)
    assert not almost_complete(BROTKARTE, 6)
    assert not almost_complete(card(stamps_needed=1), 0)


def test_a_card_of_zero_stamps_is_refused_in_words() -> None:
    with pytest.raises(ValidationError, match="needs at least 1 stamp to be complete, not 0"):
        card(stamps_needed=0)


def test_per_unit_stamps_need_items() -> None:
    with pytest.raises(ValidationError, match="per_unit stamps need items"):
        card(earn={"type": "per_unit", "items": {}})
