"""Shops: connect a Shopify or WooCommerce shop to a programme, and the endpoints the shop
sends its order webhooks to.

The receiving endpoints take no API key: the platform's HMAC signature of the raw body, made with
the connection's secret, is the authentication (401 ``invalid_signature`` and nothing recorded
if it does not match). Everything else a delivery can come to is answered 200 with a receipt
(``recorded``, ``unchanged``, ``ignored`` or ``rejected`` with its code), because the platforms
switch off a webhook that keeps failing. Guide: docs/shops.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request

from treu.api.deps import Rt, Who, needs, programme_id_for, public
from treu.api.pagination import Limit, StartingAfter, WindowIn, page
from treu.api.schemas import Page
from treu.api.schemas_shops import (
    ProductMappingList,
    ProductMappingRead,
    ProductMappingsPut,
    ShopConnectionCreate,
    ShopConnectionDeleted,
    ShopConnectionRead,
    ShopConnectionUpdate,
    ShopReceiptRead,
    ShopSecretRotate,
)
from treu.auth.model import Permission as P
from treu.auth.model import Principal
from treu.errors import ErrorCode, NotFound
from treu.shops.model import Connection, Delivery, Outcome, Platform
from treu.shops.receiving import receive_webhook
from treu.shops.service import (
    create_connection,
    delete_connection,
    get_connection,
    list_connections,
    list_mappings,
    list_receipts,
    put_mappings,
    rotate_secret,
    update_connection,
)
from treu.storage.uow import UnitOfWork

router = APIRouter(tags=["shops"])
MANAGE = [needs(P.WEBHOOKS_MANAGE)]
CONNECTION = "/v1/shop-connections/{connection_id}"


def _connection(uow: UnitOfWork, who: Principal, connection_id: str) -> Connection:
    """The connection, if the caller's tenant (and programme, for a bound key) has it."""
    found = get_connection(uow, tenant_id=who.tenant_id, connection_id=connection_id)
    if who.programme_id is not None and found.programme_id != who.programme_id:
        raise NotFound(ErrorCode.SHOP_CONNECTION_NOT_FOUND, f"no shop connection {connection_id}")
    return found


@router.post("/v1/programmes/{programme}/shop-connections", status_code=201, dependencies=MANAGE)
def create(rt: Rt, who: Who, programme: str, body: ShopConnectionCreate) -> ShopConnectionRead:
    """Connect a shop. The ``secret`` the shop signs with is in this response and never again
    (Shopify: give the one Shopify shows; WooCommerce: leave it out, Treu makes one to enter in
    the webhook form)."""

    def go(uow: UnitOfWork) -> ShopConnectionRead:
        created = create_connection(
            uow,
            tenant_id=who.tenant_id,
            programme_id=programme_id_for(uow, who, programme),
            platform=body.platform,
            shop=body.shop,
            store=body.store,
            mapping_mode=body.mapping_mode,
            auto_enrol=body.auto_enrol,
            customer_id_prefix=body.customer_id_prefix,
            secret=body.secret,
            enabled=body.enabled,
        )
        return ShopConnectionRead.of(created.connection, created.secret)

    return rt.write(go)


@router.get("/v1/programmes/{programme}/shop-connections", dependencies=MANAGE)
def list_all(rt: Rt, who: Who, programme: str, window: WindowIn) -> Page[ShopConnectionRead]:
    def go(uow: UnitOfWork) -> list[Connection]:
        programme_id = programme_id_for(uow, who, programme)
        return list_connections(uow, tenant_id=who.tenant_id, programme_id=programme_id)

    return window.of([ShopConnectionRead.of(c) for c in rt.read(go)])


@router.get(CONNECTION, dependencies=MANAGE)
def get_one(rt: Rt, who: Who, connection_id: str) -> ShopConnectionRead:
    return ShopConnectionRead.of(rt.read(lambda uow: _connection(uow, who, connection_id)))


@router.patch(CONNECTION, dependencies=MANAGE)
def update(rt: Rt, who: Who, connection_id: str, body: ShopConnectionUpdate) -> ShopConnectionRead:
    """Change the store, the mapping mode, enrolment or the customer id prefix; switch the
    connection off (deliveries are acknowledged and not recorded) and on."""

    def go(uow: UnitOfWork) -> Connection:
        _connection(uow, who, connection_id)
        return update_connection(
            uow,
            tenant_id=who.tenant_id,
            connection_id=connection_id,
            store=body.store,
            mapping_mode=body.mapping_mode,
            auto_enrol=body.auto_enrol,
            customer_id_prefix=body.customer_id_prefix,
            enabled=body.enabled,
        )

    return ShopConnectionRead.of(rt.write(go))


@router.post(f"{CONNECTION}/rotate", dependencies=MANAGE)
def rotate(rt: Rt, who: Who, connection_id: str, body: ShopSecretRotate) -> ShopConnectionRead:
    """A new signing secret (shown in this response only); the old one still verifies for
    ``grace_seconds`` while the shop changes over."""

    def go(uow: UnitOfWork) -> ShopConnectionRead:
        _connection(uow, who, connection_id)
        rotated = rotate_secret(
            uow,
            tenant_id=who.tenant_id,
            connection_id=connection_id,
            secret=body.secret,
            grace=timedelta(seconds=body.grace_seconds),
        )
        return ShopConnectionRead.of(rotated.connection, rotated.secret)

    return rt.write(go)


@router.delete(CONNECTION, dependencies=MANAGE)
def delete(rt: Rt, who: Who, connection_id: str) -> ShopConnectionDeleted:
    """Deliveries to the connection are refused from now on; its receipts stay readable."""

    def go(uow: UnitOfWork) -> None:
        _connection(uow, who, connection_id)
        delete_connection(uow, tenant_id=who.tenant_id, connection_id=connection_id)

    rt.write(go)
    return ShopConnectionDeleted(id=connection_id)


@router.put(f"{CONNECTION}/mappings", dependencies=MANAGE)
def put_all_mappings(
    rt: Rt, who: Who, connection_id: str, body: ProductMappingsPut
) -> ProductMappingList:
    """Replace the mapping table: shop variant, product or SKU → SKU, category and brand
    (used when the connection's ``mapping_mode`` is ``table``)."""

    def go(uow: UnitOfWork) -> ProductMappingList:
        _connection(uow, who, connection_id)
        stored = put_mappings(
            uow,
            tenant_id=who.tenant_id,
            connection_id=connection_id,
            mappings=[m.to_mapping() for m in body.mappings],
        )
        return ProductMappingList(data=[ProductMappingRead.of(m) for m in stored])

    return rt.write(go)


@router.get(f"{CONNECTION}/mappings", dependencies=MANAGE)
def get_mappings(rt: Rt, who: Who, connection_id: str) -> ProductMappingList:
    def go(uow: UnitOfWork) -> ProductMappingList:
        _connection(uow, who, connection_id)
        found = list_mappings(uow, tenant_id=who.tenant_id, connection_id=connection_id)
        return ProductMappingList(data=[ProductMappingRead.of(m) for m in found])

    return rt.read(go)


@router.get(f"{CONNECTION}/receipts", dependencies=MANAGE)
def receipts(
    rt: Rt,
    who: Who,
    connection_id: str,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    outcome: Annotated[Outcome | None, Query(description="Only this outcome")] = None,
) -> Page[ShopReceiptRead]:
    """The deliveries the connection acted on, oldest first: look here for ``rejected`` ones."""

    def go(uow: UnitOfWork) -> list[ShopReceiptRead]:
        _connection(uow, who, connection_id)
        found = list_receipts(
            uow,
            tenant_id=who.tenant_id,
            connection_id=connection_id,
            outcome=outcome,
            starting_after=starting_after,
            limit=limit + 1,
        )
        return [ShopReceiptRead.of(r) for r in found]

    return page(rt.read(go), limit=limit, id_of=lambda r: r.id or "")


# --- what the shops send ----------------------------------------------------------------------


async def raw_body(request: Request) -> bytes:
    """The body exactly as sent: the signature is over these bytes, not over parsed JSON."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]
SIGNED_JSON: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The platform's order (or refund) as JSON, exactly as it signed it",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.post(
    "/v1/shops/{connection_id}/shopify", dependencies=[public()], openapi_extra=SIGNED_JSON
)
def shopify_webhook(
    rt: Rt,
    connection_id: str,
    body: RawBody,
    x_shopify_hmac_sha256: Annotated[str | None, Header()] = None,
    x_shopify_topic: Annotated[str | None, Header()] = None,
    x_shopify_webhook_id: Annotated[str | None, Header()] = None,
    x_shopify_shop_domain: Annotated[str | None, Header()] = None,
) -> ShopReceiptRead:
    """Shopify's webhooks (``orders/paid``, ``orders/cancelled``, ``refunds/create``;
    ``orders/create`` is acknowledged): signed with ``X-Shopify-Hmac-Sha256``."""
    delivery = Delivery(
        Platform.SHOPIFY,
        body,
        signature=x_shopify_hmac_sha256,
        topic=x_shopify_topic,
        webhook_id=x_shopify_webhook_id,
        shop_domain=x_shopify_shop_domain,
    )
    return _receive(rt, connection_id, delivery)


@router.post(
    "/v1/shops/{connection_id}/woocommerce", dependencies=[public()], openapi_extra=SIGNED_JSON
)
def woocommerce_webhook(
    rt: Rt,
    connection_id: str,
    body: RawBody,
    x_wc_webhook_signature: Annotated[str | None, Header()] = None,
    x_wc_webhook_topic: Annotated[str | None, Header()] = None,
    x_wc_webhook_delivery_id: Annotated[str | None, Header()] = None,
) -> ShopReceiptRead:
    """WooCommerce's webhooks (``order.created``, ``order.updated``), signed with
    ``X-WC-Webhook-Signature``; its unsigned ping when a webhook is saved is answered 200."""
    delivery = Delivery(
        Platform.WOOCOMMERCE,
        body,
        signature=x_wc_webhook_signature,
        topic=x_wc_webhook_topic,
        webhook_id=x_wc_webhook_delivery_id,
    )
    return _receive(rt, connection_id, delivery)


def _receive(rt: Rt, connection_id: str, delivery: Delivery) -> ShopReceiptRead:
    receipt = rt.write(
        lambda uow: receive_webhook(uow, connection_id=connection_id, delivery=delivery)
    )
    return ShopReceiptRead.of(receipt)
