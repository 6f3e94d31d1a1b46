from __future__ import annotations

from sqlalchemy import (
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

# Where a tenant wants its events. The secret is kept as it is, not hashed: every request is
# signed with it (a keyed MAC needs the key), and it is shown in the API once, at creation.
# A deleted endpoint keeps its row (``deleted_at``) so its delivery log stays readable.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("description", String(200)),
    Column("event_types", json_type(), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("deleted_at", UTCDateTime()),
    Index("ix_webhook_endpoints_tenant_id", "tenant_id", "id"),
)

# One event for one endpoint. ``next_attempt_at`` is the persisted retry schedule; a sender
# claims a delivery by moving it a lease ahead (so a sender that dies mid-request leaves it to be
# sent again once the lease is over, and two senders never send it at the same time).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("endpoint_id", id_column_type(), nullable=False),
    Column("event_id", id_column_type(), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime()),
    Column("last_attempt_at", UTCDateTime()),
    Column("last_status_code", Integer),
    Column("last_error", String(500)),
    Column("delivered_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    # an event reaches an endpoint through one delivery, however often the fan-out runs
    UniqueConstraint("endpoint_id", "event_id", "tenant_id"),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
    CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    CheckConstraint(
        "status <> 'pending' OR next_attempt_at IS NOT NULL", name="pending_is_scheduled"
    ),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    tenant_fk("endpoint_id", "webhook_endpoints"),
    tenant_fk("event_id", "outbox"),
)

# The delivery log: every HTTP attempt with its answer (status code) or failure (error).
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("delivery_id", id_column_type(), nullable=False),
    Column("attempted_at", UTCDateTime(), nullable=False),
    Column("status_code", Integer),
    Column("error", String(500)),
    Column("duration_ms", Integer, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    CheckConstraint("status_code IS NOT NULL OR error IS NOT NULL", name="answer_or_error"),
    Index("ix_webhook_attempts_delivery_id", "delivery_id", "id"),
    tenant_fk("delivery_id", "webhook_deliveries"),
)
