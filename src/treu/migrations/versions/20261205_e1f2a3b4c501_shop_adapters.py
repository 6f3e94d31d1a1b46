"""shop adapters: connections, product mappings, webhook receipts, shop orders

Revision ID: e1f2a3b4c501
Revises: d3e4f5a6b703
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import treu.storage.types

revision = "e1f2a3b4c501"
down_revision = "d3e4f5a6b703"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _instant(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, treu.storage.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "shop_connections",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("shop", sa.String(length=64), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=True),
        sa.Column("mapping_mode", sa.String(length=8), nullable=False),
        sa.Column("auto_enrol", sa.Boolean(), nullable=False),
        sa.Column("customer_id_prefix", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("previous_secret", sa.String(length=200), nullable=True),
        _instant("previous_secret_until", nullable=True),
        _instant("secret_rotated_at", nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _instant("created_at", nullable=False),
        _instant("updated_at", nullable=False),
        _instant("deleted_at", nullable=True),
        sa.CheckConstraint(
            "platform IN ('shopify', 'woocommerce')",
            name=op.f("ck_shop_connections_platform_known"),
        ),
        sa.CheckConstraint(
            "mapping_mode IN ('tags', 'table')", name=op.f("ck_shop_connections_mapping_mode_known")
        ),
        sa.CheckConstraint("shop <> ''", name=op.f("ck_shop_connections_shop_named")),
        sa.CheckConstraint(
            "(previous_secret IS NULL) = (previous_secret_until IS NULL)",
            name=op.f("ck_shop_connections_grace_has_an_end"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_shop_connections_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_shop_connections_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_connections")),
    )
    op.create_index(
        "ix_shop_connections_tenant_id", "shop_connections", ["tenant_id", "programme_id", "id"]
    )

    op.create_table(
        "shop_product_mappings",
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("match", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("brand", sa.String(length=64), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "match IN ('variant', 'product', 'sku')",
            name=op.f("ck_shop_product_mappings_match_known"),
        ),
        sa.CheckConstraint("value <> ''", name=op.f("ck_shop_product_mappings_value_given")),
        sa.CheckConstraint(
            "category IS NOT NULL OR brand IS NOT NULL OR sku IS NOT NULL",
            name=op.f("ck_shop_product_mappings_maps_to_something"),
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["shop_connections.id"],
            name=op.f("fk_shop_product_mappings_connection_id_shop_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_shop_product_mappings_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint(
            "connection_id", "match", "value", name=op.f("pk_shop_product_mappings")
        ),
    )

    op.create_table(
        "shop_webhook_receipts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("webhook_id", sa.String(length=128), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=24), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("activity_ids", _json(), nullable=False),
        _instant("received_at", nullable=False),
        sa.CheckConstraint(
            "outcome IN ('recorded', 'unchanged', 'ignored', 'rejected')",
            name=op.f("ck_shop_webhook_receipts_outcome_known"),
        ),
        sa.CheckConstraint(
            "outcome <> 'rejected' OR code IS NOT NULL",
            name=op.f("ck_shop_webhook_receipts_rejection_has_a_code"),
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["shop_connections.id"],
            name=op.f("fk_shop_webhook_receipts_connection_id_shop_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_shop_webhook_receipts_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_webhook_receipts")),
        sa.UniqueConstraint(
            "connection_id",
            "webhook_id",
            name=op.f("uq_shop_webhook_receipts_connection_id_webhook_id"),
        ),
    )
    op.create_index(
        "ix_shop_webhook_receipts_connection_id",
        "shop_webhook_receipts",
        ["connection_id", "id"],
    )

    op.create_table(
        "shop_orders",
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("purchase_external_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("line_keys", _json(), nullable=False),
        _instant("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["shop_connections.id"],
            name=op.f("fk_shop_orders_connection_id_shop_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f("fk_shop_orders_programme_id_programmes")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_shop_orders_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint(
            "programme_id", "purchase_external_id", name=op.f("pk_shop_orders")
        ),
    )


def downgrade() -> None:
    op.drop_table("shop_orders")
    op.drop_index("ix_shop_webhook_receipts_connection_id", table_name="shop_webhook_receipts")
    op.drop_table("shop_webhook_receipts")
    op.drop_table("shop_product_mappings")
    op.drop_index("ix_shop_connections_tenant_id", table_name="shop_connections")
    op.drop_table("shop_connections")
