"""stamps and campaigns

Revision ID: c2c3d4e5f602
Revises: c1b2d3e4f501
Create Date: 2026-11-29 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import treu.storage.types

revision = "c2c3d4e5f602"
down_revision = "c1b2d3e4f501"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stamp_cards",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("card_key", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("stamps_needed", sa.Integer(), nullable=False),
        sa.Column("stamps", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("voucher_id", sa.String(length=40), nullable=True),
        sa.Column("first_stamp_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "almost_complete_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("completed_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'completed', 'expired', 'cancelled')",
            name=op.f("ck_stamp_cards_status_known"),
        ),
        sa.CheckConstraint("number >= 1", name=op.f("ck_stamp_cards_number_positive")),
        sa.CheckConstraint(
            "stamps >= 0 AND stamps <= stamps_needed",
            name=op.f("ck_stamp_cards_stamps_within_card"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_stamp_cards_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f("fk_stamp_cards_programme_id_programmes")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_stamp_cards_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["voucher_id"], ["vouchers.id"], name=op.f("fk_stamp_cards_voucher_id_vouchers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stamp_cards")),
        sa.UniqueConstraint(
            "member_id", "card_key", "number", name=op.f("uq_stamp_cards_member_id_card_key_number")
        ),
    )
    with op.batch_alter_table("stamp_cards", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stamp_cards_member", ["member_id", "card_key", "status"], unique=False
        )
    op.create_table(
        "stamp_awards",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("activity_id", sa.String(length=40), nullable=False),
        sa.Column("purchase_id", sa.String(length=40), nullable=False),
        sa.Column("card_key", sa.String(length=64), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("stamps", sa.BigInteger(), nullable=False),
        sa.Column("forgiven", sa.BigInteger(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column(
            "units",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("forgiven >= 0", name=op.f("ck_stamp_awards_forgiven_not_negative")),
        sa.ForeignKeyConstraint(
            ["activity_id"], ["activities.id"], name=op.f("fk_stamp_awards_activity_id_activities")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_stamp_awards_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_stamp_awards_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["activities.id"], name=op.f("fk_stamp_awards_purchase_id_activities")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_stamp_awards_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stamp_awards")),
        sa.UniqueConstraint(
            "activity_id", "card_key", name=op.f("uq_stamp_awards_activity_id_card_key")
        ),
    )
    with op.batch_alter_table("stamp_awards", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stamp_awards_day", ["member_id", "card_key", "local_day"], unique=False
        )
        batch_op.create_index("ix_stamp_awards_purchase", ["purchase_id", "card_key"], unique=False)
    op.create_table(
        "campaign_awards",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("campaign", sa.String(length=32), nullable=False),
        sa.Column("occasion", sa.String(length=200), nullable=False),
        sa.Column("activity_id", sa.String(length=40), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=True),
        sa.Column("voucher_id", sa.String(length=40), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_campaign_awards_activity_id_activities"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_campaign_awards_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_campaign_awards_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_campaign_awards_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["voucher_id"], ["vouchers.id"], name=op.f("fk_campaign_awards_voucher_id_vouchers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_awards")),
        sa.UniqueConstraint(
            "tenant_id", "occasion", name=op.f("uq_campaign_awards_tenant_id_occasion")
        ),
    )
    with op.batch_alter_table("campaign_awards", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_awards_programme", ["programme_id", "campaign"], unique=False
        )
    op.create_table(
        "campaign_visits",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("per", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=64), nullable=False),
        sa.Column("activity_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_campaign_visits_activity_id_activities"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_campaign_visits_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_campaign_visits_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_visits")),
        sa.UniqueConstraint(
            "member_id", "per", "period", name=op.f("uq_campaign_visits_member_id_per_period")
        ),
    )


def downgrade() -> None:
    op.drop_table("campaign_visits")
    with op.batch_alter_table("campaign_awards", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_awards_programme")
    op.drop_table("campaign_awards")
    with op.batch_alter_table("stamp_awards", schema=None) as batch_op:
        batch_op.drop_index("ix_stamp_awards_purchase")
        batch_op.drop_index("ix_stamp_awards_day")
    op.drop_table("stamp_awards")
    with op.batch_alter_table("stamp_cards", schema=None) as batch_op:
        batch_op.drop_index("ix_stamp_cards_member")
    op.drop_table("stamp_cards")
