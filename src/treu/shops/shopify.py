"""Shopify's order webhooks, read (pure).

Headers: ``X-Shopify-Hmac-Sha256`` (the signature), ``X-Shopify-Topic``, ``X-Shopify-Webhook-Id``
(the same on every retry of one delivery), ``X-Shopify-Shop-Domain``. Bodies are the REST
resources: an order for ``orders/*``, a refund for ``refunds/create``. Amounts are decimal
strings in the shop's currency (``price``, ``discounted_price``, ``amount``), which is the order's
``currency``; ``presentment_money`` (what the customer saw) is not used.

What each topic does:

* ``orders/paid`` — records the purchase. Shopify sends it for every order that is paid, also
  when it was paid at checkout, so this is the one topic that earns. Test orders
  (``"test": true``) earn nothing.
* ``orders/create`` — nothing: an order that is created is not yet paid (payment pending, a
  draft order, cash on delivery); it earns when ``orders/paid`` arrives.
* ``refunds/create`` — a partial return: the refunded units (``refund_line_items``), or, for a
  refund of money without goods, its amount less any shipping refunded.
* ``orders/cancelled`` — takes back whatever is left of the purchase.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from treu.shops.model import (
    CancelOrder,
    Customer,
    Plan,
    RecordPurchase,
    RecordRefund,
    ShopLine,
    ShopOrder,
    ShopRefund,
)
from treu.shops.payload import (
    an_id,
    count,
    instant,
    items,
    maybe_id,
    maybe_money,
    money,
    obj,
    optional_obj,
    pairs,
    text,
)

TOPICS = ("orders/paid", "orders/create", "orders/cancelled", "refunds/create")


def plan(topic: str, data: Any) -> Plan:
    body = obj(data, "(body)")
    if topic == "orders/paid":
        order = parse_order(body)
        if body.get("test") is True:  # the Bogus gateway, or an admin's "Send test"
            return Plan(order.id, note="a test order earns nothing")
        return Plan(order.id, (RecordPurchase(order),))
    if topic == "orders/cancelled":
        order_id = an_id(body.get("id"), "id")
        at = instant(body.get("cancelled_at"), "cancelled_at")
        return Plan(order_id, (CancelOrder(order_id, at),))
    if topic == "refunds/create":
        refund = parse_refund(body)
        return Plan(refund.order_id, (RecordRefund(refund),))
    about = maybe_id(body.get("id"), "id") if topic.startswith("orders/") else None
    if topic == "orders/create":
        return Plan(about, note="a Shopify order earns when it is paid (orders/paid)")
    return Plan(about, note=f"topic {topic!r} is not one Treu acts on")


def parse_order(body: dict[str, Any]) -> ShopOrder:
    taxes_included = body.get("taxes_included") is True
    lines = tuple(
        _line(obj(item, f"line_items.{i}"), f"line_items.{i}")
        for i, item in enumerate(items(body.get("line_items"), "line_items"))
    )
    shipping = Decimal(0)
    for i, ship in enumerate(items(body.get("shipping_lines"), "shipping_lines")):
        path = f"shipping_lines.{i}"
        ship = obj(ship, path)
        if ship.get("is_removed") is True:
            continue
        price = ship.get("discounted_price", ship.get("price"))
        shipping += money(price, f"{path}.discounted_price")
        if not taxes_included:  # the customer paid the shipping's tax on top
            shipping += _taxes(ship, path)
    return ShopOrder(
        id=an_id(body.get("id"), "id"),
        occurred_at=instant(body.get("processed_at") or body.get("created_at"), "processed_at"),
        currency=str(text(body.get("currency")) or "").upper(),
        customer=_customer(body),
        lines=lines,
        shipping=shipping,
        prices_include_tax=taxes_included,
        channel="pos" if body.get("source_name") == "pos" else "online",
        status=text(body.get("financial_status")),
    )


def _line(item: dict[str, Any], path: str) -> ShopLine:
    quantity = count(item.get("quantity"), f"{path}.quantity")
    gross = money(item.get("price"), f"{path}.price") * quantity
    discount = sum(
        (
            money(obj(a, f"{path}.discount_allocations.{j}").get("amount"), f"{path}.amount")
            for j, a in enumerate(items(item.get("discount_allocations"), f"{path}.discounts"))
        ),
        Decimal(0),
    )
    tax = _taxes(item, path)
    return ShopLine(
        key=an_id(item.get("id"), f"{path}.id"),
        product_id=maybe_id(item.get("product_id"), f"{path}.product_id"),
        variant_id=maybe_id(item.get("variant_id"), f"{path}.variant_id"),
        sku=_sku(item.get("sku")),
        name=text(item.get("title")) or text(item.get("name")),
        quantity=quantity,
        gross=gross,
        paid=max(Decimal(0), gross - discount),
        tax=tax,
        gross_tax=tax,  # Shopify gives a line's tax after discounts only
        attributes=pairs(item.get("properties"), f"{path}.properties", "name", "value"),
        vendor=text(item.get("vendor")),
        earns=item.get("gift_card") is not True,
    )


def _taxes(item: dict[str, Any], path: str) -> Decimal:
    return sum(
        (
            money(obj(t, f"{path}.tax_lines.{k}").get("price"), f"{path}.tax_lines.{k}.price")
            for k, t in enumerate(items(item.get("tax_lines"), f"{path}.tax_lines"))
        ),
        Decimal(0),
    )


def _customer(body: dict[str, Any]) -> Customer:
    customer = optional_obj(body.get("customer"))  # null for some POS and draft orders
    billing = optional_obj(body.get("billing_address"))
    first, last = text(customer.get("first_name")), text(customer.get("last_name"))
    email = text(body.get("email")) or text(body.get("contact_email"))
    phone = text(body.get("phone")) or text(customer.get("phone")) or text(billing.get("phone"))
    return Customer(
        email=email or text(customer.get("email")),
        phone=phone,
        customer_id=maybe_id(customer.get("id"), "customer.id"),
        name=" ".join(p for p in (first, last) if p) or None,
    )


def parse_refund(body: dict[str, Any]) -> ShopRefund:
    lines = []
    for i, entry in enumerate(items(body.get("refund_line_items"), "refund_line_items")):
        path = f"refund_line_items.{i}"
        entry = obj(entry, path)
        key = entry.get("line_item_id")
        if key is None and isinstance(entry.get("line_item"), dict):
            key = entry["line_item"].get("id")
        lines.append((an_id(key, f"{path}.line_item_id"), count(entry.get("quantity"), path)))
    amount = None if lines else _money_refunded(body)
    return ShopRefund(
        id=an_id(body.get("id"), "id"),
        order_id=an_id(body.get("order_id"), "order_id"),
        occurred_at=instant(body.get("processed_at") or body.get("created_at"), "created_at"),
        lines=tuple(lines),
        amount=amount,
    )


def _money_refunded(body: dict[str, Any]) -> Decimal:
    """A refund without goods: the money refunded, less what of it was for shipping."""
    paid_back = Decimal(0)
    for i, tx in enumerate(items(body.get("transactions"), "transactions")):
        tx = obj(tx, f"transactions.{i}")
        if tx.get("kind") == "refund" and tx.get("status") == "success":
            paid_back += money(tx.get("amount"), f"transactions.{i}.amount")
    shipping = Decimal(0)
    for i, adj in enumerate(items(body.get("order_adjustments"), "order_adjustments")):
        adj = obj(adj, f"order_adjustments.{i}")
        if adj.get("kind") == "shipping_refund":
            shipping += abs(maybe_money(adj.get("amount"), f"order_adjustments.{i}.amount"))
            shipping += abs(maybe_money(adj.get("tax_amount"), f"order_adjustments.{i}.tax"))
    for i, ship in enumerate(items(body.get("refund_shipping_lines"), "refund_shipping_lines")):
        path = f"refund_shipping_lines.{i}"
        money_set = obj(ship, path).get("subtotal_amount_set")
        shop_money = money_set.get("shop_money") if isinstance(money_set, dict) else None
        if isinstance(shop_money, dict):
            shipping += abs(money(shop_money.get("amount"), f"{path}.subtotal_amount_set"))
    return max(Decimal(0), paid_back - shipping)


def _sku(value: Any) -> str | None:
    found = text(value)
    return found[:64] if found else None
