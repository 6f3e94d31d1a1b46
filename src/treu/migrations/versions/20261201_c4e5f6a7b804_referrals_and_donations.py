"""referrals and donations

Revision ID: c4e5f6a7b804
Revises: c3d4e5f6a703
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import treu.storage.types

revision = "c4e5f6a7b804"
down_revision = "c3d4e5f6a703"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "donations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("charity", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("transfer_id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_donations_amount_positive")),
        sa.CheckConstraint(
            "(unit = 'points' AND points > 0) OR (unit = 'wallet' AND points = 0)",
            name=op.f("ck_donations_points_match_unit"),
        ),
        sa.CheckConstraint("unit IN ('points', 'wallet')", name=op.f("ck_donations_unit_known")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_donations_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f("fk_donations_programme_id_programmes")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_donations_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"], ["transfers.id"], name=op.f("fk_donations_transfer_id_transfers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_donations")),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_donations_tenant_id_idempotency_key")
        ),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_donations_transfer_id")),
    )
    op.create_index("ix_donations_member", "donations", ["member_id", "created_at"])
    op.create_index("ix_donations_programme_time", "donations", ["programme_id", "created_at"])
    op.create_table(
        "referral_codes",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_referral_codes_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_referral_codes_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_referral_codes_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_referral_codes")),
        sa.UniqueConstraint(
            "programme_id", "code", name=op.f("uq_referral_codes_programme_id_code")
        ),
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("referrer_id", sa.String(length=40), nullable=False),
        sa.Column("friend_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("address_hash", sa.String(length=64), nullable=True),
        sa.Column("purchase_id", sa.String(length=40), nullable=True),
        sa.Column("confirm_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("referrer_rewarded", sa.Boolean(), nullable=False),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("converted_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "status <> 'converted' OR converted_at IS NOT NULL",
            name=op.f("ck_referrals_converted_has_time"),
        ),
        sa.CheckConstraint("referrer_id <> friend_id", name=op.f("ck_referrals_not_self")),
        sa.CheckConstraint(
            "status IN ('pending', 'held', 'qualified', 'converted', 'rejected')",
            name=op.f("ck_referrals_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["friend_id"], ["members.id"], name=op.f("fk_referrals_friend_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f("fk_referrals_programme_id_programmes")
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["activities.id"], name=op.f("fk_referrals_purchase_id_activities")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["members.id"], name=op.f("fk_referrals_referrer_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_referrals_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("friend_id", name=op.f("uq_referrals_friend_id")),
    )
    op.create_index(
        "ix_referrals_programme_status", "referrals", ["programme_id", "status", "confirm_at"]
    )
    op.create_index("ix_referrals_referrer", "referrals", ["referrer_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_referrals_referrer", table_name="referrals")
    op.drop_index("ix_referrals_programme_status", table_name="referrals")
    op.drop_table("referrals")
    op.drop_table("referral_codes")
    op.drop_index("ix_donations_programme_time", table_name="donations")
    op.drop_index("ix_donations_member", table_name="donations")
    op.drop_table("donations")
