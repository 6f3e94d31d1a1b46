"""WooCommerce's order webhooks, read (pure).

Headers: ``X-WC-Webhook-Signature`` (the signature), ``X-WC-Webhook-Topic`` (``order.created``,
``order.updated``), ``X-WC-Webhook-Delivery-ID`` (new for every delivery), ``X-WC-Webhook-Source``.
The body is the order as the REST API (v3) shows it; amounts are decimal strings, line amounts
without tax (``subtotal`` before discounts, ``total`` after, ``total_tax`` beside them).

WooCommerce sends the whole order on every change, so each delivery is read as the order's
current state, whatever its topic:

* status ``processing`` or ``completed`` (paid) — the purchase is recorded;
* every entry in ``refunds`` — a partial return of its amount (WooCommerce gives refunds only
  as amounts in the order: they are spread over the lines left);
* status ``cancelled`` or ``refunded`` — whatever is left of the purchase is taken back;
* any other status (``pending``, ``on-hold``, ``failed``, ``checkout-draft``) — nothing yet.

All of it is idempotent (external ids from the order and refund ids), so the tenth
``order.updated`` of an order records nothing again.
"""

from __future__ import annotations

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
    Step,
)
from treu.shops.payload import (
    an_id,
    bad,
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

TOPICS = ("order.created", "order.updated")
PAID = frozenset({"processing", "completed"})
CANCELLED = frozenset({"cancelled", "refunded"})


def plan(topic: str, data: Any) -> Plan:
    body = obj(data, "(body)")
    if topic not in TOPICS:
        order_id = maybe_id(body.get("id"), "id") if topic.startswith("order.") else None
        return Plan(order_id, note=f"topic {topic!r} is not one Treu acts on")
    order = parse_order(body)
    steps: list[Step] = []
    if order.status in PAID:
        steps.append(RecordPurchase(order))
    if order.status in PAID or order.status in CANCELLED:
        steps.extend(RecordRefund(r) for r in parse_refunds(body, order.id))
    if order.status in CANCELLED:
        steps.append(CancelOrder(order.id))
    if not steps:
        return Plan(order.id, note=f"status {order.status!r}: nothing to record yet")
    return Plan(order.id, tuple(steps))


def parse_order(body: dict[str, Any]) -> ShopOrder:
    currency = str(text(body.get("currency")) or "").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise bad("currency", "expected an ISO 4217 code")
    lines = tuple(
        _line(obj(item, f"line_items.{i}"), f"line_items.{i}")
        for i, item in enumerate(items(body.get("line_items"), "line_items"))
    )
    shipping = maybe_money(body.get("shipping_total"), "shipping_total") + maybe_money(
        body.get("shipping_tax"), "shipping_tax"
    )
    status = (text(body.get("status")) or "").removeprefix("wc-")
    return ShopOrder(
        id=an_id(body.get("id"), "id"),
        occurred_at=instant(body.get("date_created_gmt"), "date_created_gmt", naive_is_utc=True),
        currency=currency,
        customer=_customer(body),
        lines=lines,
        shipping=shipping,
        prices_include_tax=False,  # line amounts are without tax, whatever the shop shows
        status=status,
    )


def _line(item: dict[str, Any], path: str) -> ShopLine:
    quantity = count(item.get("quantity"), f"{path}.quantity")
    total = money(item.get("total"), f"{path}.total")
    return ShopLine(
        key=an_id(item.get("id"), f"{path}.id"),
        product_id=maybe_id(item.get("product_id"), f"{path}.product_id"),
        variant_id=maybe_id(item.get("variation_id"), f"{path}.variation_id"),
        sku=(text(item.get("sku")) or "")[:64] or None,
        name=text(item.get("name")),
        quantity=quantity,
        gross=money(item.get("subtotal"), f"{path}.subtotal"),
        paid=total,
        tax=maybe_money(item.get("total_tax"), f"{path}.total_tax"),
        gross_tax=maybe_money(item.get("subtotal_tax"), f"{path}.subtotal_tax"),
        attributes=pairs(item.get("meta_data"), f"{path}.meta_data", "key", "value"),
        earns=quantity > 0 and total >= 0,
    )


def _customer(body: dict[str, Any]) -> Customer:
    billing = optional_obj(body.get("billing"))
    first, last = text(billing.get("first_name")), text(billing.get("last_name"))
    return Customer(
        email=text(billing.get("email")),
        phone=text(billing.get("phone")),
        customer_id=maybe_id(body.get("customer_id"), "customer_id"),  # 0: a guest checkout
        name=" ".join(p for p in (first, last) if p) or None,
    )


def parse_refunds(body: dict[str, Any], order_id: str) -> list[ShopRefund]:
    refunds = []
    for i, entry in enumerate(items(body.get("refunds"), "refunds")):
        entry = obj(entry, f"refunds.{i}")
        amount = abs(money(entry.get("total"), f"refunds.{i}.total"))  # sent negative
        refund_id = an_id(entry.get("id"), f"refunds.{i}.id")
        refunds.append(ShopRefund(refund_id, order_id, None, amount=amount))
    return sorted(refunds, key=lambda r: int(r.id) if r.id.isdigit() else 0)
