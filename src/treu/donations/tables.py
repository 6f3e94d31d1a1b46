"""Donations: tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
)

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type

# Write-once: one row per donation, next to the ledger transfer that moved the points. The
# money is what the programme owes the charity; the points are in the donation account.
donations = Table(
    "donations",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("charity", String(64), nullable=False),
    Column("unit", String(8), nullable=False),  # what was given: points or wallet money
    Column("points", BigInteger, nullable=False),  # 0 for wallet money
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("transfer_id", id_column_type(), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "idempotency_key"),
    UniqueConstraint("transfer_id", "tenant_id"),
    Index("ix_donations_programme_time", "programme_id", "created_at"),
    Index("ix_donations_member", "member_id", "created_at"),
    CheckConstraint("unit IN ('points', 'wallet')", name="unit_known"),
    CheckConstraint(
        "(unit = 'points' AND points > 0) OR (unit = 'wallet' AND points = 0)",
        name="points_match_unit",
    ),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("transfer_id", "transfers"),
)
