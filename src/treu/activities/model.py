"""Activities as data, and the earning base of a basket (pure).

A purchase arrives as a :class:`PurchaseIn` (decimal money, as a till or shop sends it) and is
turned into a :class:`Basket`: one :class:`Line` per order line with what the customer paid for it
(``paid_minor``) and the part of that which earns points (``base_minor``) under the programme's
:class:`EarningBase`. Order discounts, tax and gift-card payments are spread over the lines in
proportion to their amounts (largest remainder, so no cent is created or lost); shipping becomes
a line of its own that only earns when the programme says so.

Returns reduce ``paid_minor`` per line, by units of a line or by an amount spread over the lines;
the purchase's points are then recomputed on what is left (see ``treu.activities.service``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from treu.errors import ErrorCode, InvalidInput, Rejected
from treu.money import MAX_MINOR, allocate, exponent, format_money, from_minor, to_minor


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a timezone offset, e.g. 2026-03-02T08:10:00+01:00")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("10000000"), allow_inf_nan=False)]
ExternalId = Annotated[str, Field(min_length=1, max_length=128)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineIn(_In):
    sku: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=64)
    brand: str | None = Field(default=None, max_length=64)
    quantity: int = Field(default=1, gt=0, le=100_000)
    unit_price: Money
    discount: Money = Decimal(0)


class PaymentIn(_In):
    method: Literal["card", "cash", "gift_card", "store_credit", "voucher", "other"]
    amount: Money


class PurchaseIn(_In):
    """A purchase: either ``lines`` or a bare ``total`` (a till that knows no lines)."""

    external_id: ExternalId
    occurred_at: AwareDatetime | None = None
    store: str | None = Field(default=None, max_length=64)
    channel: Literal["pos", "online", "app", "other"] | None = None
    currency: str = Field(min_length=3, max_length=3)
    lines: list[LineIn] = Field(default_factory=list, max_length=1000)
    total: Money | None = None
    order_discount: Money = Decimal(0)
    shipping: Money = Decimal(0)
    tax: Money = Decimal(0)
    prices_include_tax: bool = True
    payments: list[PaymentIn] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _lines_or_total(self) -> PurchaseIn:
        if bool(self.lines) == (self.total is not None):
            raise ValueError("give either lines or total, not both and not neither")
        return self

    def effective_lines(self) -> list[LineIn]:
        if self.lines:
            return self.lines
        assert self.total is not None
        return [LineIn(name="total", unit_price=self.total)]


class ReturnLineIn(_In):
    line: int = Field(ge=0, description="index of the line in the purchase")
    quantity: int = Field(gt=0)


class ReturnIn(_In):
    """A return of whole units (``lines``) or of an ``amount`` (spread over the lines)."""

    external_id: ExternalId
    purchase_external_id: ExternalId
    occurred_at: AwareDatetime | None = None
    lines: list[ReturnLineIn] = Field(default_factory=list)
    amount: Money | None = None

    @model_validator(mode="after")
    def _lines_or_amount(self) -> ReturnIn:
        if bool(self.lines) == (self.amount is not None):
            raise ValueError("give either lines or amount, not both and not neither")
        return self


class ActionIn(_In):
    external_id: ExternalId
    type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    occurred_at: AwareDatetime | None = None
    store: str | None = Field(default=None, max_length=64)
    channel: Literal["pos", "online", "app", "other"] | None = None
    attributes: dict[str, str | int | bool] = Field(default_factory=dict)
    target: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="what the action is about (the product reviewed): limits per target",
    )


class EarningBase(_In):
    """Which part of what the customer paid earns points."""

    include_tax: bool = True
    include_shipping: bool = False
    after_discounts: bool = True
    exclude_gift_card_payments: bool = True


@dataclass(frozen=True)
class Line:
    sku: str | None
    category: str | None
    brand: str | None
    quantity: int
    paid_minor: int
    base_minor: int
    is_shipping: bool = False


@dataclass(frozen=True)
class Basket:
    currency: str
    exponent: int
    lines: tuple[Line, ...]

    @property
    def paid_minor(self) -> int:
        return sum(line.paid_minor for line in self.lines)

    @property
    def base_minor(self) -> int:
        return sum(line.base_minor for line in self.lines)

    def format(self, minor: int) -> str:
        return format_money(minor, self.currency)

    def after_returns(self, returned_minor: list[int]) -> Basket:
        """The basket with ``returned_minor[i]`` taken off the paid amount of product line i."""
        lines = []
        for i, line in enumerate(self.lines):
            back = returned_minor[i] if i < len(returned_minor) else 0
            if back == 0 or line.paid_minor == 0:
                lines.append(line)
                continue
            left = line.paid_minor - back
            lines.append(
                replace(
                    line,
                    # a line returned in full is no longer in the basket: no rule matches it
                    quantity=line.quantity if left else 0,
                    paid_minor=left,
                    base_minor=line.base_minor * left // line.paid_minor,
                )
            )
        return replace(self, lines=tuple(lines))


def build_basket(purchase: PurchaseIn, currency: str, base: EarningBase) -> Basket:
    if purchase.currency.upper() != currency:
        raise InvalidInput(
            ErrorCode.CURRENCY_MISMATCH,
            f"the programme counts in {currency}, the purchase is in {purchase.currency}",
        )
    items = purchase.effective_lines()
    gross = [
        to_minor(item.unit_price, currency, field=f"lines.{i}.unit_price") * item.quantity
        for i, item in enumerate(items)
    ]
    line_discounts = [
        to_minor(item.discount, currency, field=f"lines.{i}.discount")
        for i, item in enumerate(items)
    ]
    if sum(gross) > MAX_MINOR:
        raise InvalidInput(
            ErrorCode.INVALID_AMOUNT,
            f"the basket comes to more than {from_minor(MAX_MINOR, currency)} {currency}:"
            " implausibly large",
        )
    for i, (g, d) in enumerate(zip(gross, line_discounts, strict=True)):
        if d > g:
            raise InvalidInput(
                ErrorCode.INVALID_AMOUNT, f"lines.{i}.discount exceeds the line amount"
            )
    after_line = [g - d for g, d in zip(gross, line_discounts, strict=True)]
    order_discount = to_minor(purchase.order_discount, currency, field="order_discount")
    if order_discount > sum(after_line):
        raise InvalidInput(ErrorCode.INVALID_AMOUNT, "order_discount exceeds the order amount")
    paid = [a - d for a, d in zip(after_line, allocate(order_discount, after_line), strict=True)]
    tax = to_minor(purchase.tax, currency, field="tax")
    if purchase.prices_include_tax and tax > sum(paid):
        raise InvalidInput(ErrorCode.INVALID_AMOUNT, "tax exceeds the order amount")
    tax_parts = allocate(tax, paid)
    if not purchase.prices_include_tax:
        paid = [p + t for p, t in zip(paid, tax_parts, strict=True)]

    # ``paid`` includes tax by now; ``gross`` is the prices as given (with or without tax)
    earning = list(paid) if base.after_discounts else list(gross)
    tax_in_earning = base.after_discounts or purchase.prices_include_tax
    if tax_in_earning != base.include_tax:
        sign = -1 if tax_in_earning else 1
        earning = [e + sign * t for e, t in zip(earning, tax_parts, strict=True)]
    if base.exclude_gift_card_payments:
        gift = sum(
            to_minor(p.amount, currency, field="payments")
            for p in purchase.payments
            if p.method in ("gift_card", "store_credit")
        )
        gift_parts = allocate(min(gift, sum(paid)), paid)
        earning = [e - g for e, g in zip(earning, gift_parts, strict=True)]
    lines = [
        Line(item.sku, item.category, item.brand, item.quantity, p, max(0, e))
        for item, p, e in zip(items, paid, earning, strict=True)
    ]
    shipping = to_minor(purchase.shipping, currency, field="shipping")
    if shipping:
        lines.append(
            Line(
                None,
                None,
                None,
                1,
                shipping,
                shipping if base.include_shipping else 0,
                is_shipping=True,
            )
        )
    return Basket(currency, exponent(currency), tuple(lines))


def returned_per_line(
    basket: Basket, already: list[int], ret: ReturnIn, currency: str
) -> list[int]:
    """What this return takes off each line's paid amount, checked against what is left."""
    n = len(basket.lines)
    left = [
        line.paid_minor - (already[i] if i < len(already) else 0)
        for i, line in enumerate(basket.lines)
    ]
    back = [0] * n
    if ret.lines:
        for item in ret.lines:
            if item.line >= n or basket.lines[item.line].is_shipping:
                raise InvalidInput(
                    ErrorCode.VALIDATION_ERROR, f"the purchase has no line {item.line}"
                )
            line = basket.lines[item.line]
            unit_share = line.paid_minor * item.quantity // line.quantity
            back[item.line] += unit_share
    else:
        assert ret.amount is not None
        amount = to_minor(ret.amount, currency, field="amount")
        products = [x if not basket.lines[i].is_shipping else 0 for i, x in enumerate(left)]
        if amount > sum(products):
            raise Rejected(
                ErrorCode.RETURN_EXCEEDS_PURCHASE,
                f"return of {format_money(amount, currency)} exceeds the "
                f"{format_money(sum(products), currency)} left on the purchase",
            )
        back = allocate(amount, products)
    for i in range(n):
        if back[i] > left[i]:
            raise Rejected(
                ErrorCode.RETURN_EXCEEDS_PURCHASE, f"line {i} has not that much left to return"
            )
    return back
