"""Purchases become baskets: what the customer paid per line, and the part of it that earns."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from treu.activities.model import (
    Basket,
    EarningBase,
    LineIn,
    PaymentIn,
    PurchaseIn,
    ReturnIn,
    ReturnLineIn,
    build_basket,
    returned_per_line,
)
from treu.errors import ErrorCode, InvalidInput, Rejected
from treu.money import from_minor


def purchase(*lines: LineIn, **fields: Any) -> PurchaseIn:
    fields.setdefault("currency", "EUR")
    return PurchaseIn(external_id="till-1", lines=list(lines), **fields)


def line(price: str, **fields: Any) -> LineIn:
    return LineIn(unit_price=Decimal(price), **fields)


def basket(p: PurchaseIn, **options: bool) -> Basket:
    return build_basket(p, "EUR", EarningBase(**options))


def paid(b: Basket) -> list[int]:
    return [x.paid_minor for x in b.lines]


def base(b: Basket) -> list[int]:
    return [x.base_minor for x in b.lines]


# --- the earning base --------------------------------------------------------------------


def test_a_plain_purchase_earns_on_what_was_paid() -> None:
    b = basket(purchase(line("6.80", sku="FLAT-WHITE", category="Kaffee")))
    assert (b.currency, b.exponent) == ("EUR", 2)
    assert paid(b) == base(b) == [680]
    assert b.lines[0].sku == "FLAT-WHITE"
    assert b.lines[0].category == "Kaffee"
    assert b.format(b.base_minor) == "6.80 EUR"


def test_quantity_multiplies_the_unit_price() -> None:
    b = basket(purchase(line("3.40", quantity=2)))
    assert paid(b) == [680]
    assert b.lines[0].quantity == 2


def test_the_programme_earning_base_defaults() -> None:
    assert EarningBase() == EarningBase(
        include_tax=True,
        include_shipping=False,
        after_discounts=True,
        exclude_gift_card_payments=True,
    )


def test_line_discounts_count_unless_the_programme_earns_before_discounts() -> None:
    p = purchase(line("10.00", discount=Decimal("2.00")))
    assert base(basket(p)) == [800]
    assert paid(basket(p, after_discounts=False)) == [800]
    assert base(basket(p, after_discounts=False)) == [1000]


def test_an_order_discount_is_spread_over_the_lines_and_sums_exactly() -> None:
    b = basket(purchase(line("10.00"), line("20.00"), line("30.00"), order_discount="10.00"))
    assert paid(b) == [833, 1667, 2500]
    assert b.paid_minor == 5000


def test_prices_with_tax_earn_on_the_gross_unless_tax_is_excluded() -> None:
    p = purchase(line("119.00"), tax="19.00")
    assert paid(basket(p)) == base(basket(p)) == [11900]
    assert paid(basket(p, include_tax=False)) == [11900]
    assert base(basket(p, include_tax=False)) == [10000]


def test_prices_without_tax_add_the_tax_to_what_was_paid_once() -> None:
    p = purchase(line("100.00"), tax="19.00", prices_include_tax=False)
    assert paid(basket(p)) == [11900]
    assert base(basket(p)) == [11900]  # not 138.00: the tax is counted once
    assert base(basket(p, include_tax=False)) == [10000]


def test_prices_without_tax_before_discounts() -> None:
    # 100.00 net less 10.00, tax 17.10 on the 90.00
    p = purchase(line("100.00", discount=Decimal("10.00")), tax="17.10", prices_include_tax=False)
    assert paid(basket(p, after_discounts=False)) == [10710]
    assert base(basket(p, after_discounts=False)) == [11710]
    assert base(basket(p, after_discounts=False, include_tax=False)) == [10000]


def test_tax_is_spread_over_the_lines_like_discounts() -> None:
    p = purchase(line("10.00"), line("20.00"), tax="1.00")
    assert base(basket(p, include_tax=False)) == [1000 - 33, 2000 - 67]


def test_tax_on_top_of_free_lines_is_still_paid() -> None:
    p = purchase(line("0.00"), line("0.00"), tax="0.03", prices_include_tax=False)
    assert paid(basket(p)) == [2, 1]
    assert base(basket(p, include_tax=False)) == [0, 0]


def test_shipping_is_a_line_of_its_own_that_earns_only_when_the_programme_says_so() -> None:
    p = purchase(line("20.00"), shipping="4.90", order_discount="2.00")
    b = basket(p)
    assert paid(b) == [1800, 490]
    assert base(b) == [1800, 0]
    assert b.lines[1].is_shipping
    assert not b.lines[0].is_shipping
    assert base(basket(p, include_shipping=True)) == [1800, 490]


def test_gift_card_payments_do_not_earn_twice() -> None:
    p = purchase(
        line("10.00"),
        line("40.00"),
        payments=[
            PaymentIn(method="gift_card", amount=Decimal("15.00")),
            PaymentIn(method="store_credit", amount=Decimal("5.00")),
            PaymentIn(method="card", amount=Decimal("30.00")),
        ],
    )
    assert base(basket(p)) == [600, 2400]
    assert base(basket(p, exclude_gift_card_payments=False)) == [1000, 4000]


def test_a_gift_card_larger_than_the_purchase_leaves_no_base_but_never_a_negative_one() -> None:
    p = purchase(line("50.00"), payments=[PaymentIn(method="gift_card", amount=Decimal("80.00"))])
    assert paid(basket(p)) == [5000]
    assert base(basket(p)) == [0]


def test_a_till_that_knows_only_the_total() -> None:
    b = basket(PurchaseIn(external_id="till-2", currency="EUR", total=Decimal("42.00")))
    assert paid(b) == base(b) == [4200]


def test_a_yen_basket_has_no_minor_unit() -> None:
    p = PurchaseIn(external_id="t", currency="JPY", lines=[line("500")])
    b = build_basket(p, "JPY", EarningBase())
    assert (b.exponent, paid(b)) == (0, [500])


# --- refused purchases -------------------------------------------------------------------


def test_a_purchase_in_another_currency_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        basket(purchase(line("6.80"), currency="USD"))
    assert caught.value.code is ErrorCode.CURRENCY_MISMATCH
    assert "EUR" in caught.value.message
    assert "USD" in caught.value.message


def test_the_currency_code_may_come_in_lower_case() -> None:
    assert paid(basket(purchase(line("6.80"), currency="eur"))) == [680]


def test_too_many_decimals_are_refused_with_the_field_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        basket(purchase(line("1.00"), line("6.805")))
    assert caught.value.code is ErrorCode.INVALID_AMOUNT
    assert "lines.1.unit_price" in caught.value.message


@pytest.mark.parametrize(
    ("p", "message"),
    [
        (purchase(line("5.00", discount=Decimal("6.00"))), "lines.0.discount exceeds"),
        (purchase(line("5.00"), order_discount="5.01"), "order_discount exceeds"),
        (purchase(line("5.00"), tax="5.01"), "tax exceeds"),
    ],
)
def test_discounts_and_tax_cannot_exceed_the_order(p: PurchaseIn, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        basket(p)
    assert caught.value.code is ErrorCode.INVALID_AMOUNT


@pytest.mark.parametrize(
    "fields",
    [
        {"lines": [{"unit_price": "1.00"}], "total": "1.00"},  # both
        {},  # neither
        {"total": "-1.00"},
        {"total": "10000000.01"},
        {"total": "NaN"},
        {"total": "1.00", "occurred_at": datetime(2026, 3, 2, 8, 10)},  # no offset
        {"total": "1.00", "colour": "red"},
        {"lines": [{"unit_price": "1.00", "quantity": 0}]},
    ],
)
def test_malformed_purchases_do_not_validate(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PurchaseIn.model_validate({"external_id": "t", "currency": "EUR", **fields})


# --- returns -----------------------------------------------------------------------------


def ret(*lines: tuple[int, int], amount: str | None = None) -> ReturnIn:
    return ReturnIn(
        external_id="ret-1",
        purchase_external_id="till-1",
        lines=[ReturnLineIn(line=i, quantity=q) for i, q in lines],
        amount=Decimal(amount) if amount is not None else None,
    )


SHOP = purchase(line("5.00", quantity=2, sku="MUG"), line("3.00", sku="SPOON"), shipping="4.90")


def test_returning_1_of_2_units_takes_half_the_line_off() -> None:
    b = basket(SHOP)
    back = returned_per_line(b, [], ret((0, 1)), "EUR")
    assert back == [500, 0, 0]
    after = b.after_returns(back)
    assert paid(after) == [500, 300, 490]
    assert base(after) == [500, 300, 0]


def test_the_second_unit_can_be_returned_later_but_not_a_third() -> None:
    b = basket(SHOP)
    assert returned_per_line(b, [500, 0, 0], ret((0, 1)), "EUR") == [500, 0, 0]
    with pytest.raises(Rejected) as caught:
        returned_per_line(b, [1000, 0, 0], ret((0, 1)), "EUR")
    assert caught.value.code is ErrorCode.RETURN_EXCEEDS_PURCHASE


def test_returning_more_units_than_were_bought_is_refused() -> None:
    with pytest.raises(Rejected) as caught:
        returned_per_line(basket(SHOP), [], ret((0, 3)), "EUR")
    assert caught.value.code is ErrorCode.RETURN_EXCEEDS_PURCHASE


def test_the_same_line_twice_in_one_return_counts_twice() -> None:
    with pytest.raises(Rejected):
        returned_per_line(basket(SHOP), [], ret((0, 2), (0, 1)), "EUR")


@pytest.mark.parametrize("index", [2, 3])
def test_shipping_and_missing_lines_cannot_be_returned(index: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        returned_per_line(basket(SHOP), [], ret((index, 1)), "EUR")
    assert caught.value.code is ErrorCode.VALIDATION_ERROR


def test_an_amount_is_spread_over_the_product_lines_not_shipping() -> None:
    assert returned_per_line(basket(SHOP), [], ret(amount="6.50"), "EUR") == [500, 150, 0]


def test_an_amount_return_counts_what_was_already_returned() -> None:
    assert returned_per_line(basket(SHOP), [1000, 0, 0], ret(amount="3.00"), "EUR") == [0, 300, 0]


def test_a_return_larger_than_the_purchase_is_refused() -> None:
    with pytest.raises(Rejected) as caught:
        returned_per_line(basket(SHOP), [], ret(amount="13.01"), "EUR")
    assert caught.value.code is ErrorCode.RETURN_EXCEEDS_PURCHASE
    assert "13.01 EUR exceeds the 13.00 EUR left" in caught.value.message


def test_a_return_takes_the_earning_base_down_in_proportion() -> None:
    p = purchase(line("10.00"), payments=[PaymentIn(method="gift_card", amount=Decimal("2.00"))])
    b = basket(p)
    assert (paid(b), base(b)) == ([1000], [800])
    after = b.after_returns([500])
    assert (paid(after), base(after)) == ([500], [400])


@pytest.mark.parametrize("fields", [{}, {"lines": [{"line": 0, "quantity": 1}], "amount": "1"}])
def test_a_return_gives_either_lines_or_an_amount(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ReturnIn.model_validate({"external_id": "r", "purchase_external_id": "p", **fields})


# --- properties --------------------------------------------------------------------------


@st.composite
def purchases(draw: st.DrawFn) -> tuple[PurchaseIn, int, int]:
    """A purchase, what its product lines cost after discounts (without tax), and its tax."""
    items = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=50_000),
                st.integers(min_value=1, max_value=5),
                st.floats(min_value=0, max_value=1),
            ),
            min_size=1,
            max_size=6,
        )
    )
    lines = []
    after_line = 0
    for price, quantity, discount_share in items:
        discount = int(price * quantity * discount_share)
        lines.append(
            LineIn(
                unit_price=from_minor(price, "EUR"),
                quantity=quantity,
                discount=from_minor(discount, "EUR"),
            )
        )
        after_line += price * quantity - discount
    order_discount = draw(st.integers(min_value=0, max_value=after_line))
    net = after_line - order_discount
    include = draw(st.booleans())
    tax = draw(st.integers(min_value=0, max_value=net if include else 100_000))
    gift = draw(st.integers(min_value=0, max_value=300_000))
    p = PurchaseIn(
        external_id="p",
        currency="EUR",
        lines=lines,
        order_discount=from_minor(order_discount, "EUR"),
        tax=from_minor(tax, "EUR"),
        prices_include_tax=include,
        shipping=from_minor(draw(st.integers(min_value=0, max_value=2_000)), "EUR"),
        payments=[PaymentIn(method="gift_card", amount=from_minor(gift, "EUR"))] if gift else [],
    )
    return p, net, tax


earning_bases = st.builds(
    EarningBase,
    include_tax=st.booleans(),
    include_shipping=st.booleans(),
    after_discounts=st.booleans(),
    exclude_gift_card_payments=st.booleans(),
)


@given(purchases(), earning_bases)
def test_a_basket_never_creates_or_loses_a_cent(
    drawn: tuple[PurchaseIn, int, int], options: EarningBase
) -> None:
    p, net, tax = drawn
    b = build_basket(p, "EUR", options)
    products = [x for x in b.lines if not x.is_shipping]
    assert len(products) == len(p.lines)
    assert sum(x.paid_minor for x in products) == (net if p.prices_include_tax else net + tax)
    for x in b.lines:
        assert x.paid_minor >= 0
        assert x.base_minor >= 0
        if options.after_discounts:
            assert x.base_minor <= x.paid_minor
    shipping = [x for x in b.lines if x.is_shipping]
    assert sum(x.paid_minor for x in shipping) == int(p.shipping * 100)
    if not options.include_shipping:
        assert all(x.base_minor == 0 for x in shipping)
    if options.after_discounts and not options.exclude_gift_card_payments:
        expected = sum(x.paid_minor for x in products) - (0 if options.include_tax else tax)
        assert sum(x.base_minor for x in products) == expected


@given(purchases(), st.data())
def test_an_amount_return_never_takes_more_than_is_left(
    drawn: tuple[PurchaseIn, int, int], data: st.DataObject
) -> None:
    b = build_basket(drawn[0], "EUR", EarningBase())
    left = sum(x.paid_minor for x in b.lines if not x.is_shipping)
    amount = data.draw(st.integers(min_value=0, max_value=left))
    back = returned_per_line(b, [], ret(amount=str(from_minor(amount, "EUR"))), "EUR")
    assert sum(back) == amount
    after = b.after_returns(back)
    for before, now in zip(b.lines, after.lines, strict=True):
        assert 0 <= now.paid_minor <= before.paid_minor
        assert 0 <= now.base_minor <= now.paid_minor


def test_a_basket_adding_up_to_an_absurd_amount_is_refused() -> None:
    # each line is plausible, together they are not: 1,000 x 100,000 x 9,999,999.99
    line = LineIn(unit_price=Decimal("9999999.99"), quantity=100_000)
    purchase = PurchaseIn(external_id="x", currency="EUR", lines=[line] * 1000)
    with pytest.raises(InvalidInput) as refused:
        build_basket(purchase, "EUR", EarningBase())
    assert refused.value.code is ErrorCode.INVALID_AMOUNT
    assert "implausibly large" in refused.value.message
