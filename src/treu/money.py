"""Currency amounts: ``Decimal`` at the edges, integer minor units inside and in storage."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import cache

from babel.numbers import get_currency_precision

from treu.errors import ErrorCode, InvalidInput

# Anything above this is a typo or an attack, not a purchase (10 million in major units).
MAX_MINOR = 10_000_000 * 10**4


@cache
def exponent(currency: str) -> int:
    return int(get_currency_precision(currency))


def to_minor(amount: Decimal | str | int, currency: str, *, field: str = "amount") -> int:
    """Convert a decimal amount to minor units, refusing sub-minor precision and floats."""
    if isinstance(amount, float):
        raise InvalidInput(ErrorCode.INVALID_AMOUNT, f"{field}: floats are not accepted for money")
    try:
        value = Decimal(str(amount))
    except InvalidOperation as exc:
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT, f"{field}: {amount!r} is not a number"
        ) from exc
    if not value.is_finite():
        raise InvalidInput(ErrorCode.INVALID_AMOUNT, f"{field}: {amount!r} is not a finite number")
    # Exact arithmetic: Decimal.scaleb rounds to the context's 28 digits (so "1.000…0001" passed
    # as 1.00) and overflows on huge exponents; the bounds keep the Fraction small.
    if value and value.adjusted() > 20:
        raise InvalidInput(ErrorCode.INVALID_AMOUNT, f"{field}: {amount} is implausibly large")
    sign, digits, power = value.as_tuple()
    places = exponent(currency)
    if int(power) + places >= 0:  # no finer than the minor unit (the usual case): integers only
        minor = int("".join(map(str, digits))) * int(10 ** (int(power) + places))
        minor = -minor if sign else minor
        if abs(minor) > MAX_MINOR:
            raise InvalidInput(ErrorCode.INVALID_AMOUNT, f"{field}: {amount} is implausibly large")
        return minor
    too_fine = int(power) < -30
    scaled = Fraction(0) if too_fine else Fraction(value) * 10 ** exponent(currency)
    if too_fine or scaled.denominator != 1:
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT,
            f"{field}: {amount} has more decimals than {currency} allows",
        )
    minor = int(scaled)
    if abs(minor) > MAX_MINOR:
        raise InvalidInput(ErrorCode.INVALID_AMOUNT, f"{field}: {amount} is implausibly large")
    return minor


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def format_money(minor: int, currency: str) -> str:
    return f"{from_minor(minor, currency)} {currency}"


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` over ``weights`` proportionally, exactly (largest remainder).

    The parts always sum to ``total``; used to spread order discounts, tax and returns over lines
    without creating or losing a cent.
    """
    weight_sum = sum(weights)
    if weight_sum == 0:  # nothing to go by (free lines, yet tax on top): spread evenly
        if not weights:
            return []
        weights = [1 for _ in weights]
        weight_sum = len(weights)
    shares = [total * w // weight_sum for w in weights]
    remainders = sorted(
        range(len(weights)), key=lambda i: (total * weights[i]) % weight_sum, reverse=True
    )
    for i in remainders[: total - sum(shares)]:
        shares[i] += 1
    return shares
