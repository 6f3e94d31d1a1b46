"""Referrals: tables."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
)

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type, json_type

# One code per member, made at enrolment (or when first asked for). The enrolment's client
# address is kept as a hash only, for the fraud checks of the referrals the member makes.
referral_codes = Table(
    "referral_codes",
    metadata,
    Column("member_id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("code", String(16), nullable=False),
    Column("address_hash", String(64)),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("programme_id", "code", "tenant_id"),
    tenant_fk("member_id", "members"),
    tenant_fk("programme_id", "programmes"),
)

# A friend is referred once (unique friend); the status moves pending/held -> converted or
# rejected, and held -> pending when staff approve before the qualifying purchase.
referrals = Table(
    "referrals",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("referrer_id", id_column_type(), nullable=False),
    Column("friend_id", id_column_type(), nullable=False),
    Column("code", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reasons", json_type(), nullable=False),  # why it was held
    Column("address_hash", String(64)),
    # the friend's qualifying purchase, once it happened (also while held)
    Column("purchase_id", id_column_type()),
    Column("confirm_at", UTCDateTime()),  # qualified: when the nightly run may confirm it
    Column("referrer_rewarded", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("converted_at", UTCDateTime()),
    Column("decided_at", UTCDateTime()),
    Column("decided_by", String(100)),
    UniqueConstraint("friend_id", "tenant_id"),
    Index("ix_referrals_referrer", "referrer_id", "created_at"),
    Index("ix_referrals_programme_status", "programme_id", "status", "confirm_at"),
    CheckConstraint(
        "status IN ('pending', 'held', 'qualified', 'converted', 'rejected')",
        name="status_known",
    ),
    CheckConstraint("referrer_id <> friend_id", name="not_self"),
    CheckConstraint("status <> 'converted' OR converted_at IS NOT NULL", name="converted_has_time"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("referrer_id", "members"),
    tenant_fk("friend_id", "members"),
    tenant_fk("purchase_id", "activities"),
)
