"""Shop connections over HTTP: set-up bodies, the connection, its mappings and receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from treu.shops.model import (
    Connection,
    MappingMode,
    MatchKind,
    Platform,
    ProductMapping,
    Receipt,
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShopConnectionCreate(_In):
    platform: Platform
    shop: str = Field(
        min_length=1,
        max_length=64,
        description="Shopify: the myshopify.com domain; WooCommerce: the shop's host name",
    )
    store: str | None = Field(
        default=None, min_length=1, max_length=64, description="store key purchases are under"
    )
    mapping_mode: MappingMode = Field(
        default=MappingMode.TAGS, description="category and brand from line tags, or the table"
    )
    auto_enrol: bool = Field(default=False, description="enrol customers who are not members")
    customer_id_prefix: str = Field(
        default="", max_length=32, description="before the shop's customer id: external:<this><id>"
    )
    secret: str | None = Field(
        default=None,
        min_length=8,
        max_length=200,
        description="the shop's signing secret (Shopify); none: Treu makes one (WooCommerce)",
    )
    enabled: bool = True


class ShopConnectionUpdate(_In):
    store: str | None = Field(default=None, max_length=64, description='"" removes it')
    mapping_mode: MappingMode | None = None
    auto_enrol: bool | None = None
    customer_id_prefix: str | None = Field(default=None, max_length=32)
    enabled: bool | None = None


class ShopSecretRotate(_In):
    secret: str | None = Field(
        default=None, min_length=8, max_length=200, description="the new secret; none: Treu's"
    )
    grace_seconds: int = Field(
        default=0, ge=0, le=7 * 24 * 3600, description="how long the old secret still verifies"
    )


class ShopConnectionRead(BaseModel):
    object: Literal["shop_connection"] = "shop_connection"
    id: str
    programme_id: str
    platform: Platform
    shop: str
    store: str | None
    mapping_mode: MappingMode
    auto_enrol: bool
    customer_id_prefix: str
    enabled: bool
    webhook_path: str = Field(description="where the shop sends its webhooks (after your host)")
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None
    secret: str | None = Field(
        default=None, description="The signing secret: shown once, at creation and rotation"
    )

    @classmethod
    def of(cls, c: Connection, secret: str | None = None) -> ShopConnectionRead:
        return cls(
            id=c.id,
            programme_id=c.programme_id,
            platform=c.platform,
            shop=c.shop,
            store=c.store,
            mapping_mode=c.mapping_mode,
            auto_enrol=c.auto_enrol,
            customer_id_prefix=c.customer_id_prefix,
            enabled=c.enabled,
            webhook_path=f"/v1/shops/{c.id}/{c.platform.value}",
            created_at=c.created_at,
            updated_at=c.updated_at,
            secret_rotated_at=c.secret_rotated_at,
            secret=secret,
        )


class ShopConnectionDeleted(BaseModel):
    object: Literal["shop_connection"] = "shop_connection"
    id: str
    deleted: Literal[True] = True


class ProductMappingIn(_In):
    match: MatchKind = Field(description="what value is: a variant id, a product id or a SKU")
    value: str = Field(min_length=1, max_length=64)
    category: str | None = Field(default=None, min_length=1, max_length=64)
    brand: str | None = Field(default=None, min_length=1, max_length=64)
    sku: str | None = Field(default=None, min_length=1, max_length=64, description="SKU in Treu")

    def to_mapping(self) -> ProductMapping:
        return ProductMapping(self.match, self.value, self.category, self.brand, self.sku)


class ProductMappingsPut(_In):
    mappings: list[ProductMappingIn] = Field(max_length=10_000)


class ProductMappingRead(BaseModel):
    object: Literal["shop_product_mapping"] = "shop_product_mapping"
    match: MatchKind
    value: str
    category: str | None
    brand: str | None
    sku: str | None

    @classmethod
    def of(cls, m: ProductMapping) -> ProductMappingRead:
        return cls(match=m.match, value=m.value, category=m.category, brand=m.brand, sku=m.sku)


class ProductMappingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ProductMappingRead]


class ShopReceiptRead(BaseModel):
    """What Treu made of one delivery (and of every redelivery of it: ``replayed``)."""

    object: Literal["shop_webhook_receipt"] = "shop_webhook_receipt"
    id: str | None = Field(description="none for answers that are not kept (a ping)")
    webhook_id: str
    topic: str
    order_id: str | None
    outcome: str = Field(description="recorded, unchanged, ignored or rejected")
    code: str | None = Field(description="why it was rejected (an error code)")
    detail: str | None
    activity_ids: list[str]
    received_at: datetime
    replayed: bool = False

    @classmethod
    def of(cls, r: Receipt) -> ShopReceiptRead:
        return cls(
            id=r.id,
            webhook_id=r.webhook_id,
            topic=r.topic,
            order_id=r.order_id,
            outcome=r.outcome.value,
            code=r.code,
            detail=r.detail,
            activity_ids=list(r.activity_ids),
            received_at=r.received_at,
            replayed=r.replayed,
        )
