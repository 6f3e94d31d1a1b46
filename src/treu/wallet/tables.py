"""The wallet: tables. The money itself is in the ledger (``Unit.WALLET`` accounts and
transfers); these tables say what the transfers were for."""

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

# A payment authorised at the till: the money moved available -> held by ``transfer_id``, then
# held -> redemption (captured) or back (voided).
wallet_holds = Table(
    "wallet_holds",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("transfer_id", id_column_type(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime()),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("status IN ('held', 'captured', 'voided')", name="status_known"),
    UniqueConstraint("tenant_id", "idempotency_key"),
    Index("ix_wallet_holds_member", "member_id", "status"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("transfer_id", "transfers"),
)

# Cashback per purchase, append-only: what was credited, what returns took back and what they
# forgave (money already spent); what a later return still owes is credited minus both.
wallet_cashback = Table(
    "wallet_cashback",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("member_id", id_column_type(), nullable=False),
    Column("purchase_id", id_column_type(), nullable=False),
    Column("activity_id", id_column_type(), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("transfer_id", id_column_type()),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("kind IN ('credit', 'take_back', 'forgive')", name="kind_known"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("kind = 'forgive' OR transfer_id IS NOT NULL", name="money_moved"),
    Index("ix_wallet_cashback_purchase", "purchase_id"),
    tenant_fk("member_id", "members"),
    tenant_fk("purchase_id", "activities"),
    tenant_fk("activity_id", "activities"),
    tenant_fk("transfer_id", "transfers"),
)

# A gift card: bearer money in its own ledger account (``account_id``: a wallet ``available``
# account without a member). Only the code's SHA-256 is kept; ``last4`` is for receipts.
gift_cards = Table(
    "gift_cards",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("redeemed_by", id_column_type()),
    Column("closed_at", UTCDateTime()),
    CheckConstraint("status IN ('active', 'redeemed', 'expired')", name="status_known"),
    UniqueConstraint("tenant_id", "code_hash"),
    UniqueConstraint("account_id", "tenant_id"),
    Index("ix_gift_cards_programme_expiry", "programme_id", "status", "expires_at"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("account_id", "accounts"),
    tenant_fk("redeemed_by", "members"),
)
