from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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
from treu.storage.types import UTCDateTime, id_column_type

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type()),
    Column("kind", String(16), nullable=False),
    Column("unit", String(16), nullable=False),
    # Cached for member accounts only (NULL for system accounts: a row every event would update
    # serialises all writers; their balances are derived by summing transfers).
    Column("balance", BigInteger),
    CheckConstraint(
        "(member_id IS NULL AND balance IS NULL)"
        " OR (kind = 'debt' AND balance <= 0)"
        " OR (kind IN ('available', 'pending', 'held') AND balance >= 0)",
        name="balance_within_floor",
    ),
    UniqueConstraint("programme_id", "member_id", "kind", "unit", "tenant_id"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
)

transfers = Table(
    "transfers",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("debit_account_id", String(64), nullable=False),
    Column("credit_account_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("corrects_id", id_column_type()),
    Column("member_id", id_column_type()),
    Column("activity_id", id_column_type()),
    Column("hold_id", String(40)),
    Column("reason", Text),
    Column("actor", String(200)),
    Column("posted_at", UTCDateTime(), nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
    UniqueConstraint("tenant_id", "idempotency_key"),
    # A transfer is corrected at most once; a second correction must correct the correction.
    UniqueConstraint("corrects_id", "tenant_id"),
    Index("ix_transfers_member", "member_id", "id"),
    Index("ix_transfers_debit", "debit_account_id"),
    Index("ix_transfers_credit", "credit_account_id"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("debit_account_id", "accounts"),
    tenant_fk("credit_account_id", "accounts"),
    tenant_fk("corrects_id", "transfers"),
    tenant_fk("member_id", "members"),
    tenant_fk("activity_id", "activities"),
)

lots = Table(
    "lots",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("transfer_id", id_column_type(), nullable=False),
    Column("activity_id", id_column_type()),
    Column("amount", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("activates_at", UTCDateTime()),
    Column("expires_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_within_amount"),
    CheckConstraint("status IN ('pending', 'active', 'closed')", name="status_known"),
    CheckConstraint("status <> 'closed' OR remaining = 0", name="closed_is_empty"),
    Index("ix_lots_member_open", "member_id", "status", "expires_at"),
    Index("ix_lots_programme_expiry", "programme_id", "status", "expires_at"),
    Index("ix_lots_activity", "activity_id"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("transfer_id", "transfers"),
    tenant_fk("activity_id", "activities"),
)

# Which lots paid for which transfer. Negative amounts put points back (void, cancellation).
lot_allocations = Table(
    "lot_allocations",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("lot_id", id_column_type(), nullable=False),
    Column("transfer_id", id_column_type(), nullable=False),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount <> 0", name="amount_not_zero"),
    Index("ix_lot_allocations_lot", "lot_id"),
    Index("ix_lot_allocations_transfer", "transfer_id"),
    tenant_fk("lot_id", "lots"),
    tenant_fk("transfer_id", "transfers"),
)

holds = Table(
    "holds",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("transfer_id", id_column_type(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime()),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("status IN ('held', 'captured', 'voided')", name="status_known"),
    Index("ix_holds_member", "member_id", "status"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("transfer_id", "transfers"),
)
