from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type, json_type

# One shop of a programme. The secret is kept as it is, not hashed: every delivery's HMAC is
# computed with it (a keyed MAC needs the key). The previous secret still verifies until
# ``previous_secret_until`` (a rotation's grace period: Shopify takes up to an hour to sign with
# a new one). A deleted connection keeps its row (``deleted_at``) so its receipts stay readable.
shop_connections = Table(
    "shop_connections",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("shop", String(64), nullable=False),
    Column("store", String(64)),
    Column("mapping_mode", String(8), nullable=False),
    Column("auto_enrol", Boolean, nullable=False),
    Column("customer_id_prefix", String(32), nullable=False),
    Column("secret", String(200), nullable=False),
    Column("previous_secret", String(200)),
    Column("previous_secret_until", UTCDateTime()),
    Column("secret_rotated_at", UTCDateTime()),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("deleted_at", UTCDateTime()),
    CheckConstraint("platform IN ('shopify', 'woocommerce')", name="platform_known"),
    CheckConstraint("mapping_mode IN ('tags', 'table')", name="mapping_mode_known"),
    CheckConstraint("shop <> ''", name="shop_named"),
    CheckConstraint(
        "(previous_secret IS NULL) = (previous_secret_until IS NULL)", name="grace_has_an_end"
    ),
    Index("ix_shop_connections_tenant_id", "tenant_id", "programme_id", "id"),
    tenant_fk("programme_id", "programmes"),
)

# The mapping table of a connection: a variant, product or SKU of the shop → the SKU, category
# and brand the programme's rules see.
shop_product_mappings = Table(
    "shop_product_mappings",
    metadata,
    Column("connection_id", id_column_type(), nullable=False),
    Column("match", String(8), nullable=False),
    Column("value", String(64), nullable=False),
    Column("tenant_id", ForeignKey("tenants.id"), nullable=False),
    Column("category", String(64)),
    Column("brand", String(64)),
    Column("sku", String(64)),
    PrimaryKeyConstraint("connection_id", "match", "value", "tenant_id"),
    CheckConstraint("match IN ('variant', 'product', 'sku')", name="match_known"),
    CheckConstraint("value <> ''", name="value_given"),
    CheckConstraint(
        "category IS NOT NULL OR brand IS NOT NULL OR sku IS NOT NULL", name="maps_to_something"
    ),
    tenant_fk("connection_id", "shop_connections"),
)

# Every delivery Treu acted on, by the platform's webhook id: a redelivery finds its receipt
# and changes nothing. Written in the transaction of the (last) activity the delivery records,
# so a receipt never exists without its activities.
shop_webhook_receipts = Table(
    "shop_webhook_receipts",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("connection_id", id_column_type(), nullable=False),
    Column("webhook_id", String(128), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("order_id", String(24)),
    Column("outcome", String(16), nullable=False),
    Column("code", String(64)),
    Column("detail", String(500)),
    Column("activity_ids", json_type(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    UniqueConstraint("connection_id", "webhook_id", "tenant_id"),
    CheckConstraint(
        "outcome IN ('recorded', 'unchanged', 'ignored', 'rejected')", name="outcome_known"
    ),
    CheckConstraint("outcome <> 'rejected' OR code IS NOT NULL", name="rejection_has_a_code"),
    Index("ix_shop_webhook_receipts_connection_id", "connection_id", "id"),
    tenant_fk("connection_id", "shop_connections"),
)

# The line items of each purchase a shop recorded, in the purchase's line order: a refund names
# the platform's line item ids, a return names line indexes. Keyed by the purchase (not the
# connection), so the refunds of an order still find it after the connection is replaced.
shop_orders = Table(
    "shop_orders",
    metadata,
    Column("programme_id", id_column_type(), nullable=False),
    Column("purchase_external_id", String(128), nullable=False),
    Column("tenant_id", ForeignKey("tenants.id"), nullable=False),
    Column("connection_id", id_column_type(), nullable=False),
    Column("line_keys", json_type(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("programme_id", "purchase_external_id", "tenant_id"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("connection_id", "shop_connections"),
)
