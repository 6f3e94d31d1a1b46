"""Reading a platform's JSON (pure): typed values out of ``Any``, with the field path in errors.

Amounts are taken as the platforms send them — decimal strings, or JSON numbers parsed as
``Decimal`` (``json.loads(…, parse_float=Decimal)``) — and never become floats.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from treu.errors import ErrorCode, InvalidInput

MAX_ID_LENGTH = 24  # platform ids are 64-bit integers: at most 20 digits


def bad(path: str, message: str) -> InvalidInput:
    return InvalidInput(
        ErrorCode.VALIDATION_ERROR,
        f"{path}: {message}",
        errors=[{"path": path, "message": message}],
    )


def obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(path, "expected a JSON object")
    return value


def optional_obj(value: Any) -> dict[str, Any]:
    """An object that may be missing or null (an order without a customer): {} then."""
    return value if isinstance(value, dict) else {}


def items(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(path, "expected a list")
    return value


def an_id(value: Any, path: str) -> str:
    """A platform id (an integer, sometimes sent as a string)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad(path, "expected an id")
    text = str(value).strip()
    if not text or len(text) > MAX_ID_LENGTH or not text.isalnum():
        raise bad(path, "expected an id")
    return text


def maybe_id(value: Any, path: str) -> str | None:
    return None if value in (None, "", 0) else an_id(value, path)


def money(value: Any, path: str) -> Decimal:
    """An amount as the platforms send it: a decimal string ("19.99"), or a JSON number parsed
    as Decimal (``json.loads(…, parse_float=Decimal)``) — never a float."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise bad(path, 'expected an amount such as "19.99"')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise bad(path, f"{value!r} is not an amount") from None
    if not amount.is_finite():
        raise bad(path, f"{value!r} is not an amount")
    # bounds that keep every sum and division exact and small; purchases are checked again
    if amount and (amount.adjusted() > 12 or int(amount.as_tuple().exponent) < -12):
        raise bad(path, f"{value!r} is not a plausible amount")
    return amount


def maybe_money(value: Any, path: str) -> Decimal:
    return Decimal(0) if value in (None, "") else money(value, path)


def count(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise bad(path, "expected a whole number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise bad(path, "expected a whole number") from None
    if not number.is_finite() or number != number.to_integral_value() or abs(number) > 10**9:
        raise bad(path, "expected a whole number")
    return int(number)


def text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list | bool):
        return None
    found = str(value).strip()
    return found or None


def instant(value: Any, path: str, *, naive_is_utc: bool = False) -> datetime | None:
    """An ISO 8601 time; WooCommerce's ``*_gmt`` fields carry no offset (``naive_is_utc``)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise bad(path, "expected a time")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise bad(path, f"{value!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        if not naive_is_utc:
            raise bad(path, "needs a timezone offset")
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


def pairs(value: Any, path: str, key: str, val: str) -> tuple[tuple[str, str], ...]:
    """Name/value attributes (Shopify ``properties``, WooCommerce ``meta_data``) as text pairs;
    values that are not text (WooCommerce keeps arrays there too) are left out."""
    found = []
    for entry in items(value, path):
        if isinstance(entry, dict):
            name, content = text(entry.get(key)), entry.get(val)
            if name and isinstance(content, str | int | Decimal) and not isinstance(content, bool):
                found.append((name, str(content)))
    return tuple(found)


def is_ping(body: bytes) -> bool:
    """WooCommerce's ping when a webhook is saved: ``webhook_id=<id>``, form-encoded, unsigned;
    it must be answered 200 or the webhook is not activated."""
    return re.fullmatch(rb"webhook_id=\d{1,20}", body.strip()) is not None


def unit_price_of(line_total: Decimal, quantity: int, exponent: int) -> Decimal:
    """A unit price for a line known only by its total: rounded up to the currency's minor
    unit, so that ``quantity × unit price`` covers the total and the difference can be given as
    a (non-negative) line discount — 10.00 for 3 units is 3 × 3.34 less 0.02."""
    step = Decimal(1).scaleb(-exponent)
    units = Decimal(math.ceil(line_total / quantity / step))
    return (units * step).quantize(step)
