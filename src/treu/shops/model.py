"""Shop connections and what a shop's order webhooks mean (pure).

A **shop connection** ties one Shopify or WooCommerce shop to a programme. The shop sends its own
order and refund webhooks to ``/v1/shops/{connection id}/{platform}``; both platforms sign the raw
body as ``base64(HMAC-SHA256(secret, body))``, and that signature is the only authentication.

The platform modules (:mod:`treu.shops.shopify`, :mod:`treu.shops.woocommerce`) turn a delivery
into a :class:`Plan`: the order it is about and the steps to take — record the purchase
(:class:`RecordPurchase`), record a refund (:class:`RecordRefund`), take back whatever is left of
the purchase (:class:`CancelOrder`) — or none, with a note why. :func:`purchase_of` turns a
:class:`ShopOrder` into the :class:`~treu.activities.model.PurchaseIn` the activities service
records, its lines classified by product tags or by the connection's mapping table.

Every activity a shop causes has an external id derived from the shop and the platform's ids
(:func:`purchase_external_id`), so a redelivery, or a second topic about the same order, never
records anything twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Literal

from treu.activities.model import LineIn, PurchaseIn, ReturnLineIn
from treu.errors import ErrorCode, InvalidInput
from treu.money import exponent
from treu.shops.payload import unit_price_of

SECRET_PREFIX = "shpsec_"  # noqa: S105 - a public prefix, not a secret
# ``kiezcafe.myshopify.com``, ``shop.example.org``: what names the shop in external ids
SHOP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_ID_LENGTH = 24  # platform ids are 64-bit integers: at most 20 digits


class Platform(StrEnum):
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"


class MappingMode(StrEnum):
    TAGS = "tags"  # category and brand from the order line's own tags (and Shopify's vendor)
    TABLE = "table"  # from the connection's product mapping table


class Outcome(StrEnum):
    RECORDED = "recorded"  # something new was recorded
    UNCHANGED = "unchanged"  # everything the delivery says was recorded before
    IGNORED = "ignored"  # nothing to record (a topic or status that does not earn, …)
    REJECTED = "rejected"  # a rule said no (blocked member, other currency, …): see the code


MatchKind = Literal["variant", "product", "sku"]


@dataclass(frozen=True)
class Connection:
    id: str
    tenant_id: str
    programme_id: str
    platform: Platform
    shop: str
    store: str | None  # the programme's store key purchases are recorded under
    mapping_mode: MappingMode
    auto_enrol: bool
    customer_id_prefix: str  # prepended to the shop's customer id: ``external:<prefix><id>``
    enabled: bool
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None = None


@dataclass(frozen=True)
class ProductMapping:
    """One row of a connection's mapping table: a product (or variant, or SKU) of the shop and
    the SKU, category and brand the programme's rules see."""

    match: MatchKind
    value: str
    category: str | None = None
    brand: str | None = None
    sku: str | None = None


@dataclass(frozen=True)
class Receipt:
    """One webhook delivery Treu acted on; a redelivery of its id finds this and does nothing.
    ``id`` is None for an answer that is not kept (a WooCommerce ping, a disabled connection)."""

    id: str | None
    connection_id: str
    webhook_id: str
    topic: str
    order_id: str | None
    outcome: Outcome
    code: str | None
    detail: str | None
    activity_ids: tuple[str, ...]
    received_at: datetime
    replayed: bool = False


# --- what a delivery says -------------------------------------------------------------------


@dataclass(frozen=True)
class Customer:
    email: str | None = None
    phone: str | None = None
    customer_id: str | None = None
    name: str | None = None

    def references(self, prefix: str = "") -> list[str]:
        """Member references to try, in order: e-mail, phone, the shop's customer id."""
        found = []
        if self.email:
            found.append(f"email:{self.email}")
        if self.phone:
            found.append(f"phone:{self.phone}")
        if self.customer_id:
            found.append(f"external:{prefix}{self.customer_id}")
        return found


@dataclass(frozen=True)
class ShopLine:
    key: str  # the platform's line item id (refunds name lines by it)
    product_id: str | None
    variant_id: str | None
    sku: str | None
    name: str | None
    quantity: int
    # Line amounts, with tax if the order's prices include it (else the tax is beside them):
    gross: Decimal  # before discounts (every unit)
    paid: Decimal  # after the line's discounts, its share of order discounts included
    tax: Decimal  # the line's tax after discounts
    gross_tax: Decimal  # … and before (the same if the platform does not say)
    attributes: tuple[tuple[str, str], ...] = ()  # Shopify properties, WooCommerce meta_data
    vendor: str | None = None
    earns: bool = True  # False for what never earns (gift cards: points when they are spent)


@dataclass(frozen=True)
class ShopOrder:
    id: str
    occurred_at: datetime | None
    currency: str
    customer: Customer
    lines: tuple[ShopLine, ...]
    shipping: Decimal  # what the customer paid for shipping, its tax included
    prices_include_tax: bool
    channel: Literal["online", "pos"] = "online"
    status: str | None = None


@dataclass(frozen=True)
class ShopRefund:
    id: str
    order_id: str
    occurred_at: datetime | None
    lines: tuple[tuple[str, int], ...] = ()  # (line key, units): the goods given back
    amount: Decimal | None = None  # a refund of money without goods (used when no lines)


@dataclass(frozen=True)
class RecordPurchase:
    order: ShopOrder


@dataclass(frozen=True)
class RecordRefund:
    refund: ShopRefund


@dataclass(frozen=True)
class CancelOrder:
    """Take back whatever is left of the purchase (a cancelled or wholly refunded order)."""

    order_id: str
    occurred_at: datetime | None = None


Step = RecordPurchase | RecordRefund | CancelOrder


@dataclass(frozen=True)
class Plan:
    order_id: str | None
    steps: tuple[Step, ...] = ()
    note: str | None = None  # why there is nothing to do


# --- signatures and secrets -----------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes) -> str:
    """``base64(HMAC-SHA256(secret, body))``: the value of ``X-Shopify-Hmac-Sha256`` and of
    ``X-WC-Webhook-Signature`` for ``body`` (the raw bytes, before any JSON parsing)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(candidates: Iterable[str], body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` signs ``body`` with one of the secrets (the current one, and the
    previous one during a rotation's grace period)."""
    if not signature:
        return False
    given = signature.strip().encode("ascii", "replace")
    # compare_digest takes as long whatever the first wrong byte: no timing oracle
    return any(hmac.compare_digest(sign(s, body).encode("ascii"), given) for s in candidates)


def check_secret(secret: str) -> str:
    if not 8 <= len(secret) <= 200 or not secret.isprintable() or secret != secret.strip():
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "secret: 8 to 200 printable characters, no spaces around",
            errors=[{"path": "secret", "message": "8 to 200 printable characters"}],
        )
    return secret


def check_shop(platform: Platform, shop: str) -> str:
    shop = shop.strip().lower()
    problem = None
    if not re.match(SHOP_PATTERN, shop):
        problem = "a host name such as kiezcafe.myshopify.com or shop.example.org (1-64 chars)"
    elif platform is Platform.SHOPIFY and not shop.endswith(".myshopify.com"):
        problem = "the shop's myshopify.com domain (Shopify sends it with every webhook)"
    if problem:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"shop: {problem}",
            errors=[{"path": "shop", "message": problem}],
        )
    return shop


# --- external ids -----------------------------------------------------------------------------


def purchase_external_id(platform: Platform, shop: str, order_id: str) -> str:
    return f"{platform.value}:{shop}:{order_id}"


def refund_external_id(platform: Platform, shop: str, order_id: str, refund_id: str) -> str:
    return f"{purchase_external_id(platform, shop, order_id)}/refund/{refund_id}"


def cancel_external_id(platform: Platform, shop: str, order_id: str) -> str:
    return f"{purchase_external_id(platform, shop, order_id)}/cancel"


def step_external_id(platform: Platform, shop: str, step: Step) -> str:
    if isinstance(step, RecordPurchase):
        return purchase_external_id(platform, shop, step.order.id)
    if isinstance(step, RecordRefund):
        return refund_external_id(platform, shop, step.refund.order_id, step.refund.id)
    return cancel_external_id(platform, shop, step.order_id)


# --- from an order to a purchase ---------------------------------------------------------------


def purchase_of(
    order: ShopOrder,
    *,
    external_id: str,
    store: str | None,
    mode: MappingMode,
    mappings: Sequence[ProductMapping] = (),
) -> tuple[PurchaseIn | None, tuple[str, ...]]:
    """The purchase an order stands for, and the line key of each of its lines (in order); no
    purchase if no line earns (an order of gift cards only)."""
    table: dict[tuple[str, str], ProductMapping] = {(m.match, m.value): m for m in mappings}
    places = _places(order.currency)
    lines: list[LineIn] = []
    keys: list[str] = []
    tax = Decimal(0)
    for line in order.lines:
        if not line.earns or line.quantity <= 0:
            continue
        sku, category, brand = classify(line, mode, table)
        # Each line as the customer paid it, tax included, exactly: a basket spreads an order's
        # tax over the lines by amount, which is wrong where the lines' tax rates differ.
        gross, paid = line.gross, line.paid
        if not order.prices_include_tax:
            gross, paid = gross + line.gross_tax, paid + line.tax
        gross, paid = _round(gross, places), _round(paid, places)
        unit = unit_price_of(max(gross, paid), line.quantity, places)
        lines.append(
            LineIn(
                sku=sku,
                name=(line.name or "")[:200] or None,
                category=category,
                brand=brand,
                quantity=line.quantity,
                unit_price=unit,
                discount=unit * line.quantity - paid,
            )
        )
        keys.append(line.key)
        tax += line.tax
    if not lines:
        return None, ()
    purchase = PurchaseIn(
        external_id=external_id,
        occurred_at=order.occurred_at,
        store=store,
        channel=order.channel,
        currency=order.currency,
        lines=lines,
        shipping=_round(order.shipping, places),
        tax=_round(tax, places),
        prices_include_tax=True,
    )
    return purchase, tuple(keys)


def _places(currency: str) -> int:
    return exponent(currency) if re.fullmatch(r"[A-Z]{3}", currency) else 2


def _round(amount: Decimal, places: int) -> Decimal:
    # the platforms send amounts in the currency's minor unit; a tax of 1.575 (WooCommerce
    # rounding at subtotal level) is rounded as the shop rounds its totals
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def classify(
    line: ShopLine, mode: MappingMode, table: Mapping[tuple[str, str], ProductMapping]
) -> tuple[str | None, str | None, str | None]:
    """(sku, category, brand) of a line as the programme's rules see it."""
    if mode is MappingMode.TABLE:
        for match, value in (("variant", line.variant_id), ("product", line.product_id)):
            found = table.get((match, value)) if value else None
            if found:
                return found.sku or line.sku, found.category, found.brand
        by_sku = table.get(("sku", line.sku)) if line.sku else None
        if by_sku:
            return by_sku.sku or line.sku, by_sku.category, by_sku.brand
        return line.sku, None, None
    tags = tags_of(line.attributes)
    return line.sku, tags.get("category"), tags.get("brand") or _short(line.vendor)


_TAGGED = ("category", "brand")


def tags_of(attributes: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``category`` and ``brand`` from an order line's attributes: an attribute named
    ``category``/``brand`` (a leading ``_`` hides it from the customer in Shopify), or tags
    ``category:Kaffee, brand:Acme`` in an attribute named ``tags``."""
    found: dict[str, str] = {}
    for raw_name, value in attributes:
        name = raw_name.strip().lstrip("_").lower()
        if name in _TAGGED and value.strip():
            found.setdefault(name, _short(value) or "")
        elif name == "tags":
            for tag in value.split(","):
                key, sep, tagged = tag.partition(":")
                key = key.strip().lower()
                if sep and key in _TAGGED and tagged.strip():
                    found.setdefault(key, _short(tagged) or "")
    return {k: v for k, v in found.items() if v}


def _short(value: str | None) -> str | None:
    return value.strip()[:64] or None if value else None


# --- returns ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineLeft:
    """A purchase line as a return sees it: what was paid, for how many units, what is left."""

    paid_minor: int
    quantity: int
    left_minor: int
    is_shipping: bool = False


def returnable_lines(
    wanted: Iterable[tuple[int, int]], lines: Sequence[LineLeft]
) -> list[ReturnLineIn]:
    """The (line index, units) of a refund that can still be returned: units of a line already
    returned (by an earlier refund or a cancellation) are left out, so a refund that arrives
    after the cancellation of its order takes back nothing twice."""
    taken: dict[int, int] = {}
    for index, units in wanted:
        if not 0 <= index < len(lines) or lines[index].is_shipping or units <= 0:
            continue
        taken[index] = taken.get(index, 0) + units
    out = []
    for index, units in sorted(taken.items()):
        line = lines[index]
        units = min(units, line.quantity)
        # the most units whose share (as record_return computes it) fits in what is left
        while units > 0 and line.paid_minor * units // line.quantity > line.left_minor:
            units -= 1
        if units > 0:
            out.append(ReturnLineIn(line=index, quantity=units))
    return out


def left_on_products(lines: Sequence[LineLeft]) -> int:
    return sum(line.left_minor for line in lines if not line.is_shipping)


@dataclass(frozen=True)
class Delivery:
    """What the receiving endpoint hands the service: the platform's headers, the raw body."""

    platform: Platform
    body: bytes
    signature: str | None
    topic: str | None
    webhook_id: str | None
    shop_domain: str | None = None  # Shopify's X-Shopify-Shop-Domain
