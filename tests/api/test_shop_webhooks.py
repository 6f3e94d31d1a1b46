"""Shopify and WooCommerce send their own order webhooks; Treu records purchases and returns.

The payloads are real-format fixtures (tests/fixtures/shops/) modelled on the platforms'
documentation. Mia's Shopify order #1042: 2 × espresso at 24.90 (coffee, 10 % off: 44.82),
a milk jug by Acme at 12.50 (11.25 after discount), a 25 € gift card (never earns) and 4.90
shipping (does not earn here). A point per euro on 56.07 €, one more per euro of coffee (44.82)
and of Acme (11.25): 112.14, rounded once per activity: 112.

The points are rounded once per activity and the remainders go to the rules with the largest
ones (see treu.rules.model), which is why a refund's arithmetic is spelled out where it is tested.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from api_support import Tenant
from fastapi.testclient import TestClient
from shop_support import (
    SHOPIFY_SECRET,
    activity_rows,
    balance,
    cafe,
    connect,
    fixture,
    receipts,
    shopify,
    sign,
    woocommerce,
)
from sqlalchemy import Engine

MIA = "mia.schneider@example.org"


@pytest.fixture
def kiez(engine: Engine, client: TestClient) -> Tenant:
    return cafe(engine, client)


@pytest.fixture
def mia(kiez: Tenant) -> dict[str, Any]:
    return kiez.enrol(MIA, name="Mia Schneider")


# --- Shopify -------------------------------------------------------------------------------------


def test_a_paid_shopify_order_earns_points_for_the_member(
    kiez: Tenant, mia: dict[str, Any], engine: Engine
) -> None:
    connection = connect(kiez, "shopify")

    r = shopify(kiez, connection, "orders/paid", fixture("shopify_orders_paid.json"))

    assert r.status_code == 200, r.text
    receipt = r.json()
    assert receipt["outcome"] == "recorded"
    assert receipt["order_id"] == "5712345678901"
    assert balance(kiez, mia["id"]) == 112
    [purchase] = activity_rows(engine, kiez.id)
    assert purchase.external_id == "shopify:kiezcafe.myshopify.com:5712345678901"
    assert purchase.member_id == mia["id"]
    assert purchase.channel == "online"
    # the customer paid 44.82 + 11.25 for goods and 4.90 for shipping; the gift card is not in it
    assert (purchase.paid_minor, purchase.base_minor) == (4482 + 1125 + 490, 4482 + 1125)
    assert receipt["activity_ids"] == [purchase.id]
    history = kiez.get(f"/v1/members/{mia['id']}/history").json()["data"]
    assert any(entry.get("points") == 112 for entry in history), history


def test_orders_create_is_acknowledged_and_the_order_earns_once_when_paid(
    kiez: Tenant, mia: dict[str, Any], engine: Engine
) -> None:
    connection = connect(kiez, "shopify")
    order = fixture("shopify_orders_paid.json")
    order["financial_status"] = "pending"

    created = shopify(kiez, connection, "orders/create", order)
    assert created.status_code == 200, created.text
    assert created.json()["outcome"] == "ignored"
    assert "orders/paid" in created.json()["detail"]
    assert balance(kiez, mia["id"]) == 0

    order["financial_status"] = "paid"
    assert shopify(kiez, connection, "orders/paid", order).json()["outcome"] == "recorded"
    # another delivery about the same order (a new webhook id) records nothing again
    again = shopify(kiez, connection, "orders/paid", order)
    assert again.json()["outcome"] == "unchanged"
    assert balance(kiez, mia["id"]) == 112
    assert len(activity_rows(engine, kiez.id)) == 1


@pytest.mark.parametrize(
    "how",
    ["wrong secret", "no signature", "tampered body", "unknown connection", "other shop"],
)
def test_a_delivery_that_is_not_signed_with_the_secret_is_refused_and_nothing_is_recorded(
    kiez: Tenant, mia: dict[str, Any], engine: Engine, how: str
) -> None:
    connection = connect(kiez, "shopify")
    order = fixture("shopify_orders_paid.json")
    body = json.dumps(order).encode()
    headers = {
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Hmac-Sha256": sign(SHOPIFY_SECRET, body),
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Shop-Domain": "kiezcafe.myshopify.com",
        "Content-Type": "application/json",
    }
    url = f"/v1/shops/{connection['id']}/shopify"
    if how == "wrong secret":
        headers["X-Shopify-Hmac-Sha256"] = sign("not-the-secret", body)
    elif how == "no signature":
        del headers["X-Shopify-Hmac-Sha256"]
    elif how == "tampered body":
        body = body.replace(b'"price": "24.90"', b'"price": "249.00"')
    elif how == "unknown connection":
        url = "/v1/shops/shc_01JXXXXXXXXXXXXXXXXXXXXXXX/shopify"
    else:
        headers["X-Shopify-Shop-Domain"] = "someone-else.myshopify.com"

    r = kiez.client.post(url, content=body, headers=headers)

    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "invalid_signature"
    assert activity_rows(engine, kiez.id) == []
    assert receipts(kiez, connection) == []
    assert balance(kiez, mia["id"]) == 0


def test_a_redelivered_webhook_changes_nothing(
    kiez: Tenant, mia: dict[str, Any], engine: Engine
) -> None:
    connection = connect(kiez, "shopify")
    order = fixture("shopify_orders_paid.json")
    first = shopify(kiez, connection, "orders/paid", order, webhook_id="whk-1042-paid")

    again = shopify(kiez, connection, "orders/paid", order, webhook_id="whk-1042-paid")

    assert again.status_code == 200, again.text
    assert again.json()["replayed"] is True
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["outcome"] == "recorded"
    assert balance(kiez, mia["id"]) == 112
    assert len(activity_rows(engine, kiez.id)) == 1
    assert len(receipts(kiez, connection)) == 1


def test_a_partial_refund_takes_back_the_points_of_the_refunded_unit(
    kiez: Tenant, mia: dict[str, Any], engine: Engine
) -> None:
    connection = connect(kiez, "shopify")
    shopify(kiez, connection, "orders/paid", fixture("shopify_orders_paid.json"))
    refund = fixture("shopify_refunds_create.json")  # one of the two espressos

    r = shopify(kiez, connection, "refunds/create", refund, webhook_id="whk-refund-1")

    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "recorded"
    # 22.41 of the 44.82 coffee back: 33.66 + 22.41 + 11.25 = 67.32 points are left: 67
    assert balance(kiez, mia["id"]) == 67
    returned = activity_rows(engine, kiez.id)[-1]
    assert returned.type == "return"
    assert returned.external_id == (
        "shopify:kiezcafe.myshopify.com:5712345678901/refund/987654321012"
    )
    assert returned.paid_minor == 2241
    # the same refund again (redelivered, or with a new webhook id): nothing more
    shopify(kiez, connection, "refunds/create", refund, webhook_id="whk-refund-1")
    assert shopify(kiez, connection, "refunds/create", refund).json()["outcome"] == "unchanged"
    assert balance(kiez, mia["id"]) == 67


def test_a_refund_of_money_without_goods_takes_back_that_amount_less_shipping(
    kiez: Tenant, mia: dict[str, Any], engine: Engine
) -> None:
    connection = connect(kiez, "shopify")
    shopify(kiez, connection, "orders/paid", fixture("shopify_orders_paid.json"))
    refund = fixture("shopify_refunds_create.json")
    refund["id"] = 987654321013
    refund["refund_line_items"] = []
    refund["transactions"][0]["amount"] = "14.90"  # 10.00 goodwill and the 4.90 shipping
    refund["order_adjustments"] = [
        {
            "id": 3301,
            "order_id": 5712345678901,
            "refund_id": 987654321013,
            "amount": "-4.12",
            "tax_amount": "-0.78",
            "kind": "shipping_refund",
            "reason": "Shipping refund",
        }
    ]

    assert shopify(kiez, connection, "refunds/create", refund).json()["outcome"] == "recorded"

    assert activity_rows(engine, kiez.id)[-1].paid_minor == 1000
    # 10.00 spread over the lines: 7.99 of the coffee, 2.01 of the jug; 46.07 € are left, of
    # them 36.83 coffee and 9.24 Acme: 92.14 points, 92
    assert balance(kiez, mia["id"]) == 92


def test_a_cancelled_order_takes_back_every_point(
    kiez: Tenant, mia: dict[str, Any], engine: Engine
) -> None:
    connection = connect(kiez, "shopify")
    order = fixture("shopify_orders_paid.json")
    shopify(kiez, connection, "orders/paid", order)
    shopify(kiez, connection, "refunds/create", fixture("shopify_refunds_create.json"))
    order.update(
        cancelled_at="2026-11-21T12:00:00+01:00",
        cancel_reason="customer",
        financial_status="refunded",
    )

    r = shopify(kiez, connection, "orders/cancelled", order)

    assert r.json()["outcome"] == "recorded"
    assert balance(kiez, mia["id"]) == 0
    balances = kiez.get(f"/v1/members/{mia['id']}/balances").json()
    assert balances["reversed"] == 112
    # the refund Shopify sends for the cancellation finds nothing left to take back
    late = fixture("shopify_refunds_create.json")
    late["id"] = 987654321099
    late["refund_line_items"][0]["quantity"] = 2
    answered = shopify(kiez, connection, "refunds/create", late)
    assert answered.status_code == 200, answered.text
    assert answered.json()["outcome"] == "ignored"
    assert "left to return" in answered.json()["detail"]
    assert balance(kiez, mia["id"]) == 0
    assert [a.type for a in activity_rows(engine, kiez.id)] == ["purchase", "return", "return"]


def test_a_refund_of_an_order_treu_never_recorded_is_acknowledged(kiez: Tenant) -> None:
    connection = connect(kiez, "shopify")

    r = shopify(kiez, connection, "refunds/create", fixture("shopify_refunds_create.json"))

    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "ignored"
    assert "no purchase for order 5712345678901" in r.json()["detail"]


def test_an_unknown_customer_buys_as_a_guest_and_can_claim_the_purchase_later(
    kiez: Tenant, engine: Engine
) -> None:
    connection = connect(kiez, "shopify")

    r = shopify(kiez, connection, "orders/paid", fixture("shopify_orders_paid.json"))

    assert r.json()["outcome"] == "recorded"
    [purchase] = activity_rows(engine, kiez.id)
    assert purchase.member_id is None
    mia = kiez.enrol(MIA)
    claimed = kiez.post(
        f"/v1/programmes/{kiez.programme}/claims",
        {"member": mia["id"], "external_id": purchase.external_id},
    )
    assert claimed.status_code in (200, 201), claimed.text
    assert balance(kiez, mia["id"]) == 112


def test_with_auto_enrol_an_unknown_customer_becomes_a_member(kiez: Tenant) -> None:
    connection = connect(kiez, "shopify", auto_enrol=True, customer_id_prefix="shopify:")

    r = shopify(kiez, connection, "orders/paid", fixture("shopify_orders_paid.json"))

    assert r.json()["outcome"] == "recorded"
    found = kiez.get(
        f"/v1/programmes/{kiez.programme}/members/lookup",
        params={"identifier": "external:shopify:7390123456789"},
    )
    assert found.status_code == 200, found.text
    member = found.json()
    assert member["name"] == "Mia Schneider"
    assert member["identifiers"]["email"] == MIA
    assert member["identifiers"]["phone"] == "+4915112345678"
    assert balance(kiez, member["id"]) == 112


def test_a_member_is_found_by_phone_or_by_the_shops_customer_id(kiez: Tenant) -> None:
    connection = connect(kiez, "shopify", customer_id_prefix="s-")
    by_phone = kiez.enrol(identifiers={"email": "mia.privat@example.org", "phone": "0151 12345678"})
    order = fixture("shopify_orders_paid.json")
    order["email"] = order["contact_email"] = "unknown@example.org"
    order["customer"]["email"] = "unknown@example.org"

    shopify(kiez, connection, "orders/paid", order)
    assert balance(kiez, by_phone["id"]) == 112

    max_ = kiez.post(
        f"/v1/programmes/{kiez.programme}/members",
        {"identifiers": {"external": "s-555", "email": "max@example.org"}},
    ).json()
    order = fixture("shopify_orders_paid.json")
    order["id"] = 5712345678999
    order["email"] = order["contact_email"] = None
    order["customer"].update(id=555, email=None, phone=None)
    order["billing_address"]["phone"] = None
    shopify(kiez, connection, "orders/paid", order)
    assert balance(kiez, max_["id"]) == 112


def test_a_blocked_members_order_is_rejected_with_a_receipt_that_says_why(
    kiez: Tenant, mia: dict[str, Any], engine: Engine
) -> None:
    connection = connect(kiez, "shopify")
    assert kiez.post(f"/v1/members/{mia['id']}/block").status_code == 200

    r = shopify(kiez, connection, "orders/paid", fixture("shopify_orders_paid.json"))

    assert r.status_code == 200, r.text  # a 4xx would make Shopify retry and then give up
    assert (r.json()["outcome"], r.json()["code"]) == ("rejected", "member_blocked")
    assert activity_rows(engine, kiez.id) == []
    [rejected] = receipts(kiez, connection, outcome="rejected")
    assert rejected["code"] == "member_blocked"


def test_categories_and_brands_come_from_line_properties_and_the_vendor(
    kiez: Tenant, mia: dict[str, Any]
) -> None:
    connection = connect(kiez, "shopify", mapping_mode="tags")
    order = fixture("shopify_orders_paid.json")
    # without the _category property the espresso is not coffee; without vendor Acme no bonus
    order["line_items"][0]["properties"] = []
    order["line_items"][1]["vendor"] = "Kiezkram"

    shopify(kiez, connection, "orders/paid", order)

    assert balance(kiez, mia["id"]) == 56


def test_categories_and_brands_come_from_the_mapping_table(
    kiez: Tenant, mia: dict[str, Any]
) -> None:
    connection = connect(kiez, "shopify", mapping_mode="table")
    put = kiez.client.put(
        f"/v1/shop-connections/{connection['id']}/mappings",
        json={
            "mappings": [
                {"match": "variant", "value": "44123456789012", "category": "Kaffee"},
                {"match": "sku", "value": "ZUB-MK-01", "brand": "Acme", "sku": "MILCH-1"},
            ]
        },
        headers=kiez.headers(),
    )
    assert put.status_code == 200, put.text
    order = fixture("shopify_orders_paid.json")
    order["line_items"][0]["properties"] = []  # the table decides, not the line's properties
    order["line_items"][1]["vendor"] = "Kiezkram"

    shopify(kiez, connection, "orders/paid", order)

    assert balance(kiez, mia["id"]) == 112
    listed = kiez.get(f"/v1/shop-connections/{connection['id']}/mappings").json()["data"]
    assert [(m["match"], m["value"]) for m in listed] == [
        ("sku", "ZUB-MK-01"),
        ("variant", "44123456789012"),
    ]


def test_a_malformed_order_is_rejected_and_not_recorded(
    kiez: Tenant, mia: dict[str, Any], engine: Engine
) -> None:
    connection = connect(kiez, "shopify")
    order = fixture("shopify_orders_paid.json")
    order["line_items"][0]["price"] = 24.9  # a float where Shopify sends a string is fine …
    order["line_items"][1]["quantity"] = "two"  # … a quantity that is no number is not

    r = shopify(kiez, connection, "orders/paid", order)

    assert (r.status_code, r.json()["outcome"]) == (200, "rejected")
    assert r.json()["code"] == "validation_error"
    assert "line_items.1.quantity" in r.json()["detail"]
    assert activity_rows(engine, kiez.id) == []


def test_an_order_in_another_currency_is_rejected(kiez: Tenant, mia: dict[str, Any]) -> None:
    connection = connect(kiez, "shopify")
    order = fixture("shopify_orders_paid.json")
    order["currency"] = "CHF"

    r = shopify(kiez, connection, "orders/paid", order)

    assert (r.json()["outcome"], r.json()["code"]) == ("rejected", "currency_mismatch")
    assert balance(kiez, mia["id"]) == 0


# --- WooCommerce ---------------------------------------------------------------------------------

JONAS = "jonas.becker@example.org"


def test_a_processing_woocommerce_order_earns_with_exact_amounts(
    kiez: Tenant, engine: Engine
) -> None:
    jonas = kiez.enrol(JONAS)
    connection = connect(kiez, "woocommerce")
    assert connection["secret"].startswith("shpsec_")  # Treu made it, to enter in WooCommerce

    r = woocommerce(kiez, connection, "order.created", fixture("woocommerce_order.json"))

    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "recorded"
    [purchase] = activity_rows(engine, kiez.id)
    # 3 × 8.33… + tax − coupon = 24.08 and 9.00, shipping 4.90: to the cent, never a float
    assert purchase.paid_minor == 2408 + 900 + 490
    lines = purchase.payload["lines"]
    assert [Decimal(x["unit_price"]) * x["quantity"] - Decimal(x["discount"]) for x in lines] == [
        Decimal("24.08"),
        Decimal("9.00"),
    ]
    assert [(x["category"], x["brand"]) for x in lines] == [
        ("Kaffee", "Röstwerk Kiez"),
        (None, "Acme"),
    ]
    # 33.08 € earns 33.08, the coffee 24.08 more, Acme 9.00: 66
    assert balance(kiez, jonas["id"]) == 66


def test_woocommerce_earns_once_whatever_the_number_of_updates(
    kiez: Tenant, engine: Engine
) -> None:
    jonas = kiez.enrol(JONAS)
    connection = connect(kiez, "woocommerce")
    order = fixture("woocommerce_order.json")
    order["status"] = "pending"

    pending = woocommerce(kiez, connection, "order.created", order)
    assert pending.json()["outcome"] == "ignored"
    order["status"] = "processing"
    assert woocommerce(kiez, connection, "order.updated", order).json()["outcome"] == "recorded"
    order["status"] = "completed"
    assert woocommerce(kiez, connection, "order.updated", order).json()["outcome"] == "unchanged"

    assert balance(kiez, jonas["id"]) == 66
    assert len(activity_rows(engine, kiez.id)) == 1


def test_a_woocommerce_delivery_sent_twice_changes_nothing(kiez: Tenant, engine: Engine) -> None:
    kiez.enrol(JONAS)
    connection = connect(kiez, "woocommerce")
    order = fixture("woocommerce_order.json")
    first = woocommerce(kiez, connection, "order.created", order, delivery_id="a1b2c3")

    again = woocommerce(kiez, connection, "order.created", order, delivery_id="a1b2c3")

    assert again.json()["replayed"] is True
    assert again.json()["id"] == first.json()["id"]
    assert len(activity_rows(engine, kiez.id)) == 1


def test_woocommerce_refunds_return_their_amount_and_cancellation_the_rest(
    kiez: Tenant, engine: Engine
) -> None:
    jonas = kiez.enrol(JONAS)
    connection = connect(kiez, "woocommerce")
    order = fixture("woocommerce_order.json")
    woocommerce(kiez, connection, "order.created", order)
    order["refunds"] = [{"id": 4790, "reason": "Entkalker beschädigt", "total": "-9.00"}]

    r = woocommerce(kiez, connection, "order.updated", order)

    assert r.json()["outcome"] == "recorded"
    refunded = activity_rows(engine, kiez.id)[-1]
    assert (refunded.type, refunded.paid_minor) == ("return", 900)
    assert refunded.external_id == "woocommerce:shop.example.org:4711/refund/4790"
    # 9.00 spread over 24.08 and 9.00: 6.55 of the coffee, 2.45 of the Entkalker; 24.08 € left,
    # 17.53 coffee, 6.55 Acme: 48.16 points, 48
    assert balance(kiez, jonas["id"]) == 48

    order["status"] = "cancelled"
    assert woocommerce(kiez, connection, "order.updated", order).json()["outcome"] == "recorded"
    assert balance(kiez, jonas["id"]) == 0
    # and once more: every refund and the cancellation are recorded already
    assert woocommerce(kiez, connection, "order.updated", order).json()["outcome"] == "unchanged"
    assert [a.type for a in activity_rows(engine, kiez.id)] == ["purchase", "return", "return"]


def test_a_woocommerce_order_cancelled_before_payment_records_nothing(
    kiez: Tenant, engine: Engine
) -> None:
    connection = connect(kiez, "woocommerce")
    order = fixture("woocommerce_order.json")
    order["status"] = "cancelled"

    r = woocommerce(kiez, connection, "order.updated", order)

    assert (r.status_code, r.json()["outcome"]) == (200, "ignored")
    assert activity_rows(engine, kiez.id) == []


def test_woocommerces_unsigned_ping_is_answered_and_records_nothing(kiez: Tenant) -> None:
    connection = connect(kiez, "woocommerce")
    url = f"/v1/shops/{connection['id']}/woocommerce"
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    ping = kiez.client.post(url, content=b"webhook_id=12", headers=form)

    assert ping.status_code == 200, ping.text
    assert (ping.json()["id"], ping.json()["outcome"]) == (None, "ignored")
    assert receipts(kiez, connection) == []
    # anything else unsigned is refused
    unsigned = kiez.client.post(url, content=b'{"id": 4711}', headers=form)
    assert unsigned.status_code == 401
    shopify_url = f"/v1/shops/{connect(kiez, 'shopify')['id']}/shopify"
    assert kiez.client.post(shopify_url, content=b"webhook_id=12", headers=form).status_code == 401


# --- the connection ------------------------------------------------------------------------------


def test_a_connection_shows_its_secret_once_and_rotation_keeps_the_old_one_for_a_while(
    kiez: Tenant, mia: dict[str, Any]
) -> None:
    connection = connect(kiez, "woocommerce", store="online")
    url = f"/v1/shop-connections/{connection['id']}"
    assert connection["webhook_path"] == f"/v1/shops/{connection['id']}/woocommerce"
    assert kiez.get(url).json()["secret"] is None
    listed = kiez.get(f"/v1/programmes/{kiez.programme}/shop-connections").json()["data"]
    assert [c["id"] for c in listed] == [connection["id"]]
    assert connection["secret"] not in json.dumps(listed)

    rotated = kiez.post(f"{url}/rotate", {"grace_seconds": 3600})
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != connection["secret"]

    order = fixture("woocommerce_order.json")
    order["billing"]["email"] = MIA
    old = woocommerce(kiez, connection, "order.created", order)
    assert old.status_code == 200, old.text  # the old secret, within the grace period
    order["id"] = 4712
    fresh = woocommerce(kiez, connection, "order.created", order, secret=new_secret)
    assert fresh.status_code == 200, fresh.text

    kiez.post(f"{url}/rotate", {"secret": "a-secret-from-the-shop"})  # no grace: old one is out
    order["id"] = 4713
    assert woocommerce(kiez, connection, "order.created", order, secret=new_secret).status_code == (
        401
    )
    assert balance(kiez, mia["id"]) == 2 * 66


def test_a_disabled_connection_acknowledges_and_a_deleted_one_refuses(
    kiez: Tenant, mia: dict[str, Any], engine: Engine
) -> None:
    connection = connect(kiez, "shopify")
    url = f"/v1/shop-connections/{connection['id']}"
    off = kiez.client.patch(url, json={"enabled": False}, headers=kiez.headers())
    assert off.json()["enabled"] is False

    r = shopify(kiez, connection, "orders/paid", fixture("shopify_orders_paid.json"))
    assert (r.status_code, r.json()["outcome"], r.json()["id"]) == (200, "ignored", None)
    assert activity_rows(engine, kiez.id) == []

    deleted = kiez.client.delete(url, headers=kiez.headers())
    assert deleted.json() == {"object": "shop_connection", "id": connection["id"], "deleted": True}
    r = shopify(kiez, connection, "orders/paid", fixture("shopify_orders_paid.json"))
    assert r.status_code == 401
    assert kiez.get(url).json()["code"] == "shop_connection_not_found"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"platform": "shopify", "shop": "kiezcafe.de", "secret": SHOPIFY_SECRET}, "shop"),
        ({"platform": "shopify", "shop": "x.myshopify.com", "secret": "short"}, "secret"),
        ({"platform": "magento", "shop": "shop.example.org"}, "platform"),
    ],
)
def test_a_connection_is_refused_with_the_field_that_is_wrong(
    kiez: Tenant, body: dict[str, Any], path: str
) -> None:
    r = kiez.post(f"/v1/programmes/{kiez.programme}/shop-connections", body)

    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["path"] == path


def test_a_connection_names_a_store_the_programme_has(kiez: Tenant) -> None:
    r = kiez.post(
        f"/v1/programmes/{kiez.programme}/shop-connections",
        {"platform": "woocommerce", "shop": "shop.example.org", "store": "mars"},
    )

    assert (r.status_code, r.json()["code"]) == (404, "store_not_found")


def test_another_tenant_sees_no_connection(kiez: Tenant, new_tenant: Callable[[], Tenant]) -> None:
    connection = connect(kiez, "shopify")
    other = new_tenant()

    r = other.get(f"/v1/shop-connections/{connection['id']}")

    assert (r.status_code, r.json()["code"]) == (404, "shop_connection_not_found")
    assert other.get(f"/v1/programmes/{kiez.programme}/shop-connections").status_code == 404
