from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type, json_type

rewards = Table(
    "rewards",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("key", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    # Points it costs; NULL: never bought with points, only given (welcome gift, full stamp card).
    Column("cost", BigInteger),
    # Stock left (NULL: unlimited). Changed only by guarded updates; the CHECK is the backstop.
    Column("stock", Integer),
    Column("per_member_limit", Integer),
    Column("available_from", UTCDateTime()),
    Column("available_until", UTCDateTime()),
    Column("active", Boolean, nullable=False),
    Column("definition", json_type(), nullable=False),
    UniqueConstraint("programme_id", "key", "tenant_id"),
    CheckConstraint("cost IS NULL OR cost > 0", name="cost_positive"),
    CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
    tenant_fk("programme_id", "programmes"),
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("reward_id", id_column_type(), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("hold_id", id_column_type(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "idempotency_key"),
    Index("ix_redemptions_member_reward", "member_id", "reward_id", "status"),
    CheckConstraint("points > 0", name="points_positive"),
    CheckConstraint("status IN ('completed', 'cancelled')", name="status_known"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("reward_id", "rewards"),
    tenant_fk("hold_id", "holds"),
)

vouchers = Table(
    "vouchers",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("reward_id", id_column_type(), nullable=False),
    Column("redemption_id", id_column_type()),
    Column("code", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("used_at", UTCDateTime()),
    Column("used_store_id", id_column_type()),
    Column("cancelled_at", UTCDateTime()),
    Column("extra", json_type(), nullable=False),
    # A voucher given by a mechanic (not bought) carries the key of the occasion, so the same
    # occasion (this card completed, this welcome) never gives twice.
    Column("grant_key", String(200)),
    UniqueConstraint("tenant_id", "code"),
    UniqueConstraint("redemption_id", "tenant_id"),
    UniqueConstraint("tenant_id", "grant_key"),
    Index("ix_vouchers_member", "member_id", "status"),
    CheckConstraint("status IN ('issued', 'used', 'expired', 'cancelled')", name="status_known"),
    CheckConstraint("status <> 'used' OR used_at IS NOT NULL", name="used_has_time"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("reward_id", "rewards"),
    tenant_fk("redemption_id", "redemptions"),
    tenant_fk("used_store_id", "stores"),
)
