from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type, json_type

# Write-once: an activity is never updated except to attach a member (receipt claim).
activities = Table(
    "activities",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("revision_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type()),
    Column("store_id", id_column_type()),
    Column("type", String(16), nullable=False),
    Column("action_type", String(64)),
    Column("external_id", String(128), nullable=False),
    Column("channel", String(16)),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("currency", String(3)),
    Column("paid_minor", BigInteger),
    Column("base_minor", BigInteger),
    Column("first_purchase", Boolean, nullable=False, default=False),
    Column("purchase_id", id_column_type()),
    Column("payload", json_type(), nullable=False),
    # The member's attributes when the purchase became theirs (recorded or claimed): a return
    # recomputes the points under the facts the purchase earned with, not today's.
    Column("member_attributes", json_type()),
    # The member's standing at the time (tier, active membership plans): tier multipliers and
    # member-only rules are recomputed on a return as they were, not as they are today.
    Column("standing", json_type()),
    UniqueConstraint("programme_id", "type", "external_id", "tenant_id"),
    Index("ix_activities_member", "member_id", "occurred_at"),
    Index("ix_activities_purchase", "purchase_id"),
    Index("ix_activities_programme_time", "programme_id", "occurred_at"),
    CheckConstraint("type IN ('purchase', 'return', 'action')", name="type_known"),
    CheckConstraint("paid_minor IS NULL OR paid_minor >= 0", name="paid_not_negative"),
    CheckConstraint("type <> 'return' OR purchase_id IS NOT NULL", name="return_has_purchase"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("revision_id", "programme_revisions"),
    tenant_fk("member_id", "members"),
    tenant_fk("store_id", "stores"),
    tenant_fk("purchase_id", "activities"),
)

# What the rule engine decided, one row per rule and activity: every point explained.
awards = Table(
    "awards",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("activity_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("rule_key", String(64), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("explanation", Text, nullable=False),
    Column("transfer_id", id_column_type()),
    Column("occurred_at", UTCDateTime(), nullable=False),
    CheckConstraint("points <> 0", name="points_not_zero"),
    Index("ix_awards_activity", "activity_id"),
    Index("ix_awards_member_rule", "member_id", "rule_key", "occurred_at"),
    tenant_fk("activity_id", "activities"),
    tenant_fk("member_id", "members"),
    tenant_fk("transfer_id", "transfers"),
)

# What an activity (or an enrolment, or a nightly job) did beyond its points: stamps given or
# taken back, a card completed, a tier reached, a voucher issued, cashback credited. The member's
# history and a replayed request read them back; ``unit``/``amount`` name a ledger change if any.
activity_effects = Table(
    "activity_effects",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("activity_id", id_column_type()),
    Column("mechanic", String(32), nullable=False),
    Column("kind", String(48), nullable=False),
    Column("unit", String(16)),
    Column("amount", BigInteger),
    Column("explanation", Text, nullable=False),
    Column("data", json_type(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_activity_effects_activity", "activity_id"),
    Index("ix_activity_effects_member", "member_id", "id"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("activity_id", "activities"),
)
