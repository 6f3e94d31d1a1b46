"""Stamp cards: tables.

``stamp_cards`` holds each card instance a member has had: the open one (at most one per card
type, the member's current card), completed ones with their voucher, expired and cancelled ones.
``stamps`` of an open card is a cache of the ledger: the member's stamps balance equals the sum
over their open cards (``treu ledger verify`` checks it). ``stamp_awards`` records what each
activity did to each card type, so a return knows what its purchase gave.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type, json_type

stamp_cards = Table(
    "stamp_cards",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("card_key", String(64), nullable=False),
    Column("number", Integer, nullable=False),
    Column("stamps_needed", Integer, nullable=False),
    Column("stamps", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("voucher_id", id_column_type()),
    Column("first_stamp_at", UTCDateTime()),
    Column("almost_complete_at", UTCDateTime()),
    Column("completed_at", UTCDateTime()),
    Column("closed_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("member_id", "card_key", "number", "tenant_id"),
    CheckConstraint("number >= 1", name="number_positive"),
    CheckConstraint("stamps >= 0 AND stamps <= stamps_needed", name="stamps_within_card"),
    CheckConstraint("status IN ('open', 'completed', 'expired', 'cancelled')", name="status_known"),
    Index("ix_stamp_cards_member", "member_id", "card_key", "status"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("voucher_id", "vouchers"),
)

stamp_awards = Table(
    "stamp_awards",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("activity_id", id_column_type(), nullable=False),
    Column("purchase_id", id_column_type(), nullable=False),
    Column("card_key", String(64), nullable=False),
    Column("local_day", Date, nullable=False),
    Column("stamps", BigInteger, nullable=False),
    Column("forgiven", BigInteger, nullable=False),
    Column("explanation", Text, nullable=False),
    Column("units", json_type(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("activity_id", "card_key", "tenant_id"),
    CheckConstraint("forgiven >= 0", name="forgiven_not_negative"),
    Index("ix_stamp_awards_purchase", "purchase_id", "card_key"),
    Index("ix_stamp_awards_day", "member_id", "card_key", "local_day"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("activity_id", "activities"),
    tenant_fk("purchase_id", "activities"),
)
