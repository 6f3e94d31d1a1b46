"""Tiers: each member's current tier and the history of every change."""

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
    Text,
)

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type

# The current tier per member. No row: the programme's lowest tier (most members never move, so
# enrolment writes nothing). ``evaluated_on``: the last period boundary whose result was applied,
# so the nightly run applies each boundary once (and respects an override made since).
member_tiers = Table(
    "member_tiers",
    metadata,
    Column("member_id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("tier_key", String(64), nullable=False),
    Column("since", UTCDateTime(), nullable=False),
    Column("evaluated_on", Date),
    Column("overridden", Boolean, nullable=False, default=False),
    Column("override_reason", Text),
    Column("override_actor", String(128)),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint(
        "NOT overridden OR (override_reason IS NOT NULL AND override_reason <> '')",
        name="override_has_reason",
    ),
    Index("ix_member_tiers_programme", "programme_id", "tier_key"),
    tenant_fk("member_id", "members"),
    tenant_fk("programme_id", "programmes"),
)

# Append-only: every change of a member's tier (from, to, when, why). ``at`` is when the change
# took effect: the activity's time for an upgrade, the period boundary for the nightly run.
tier_history = Table(
    "tier_history",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("from_tier", String(64)),
    Column("to_tier", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("explanation", Text, nullable=False),
    Column("activity_id", id_column_type()),
    Column("job_date", Date),
    Column("actor", String(128)),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint(
        "reason IN ('upgrade', 'downgrade', 'override', 'initial')", name="reason_known"
    ),
    CheckConstraint("from_tier IS NULL OR from_tier <> to_tier", name="changes_tier"),
    Index("ix_tier_history_member", "member_id", "at"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("activity_id", "activities"),
)
