"""Paid memberships: tables.

``memberships`` is one row per member and plan: the reported facts (paid until, last failure,
cancellation) and the status last announced, which the nightly run compares with the status
the facts give today to publish transitions. ``membership_payments`` is the revenue record
(never points); ``membership_dividends`` is one row per member, plan and year paid.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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
from treu.storage.types import UTCDateTime, id_column_type

memberships = Table(
    "memberships",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("plan_key", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("paid_until", UTCDateTime()),  # NULL: lifetime
    Column("failed_at", UTCDateTime()),
    Column("cancelled_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint(
        "status IN ('active', 'past_due', 'cancelled', 'expired')", name="status_known"
    ),
    UniqueConstraint("member_id", "plan_key", "tenant_id"),
    Index("ix_memberships_programme_status", "programme_id", "status"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
)

membership_payments = Table(
    "membership_payments",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("membership_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("plan_key", String(64), nullable=False),
    Column("external_id", String(128), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("paid_at", UTCDateTime(), nullable=False),
    Column("period_start", UTCDateTime()),  # a failed payment covers no period
    Column("period_end", UTCDateTime()),  # NULL for a paid lifetime plan: never ends
    Column("recorded_at", UTCDateTime(), nullable=False),
    CheckConstraint("outcome IN ('paid', 'failed')", name="outcome_known"),
    CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
    CheckConstraint("outcome = 'failed' OR period_start IS NOT NULL", name="paid_has_period"),
    UniqueConstraint("programme_id", "external_id", "tenant_id"),
    Index("ix_membership_payments_member", "member_id", "plan_key", "period_start"),
    Index("ix_membership_payments_programme_time", "programme_id", "paid_at"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("membership_id", "memberships"),
    tenant_fk("member_id", "members"),
)

membership_dividends = Table(
    "membership_dividends",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("plan_key", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("eligible_minor", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("transfer_id", id_column_type(), nullable=False),
    Column("paid_at", UTCDateTime(), nullable=False),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    UniqueConstraint("member_id", "plan_key", "year", "tenant_id"),
    Index("ix_membership_dividends_programme_time", "programme_id", "paid_at"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("transfer_id", "transfers"),
)
