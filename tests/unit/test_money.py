"""Money: decimal amounts at the edges, integer minor units inside, splits that lose no cent."""

from __future__ import annotations

import time
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treu.errors import ErrorCode, InvalidInput
from treu.money import MAX_MINOR, allocate, exponent, format_money, from_minor, to_minor


def refused(amount: object, currency: str = "EUR") -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        to_minor(amount, currency)  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.INVALID_AMOUNT
    return caught.value


# --- to_minor / from_minor -------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("6.80", "EUR", 680),
        (Decimal("6.8"), "EUR", 680),
        ("6.800", "EUR", 680),  # trailing zeros are not extra precision
        (7, "EUR", 700),
        ("0", "EUR", 0),
        ("120.00", "BRL", 12000),
        ("500", "JPY", 500),  # the yen has no minor unit
        ("1.234", "BHD", 1234),  # the Bahraini dinar has three decimals
        ("-1.50", "EUR", -150),  # corrections may be negative
        ("1E+2", "EUR", 10000),
    ],
)
def test_amounts_become_minor_units_of_their_currency(
    amount: str | Decimal | int, currency: str, minor: int
) -> None:
    assert to_minor(amount, currency) == minor


def test_currency_exponents_follow_iso_4217() -> None:
    assert (exponent("EUR"), exponent("JPY"), exponent("BHD")) == (2, 0, 3)


def test_floats_are_refused_for_money() -> None:
    error = refused(6.8)
    assert "floats" in error.message


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("6.805", "EUR"), ("500.5", "JPY"), ("1.2345", "BHD"), ("0.001", "EUR")],
)
def test_more_decimals_than_the_currency_has_are_refused(amount: str, currency: str) -> None:
    error = refused(amount, currency)
    assert f"more decimals than {currency} allows" in error.message


def test_the_field_name_is_part_of_the_message() -> None:
    with pytest.raises(InvalidInput, match=r"lines\.0\.unit_price"):
        to_minor("6.805", "EUR", field="lines.0.unit_price")


@pytest.mark.parametrize("amount", ["abc", "", "6,80", "NaN", "Infinity", "-Infinity", True])
def test_what_is_not_a_finite_number_is_refused(amount: object) -> None:
    refused(amount)


def test_implausibly_large_amounts_are_refused() -> None:
    assert to_minor(str(MAX_MINOR // 100), "EUR") == MAX_MINOR
    error = refused(str(MAX_MINOR // 100 + 1))
    assert "implausibly large" in error.message


def test_precision_beyond_28_digits_is_not_rounded_away() -> None:
    # Decimal arithmetic rounds to 28 significant digits; one cent in the 31st must still count.
    refused("1.0000000000000000000000000000001")
    refused("100.000000000000000000000000001")


@pytest.mark.parametrize("amount", ["1E+999999", "1E-999999", "1E-10000000", "-9E+100"])
def test_extreme_exponents_are_refused_quickly(amount: str) -> None:
    started = time.monotonic()
    refused(amount)
    assert time.monotonic() - started < 1


def test_from_minor_and_format_money() -> None:
    assert from_minor(680, "EUR") == Decimal("6.80")
    assert from_minor(500, "JPY") == Decimal(500)
    assert format_money(680, "EUR") == "6.80 EUR"
    assert format_money(12000, "BRL") == "120.00 BRL"


@given(
    minor=st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR),
    currency=st.sampled_from(["EUR", "JPY", "BHD", "BRL"]),
)
def test_minor_units_survive_the_round_trip(minor: int, currency: str) -> None:
    assert to_minor(from_minor(minor, currency), currency) == minor
    assert to_minor(str(from_minor(minor, currency)), currency) == minor


@given(st.text(max_size=40))
def test_any_text_is_a_number_or_invalid_amount(text: str) -> None:
    outcome: int | ErrorCode
    try:
        outcome = to_minor(text, "EUR")
    except InvalidInput as exc:
        outcome = exc.code
    if isinstance(outcome, ErrorCode):
        assert outcome is ErrorCode.INVALID_AMOUNT
    else:
        assert Fraction(Decimal(text)) * 100 == outcome


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_a_decimal_is_accepted_exactly_when_it_is_a_whole_number_of_cents(value: Decimal) -> None:
    cents = Fraction(value) * 100
    if cents.denominator == 1 and abs(cents) <= MAX_MINOR:
        assert to_minor(value, "EUR") == cents
    else:
        refused(value)


# --- allocate ----------------------------------------------------------------------------


def test_an_order_discount_of_10_over_three_lines_sums_exactly() -> None:
    # 10.00 off lines of 10, 20 and 30: exact shares 1.666…, 3.333…, 5.00
    assert allocate(1000, [1000, 2000, 3000]) == [167, 333, 500]


def test_allocate_gives_the_odd_cent_to_the_largest_remainder() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(10, [0, 5]) == [0, 10]


def test_allocate_with_nothing_to_spread() -> None:
    assert allocate(0, [3, 4]) == [0, 0]
    assert allocate(0, [0, 0]) == [0, 0]
    assert allocate(0, []) == []


def test_allocate_spreads_evenly_when_no_weight_says_otherwise() -> None:
    # tax on top of free lines must still land somewhere, not vanish
    assert allocate(5, [0, 0]) == [3, 2]
    assert allocate(1, [0, 0, 0]) == [1, 0, 0]


def test_allocate_spreads_negative_totals_too() -> None:
    parts = allocate(-7, [1, 2, 3])
    assert sum(parts) == -7


@given(
    total=st.integers(min_value=-(10**9), max_value=10**9),
    weights=st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=30),
)
def test_allocate_always_sums_to_the_total_and_stays_within_one_of_the_exact_share(
    total: int, weights: list[int]
) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert len(parts) == len(weights)
    if sum(weights) == 0:
        weights = [1] * len(weights)
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total * weight, weight_sum)
        assert abs(part - exact) < 1
        if weight == 0:
            assert part == 0
        if total >= 0:
            assert part >= 0
