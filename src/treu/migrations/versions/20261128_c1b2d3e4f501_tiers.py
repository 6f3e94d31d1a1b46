"""tiers

Revision ID: c1b2d3e4f501
Revises: c0a1e5f3d201
Create Date: 2026-11-28 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treu.storage.types

revision = "c1b2d3e4f501"
down_revision = "c0a1e5f3d201"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_tiers",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("tier_key", sa.String(length=64), nullable=False),
        sa.Column("since", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("evaluated_on", sa.Date(), nullable=True),
        sa.Column("overridden", sa.Boolean(), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("override_actor", sa.String(length=128), nullable=True),
        sa.Column("updated_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "NOT overridden OR (override_reason IS NOT NULL AND override_reason <> '')",
            name=op.f("ck_member_tiers_override_has_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_tiers_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_member_tiers_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_member_tiers_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_tiers")),
    )
    with op.batch_alter_table("member_tiers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_member_tiers_programme", ["programme_id", "tier_key"], unique=False
        )

    op.create_table(
        "tier_history",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("from_tier", sa.String(length=64), nullable=True),
        sa.Column("to_tier", sa.String(length=64), nullable=False),
        sa.Column("at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("activity_id", sa.String(length=40), nullable=True),
        sa.Column("job_date", sa.Date(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "from_tier IS NULL OR from_tier <> to_tier", name=op.f("ck_tier_history_changes_tier")
        ),
        sa.CheckConstraint(
            "reason IN ('upgrade', 'downgrade', 'override', 'initial')",
            name=op.f("ck_tier_history_reason_known"),
        ),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_tier_history_activity_id_activities"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_tier_history_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_tier_history_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tier_history_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_history")),
    )
    with op.batch_alter_table("tier_history", schema=None) as batch_op:
        batch_op.create_index("ix_tier_history_member", ["member_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tier_history", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_history_member")
    op.drop_table("tier_history")
    with op.batch_alter_table("member_tiers", schema=None) as batch_op:
        batch_op.drop_index("ix_member_tiers_programme")
    op.drop_table("member_tiers")
