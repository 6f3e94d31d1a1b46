from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
)

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type, json_type

members = Table(
    "members",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("name", String(200)),
    Column("birthday", Date),
    Column("locale", String(16)),
    Column("attributes", json_type(), nullable=False),
    Column("enrolled_at", UTCDateTime(), nullable=False),
    Column("first_purchase_at", UTCDateTime()),
    Column("last_activity_at", UTCDateTime()),
    Column("erased_at", UTCDateTime()),
    Column("merged_into_id", id_column_type()),
    CheckConstraint("status IN ('active', 'blocked', 'erased', 'merged')", name="status_known"),
    Index("ix_members_programme_enrolled", "programme_id", "enrolled_at"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("merged_into_id", "members"),
)

# One row per way of finding a member. Unique per programme: an e-mail address or a card belongs
# to one member of a programme, but the same person may join two programmes of a tenant.
identifiers = Table(
    "member_identifiers",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", String(320), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("programme_id", "kind", "value", "tenant_id"),
    Index("ix_member_identifiers_member", "member_id"),
    CheckConstraint("kind IN ('email', 'phone', 'card', 'external', 'payment')", name="kind_known"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
)

# Append-only: the current consent for a channel is the latest row.
consents = Table(
    "member_consents",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("member_id", id_column_type(), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("source", String(64), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    # proof of consent (GDPR art. 7(1)): the wording agreed to, and how (double opt-in: the
    # confirmation's time, address, user agent and token id; see treu.messaging.consent)
    Column("text_version", String(64)),
    Column("evidence", json_type()),
    Index("ix_member_consents_member", "member_id", "channel", "id"),
    CheckConstraint("channel IN ('email', 'sms', 'push', 'post')", name="channel_known"),
    tenant_fk("member_id", "members"),
)
