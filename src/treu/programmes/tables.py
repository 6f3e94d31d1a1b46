from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type, json_type

tenants = Table(
    "tenants",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    # Pepper for hashing payment tokens: the same card hashes differently per tenant.
    Column("secret", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

programmes = Table(
    "programmes",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("key", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("current_revision_id", String(40)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "key"),
)

# Every applied programme document is kept, immutable: activities are evaluated under the
# revision in force when they happened (offline tills, imports, returns of old purchases).
programme_revisions = Table(
    "programme_revisions",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("number", Integer, nullable=False),
    Column("document", json_type(), nullable=False),
    Column("effective_from", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("programme_id", "number", "tenant_id"),
    CheckConstraint("number > 0", name="number_positive"),
    tenant_fk("programme_id", "programmes"),
)

stores = Table(
    "stores",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("key", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    UniqueConstraint("programme_id", "key", "tenant_id"),
    CheckConstraint("channel IN ('pos', 'online', 'app', 'other')", name="channel_known"),
    tenant_fk("programme_id", "programmes"),
)

# Points a campaign rule may still give away, guarded by a conditional update.
rule_budgets = Table(
    "rule_budgets",
    metadata,
    Column("programme_id", id_column_type(), primary_key=True),
    Column("rule_key", String(64), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("budget", BigInteger, nullable=False),
    Column("used", BigInteger, nullable=False, default=0),
    CheckConstraint("used >= 0 AND used <= budget", name="within_budget"),
    tenant_fk("programme_id", "programmes"),
)
