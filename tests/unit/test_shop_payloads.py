"""The pure part of the shop adapters: signatures, reading the platforms' JSON, returns."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from treu.errors import InvalidInput
from treu.shops import shopify, woocommerce
from treu.shops.model import (
    CancelOrder,
    LineLeft,
    MappingMode,
    ProductMapping,
    RecordPurchase,
    RecordRefund,
    purchase_of,
    returnable_lines,
    sign,
    tags_of,
    verify,
)
from treu.shops.payload import is_ping, money, unit_price_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shops"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes(), parse_float=Decimal)


def test_the_signature_is_base64_of_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"id":820982911946154508,"email":"jon@example.com"}'
    expected = base64.b64encode(hmac.new(b"hush", body, hashlib.sha256).digest()).decode()

    assert sign("hush", body) == expected
    assert verify(["old", "hush"], body, expected)
    assert not verify(["hush"], body + b" ", expected)
    assert not verify(["hush"], body, None)
    assert not verify([], body, expected)
    assert not verify(["hush"], body, "ünicode")


def test_only_woocommerces_ping_body_is_a_ping() -> None:
    assert is_ping(b"webhook_id=12")
    assert not is_ping(b"webhook_id=12&x=1")
    assert not is_ping(b'{"webhook_id": 12}')


def test_money_is_decimal_never_float() -> None:
    assert money("19.99", "price") == Decimal("19.99")
    assert money(Decimal("0.1"), "price") + money("0.2", "price") == Decimal("0.3")
    for bad in (19.99, True, None, "NaN", "1e40", [1]):
        with pytest.raises(InvalidInput):
            money(bad, "price")


def test_a_line_known_by_its_total_gets_a_unit_price_that_covers_it() -> None:
    assert unit_price_of(Decimal("10.00"), 3, 2) == Decimal("3.34")  # 3 × 3.34 − 0.02
    assert unit_price_of(Decimal("9.99"), 3, 2) == Decimal("3.33")
    assert unit_price_of(Decimal("1000"), 3, 0) == Decimal("334")  # JPY has no cents


def test_tags_name_the_category_and_the_brand() -> None:
    assert tags_of([("_category", "Kaffee"), ("Größe", "1 kg")]) == {"category": "Kaffee"}
    assert tags_of([("tags", "bio, category:Tee, brand:Acme")]) == {
        "category": "Tee",
        "brand": "Acme",
    }
    assert tags_of([("category", "  ")]) == {}


def test_a_shopify_order_becomes_a_purchase_without_its_gift_card() -> None:
    plan = shopify.plan("orders/paid", load("shopify_orders_paid.json"))
    [step] = plan.steps
    assert isinstance(step, RecordPurchase)
    purchase, keys = purchase_of(
        step.order, external_id="x", store=None, mode=MappingMode.TAGS, mappings=[]
    )
    assert purchase is not None
    assert keys == ("14501234567890", "14501234567891")
    espresso, jug = purchase.lines
    assert (espresso.unit_price, espresso.quantity, espresso.discount) == (
        Decimal("24.90"),
        2,
        Decimal("4.98"),
    )
    assert (espresso.category, espresso.brand) == ("Kaffee", "Röstwerk Kiez")
    assert (jug.sku, jug.brand, jug.category) == ("ZUB-MK-01", "Acme", None)
    assert (purchase.shipping, purchase.tax) == (Decimal("4.90"), Decimal("4.73"))
    assert step.order.customer.references("s:") == [
        "email:mia.schneider@example.org",
        "phone:+4915112345678",
        "external:s:7390123456789",
    ]


def test_prices_without_tax_are_turned_into_what_the_customer_paid() -> None:
    order = load("shopify_orders_paid.json")
    order["taxes_included"] = False  # a US shop: 24.90 plus 7 %
    [step] = shopify.plan("orders/paid", order).steps
    assert isinstance(step, RecordPurchase)
    purchase, _ = purchase_of(step.order, external_id="x", store=None, mode=MappingMode.TAGS)
    assert purchase is not None
    espresso = purchase.lines[0]
    # 49.80 − 4.98 + 2.93 tax = 47.75 paid, as 2 × 26.37 − 4.99
    assert espresso.unit_price * 2 - espresso.discount == Decimal("47.75")
    assert purchase.shipping == Decimal("5.68")  # 4.90 and its 0.78 tax


def test_the_mapping_table_goes_by_variant_then_product_then_sku() -> None:
    [step] = shopify.plan("orders/paid", load("shopify_orders_paid.json")).steps
    assert isinstance(step, RecordPurchase)
    table = [
        ProductMapping("product", "8012345678901", category="Bohnen"),
        ProductMapping("variant", "44123456789012", category="Kaffee", sku="ESP"),
        ProductMapping("sku", "ZUB-MK-01", brand="Acme"),
    ]
    purchase, _ = purchase_of(
        step.order, external_id="x", store=None, mode=MappingMode.TABLE, mappings=table
    )
    assert purchase is not None
    assert [(x.sku, x.category, x.brand) for x in purchase.lines] == [
        ("ESP", "Kaffee", None),
        ("ZUB-MK-01", None, "Acme"),
    ]


def test_what_each_shopify_topic_does() -> None:
    order = load("shopify_orders_paid.json")
    assert shopify.plan("orders/create", order).steps == ()
    assert shopify.plan("orders/paid", {**order, "test": True}).steps == ()
    assert (
        shopify.plan("orders/updated", order).note
        == "topic 'orders/updated' is not one Treu acts on"
    )
    [cancel] = shopify.plan("orders/cancelled", order).steps
    assert cancel == CancelOrder("5712345678901", None)
    [refund] = shopify.plan("refunds/create", load("shopify_refunds_create.json")).steps
    assert isinstance(refund, RecordRefund)
    assert refund.refund.lines == (("14501234567890", 1),)
    assert refund.refund.amount is None


@pytest.mark.parametrize(
    ("status", "refunds", "steps"),
    [
        ("pending", [], []),
        ("on-hold", [], []),
        ("processing", [], ["purchase"]),
        ("completed", [{"id": 9, "total": "-1.00"}], ["purchase", "refund"]),
        ("cancelled", [], ["cancel"]),
        ("refunded", [{"id": 9, "total": "-37.98"}], ["refund", "cancel"]),
    ],
)
def test_a_woocommerce_order_is_read_as_its_current_state(
    status: str, refunds: list[dict[str, str]], steps: list[str]
) -> None:
    order = load("woocommerce_order.json")
    order.update(status=status, refunds=refunds)
    names = {RecordPurchase: "purchase", RecordRefund: "refund", CancelOrder: "cancel"}

    plan = woocommerce.plan("order.updated", order)

    assert [names[type(s)] for s in plan.steps] == steps
    assert plan.order_id == "4711"


def test_a_refund_returns_only_units_that_are_left() -> None:
    # a line of 2 units paid 44.82 and a line of 1 paid 11.25, one unit of the first returned
    lines = [LineLeft(4482, 2, 2241), LineLeft(1125, 1, 1125), LineLeft(490, 1, 490, True)]

    units = returnable_lines([(0, 2), (1, 1), (2, 1), (7, 1)], lines)

    assert [(u.line, u.quantity) for u in units] == [(0, 1), (1, 1)]
    assert returnable_lines([(0, 1)], [LineLeft(4482, 2, 0)]) == []
