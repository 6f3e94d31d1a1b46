"""memberships and wallet

Revision ID: c3d4e5f6a703
Revises: c2c3d4e5f602
Create Date: 2026-11-30 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treu.storage.types

revision = "c3d4e5f6a703"
down_revision = "c2c3d4e5f602"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "memberships",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("plan_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_until", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'past_due', 'cancelled', 'expired')",
            name=op.f("ck_memberships_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_memberships_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f("fk_memberships_programme_id_programmes")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_memberships_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint(
            "member_id", "plan_key", name=op.f("uq_memberships_member_id_plan_key")
        ),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index(
            "ix_memberships_programme_status", ["programme_id", "status"], unique=False
        )

    op.create_table(
        "membership_payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("membership_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("plan_key", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("paid_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_start", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("period_end", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome = 'failed' OR period_start IS NOT NULL",
            name=op.f("ck_membership_payments_paid_has_period"),
        ),
        sa.CheckConstraint(
            "outcome IN ('paid', 'failed')", name=op.f("ck_membership_payments_outcome_known")
        ),
        sa.CheckConstraint(
            "amount_minor >= 0", name=op.f("ck_membership_payments_amount_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_membership_payments_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_membership_payments_membership_id_memberships"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_membership_payments_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_membership_payments_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_membership_payments")),
        sa.UniqueConstraint(
            "programme_id",
            "external_id",
            name=op.f("uq_membership_payments_programme_id_external_id"),
        ),
    )
    with op.batch_alter_table("membership_payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_membership_payments_member", ["member_id", "plan_key", "period_start"], unique=False
        )
        batch_op.create_index(
            "ix_membership_payments_programme_time", ["programme_id", "paid_at"], unique=False
        )

    op.create_table(
        "membership_dividends",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("plan_key", sa.String(length=64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("eligible_minor", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.String(length=40), nullable=False),
        sa.Column("paid_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "amount_minor > 0", name=op.f("ck_membership_dividends_amount_positive")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_membership_dividends_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_membership_dividends_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_membership_dividends_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfers.id"],
            name=op.f("fk_membership_dividends_transfer_id_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_membership_dividends")),
        sa.UniqueConstraint(
            "member_id",
            "plan_key",
            "year",
            name=op.f("uq_membership_dividends_member_id_plan_key_year"),
        ),
    )
    with op.batch_alter_table("membership_dividends", schema=None) as batch_op:
        batch_op.create_index(
            "ix_membership_dividends_programme_time", ["programme_id", "paid_at"], unique=False
        )

    op.create_table(
        "wallet_cashback",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("purchase_id", sa.String(length=40), nullable=False),
        sa.Column("activity_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind = 'forgive' OR transfer_id IS NOT NULL",
            name=op.f("ck_wallet_cashback_money_moved"),
        ),
        sa.CheckConstraint(
            "kind IN ('credit', 'take_back', 'forgive')", name=op.f("ck_wallet_cashback_kind_known")
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_wallet_cashback_amount_positive")),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_wallet_cashback_activity_id_activities"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_wallet_cashback_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["activities.id"],
            name=op.f("fk_wallet_cashback_purchase_id_activities"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_wallet_cashback_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"], ["transfers.id"], name=op.f("fk_wallet_cashback_transfer_id_transfers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_cashback")),
    )
    with op.batch_alter_table("wallet_cashback", schema=None) as batch_op:
        batch_op.create_index("ix_wallet_cashback_purchase", ["purchase_id"], unique=False)

    op.create_table(
        "wallet_holds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("transfer_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('held', 'captured', 'voided')", name=op.f("ck_wallet_holds_status_known")
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_wallet_holds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_wallet_holds_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_wallet_holds_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_wallet_holds_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"], ["transfers.id"], name=op.f("fk_wallet_holds_transfer_id_transfers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_holds")),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_wallet_holds_tenant_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("wallet_holds", schema=None) as batch_op:
        batch_op.create_index("ix_wallet_holds_member", ["member_id", "status"], unique=False)

    op.create_table(
        "gift_cards",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issued_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("redeemed_by", sa.String(length=40), nullable=True),
        sa.Column("closed_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'redeemed', 'expired')", name=op.f("ck_gift_cards_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_gift_cards_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f("fk_gift_cards_programme_id_programmes")
        ),
        sa.ForeignKeyConstraint(
            ["redeemed_by"], ["members.id"], name=op.f("fk_gift_cards_redeemed_by_members")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_gift_cards_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_cards")),
        sa.UniqueConstraint("account_id", name=op.f("uq_gift_cards_account_id")),
        sa.UniqueConstraint(
            "tenant_id", "code_hash", name=op.f("uq_gift_cards_tenant_id_code_hash")
        ),
    )
    with op.batch_alter_table("gift_cards", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gift_cards_programme_expiry", ["programme_id", "status", "expires_at"], unique=False
        )


def downgrade() -> None:
    for table, indexes in (
        ("gift_cards", ("ix_gift_cards_programme_expiry",)),
        ("wallet_holds", ("ix_wallet_holds_member",)),
        ("wallet_cashback", ("ix_wallet_cashback_purchase",)),
        ("membership_dividends", ("ix_membership_dividends_programme_time",)),
        (
            "membership_payments",
            ("ix_membership_payments_programme_time", "ix_membership_payments_member"),
        ),
        ("memberships", ("ix_memberships_programme_status",)),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
