"""member login codes and staff users

Revision ID: b37c0c3b71f1
Revises: 8d3f6b1e2a47
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treu.storage.types

revision = "b37c0c3b71f1"
down_revision = "8d3f6b1e2a47"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('owner', 'manager', 'cashier')", name=op.f("ck_staff_users_role_known")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_staff_users_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("tenant_id", "email", name=op.f("uq_staff_users_tenant_id_email")),
    )
    op.create_table(
        "member_login_codes",
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "attempts >= 0 AND attempts <= 5",
            name=op.f("ck_member_login_codes_attempts_within_limit"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_login_codes_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_member_login_codes_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_login_codes")),
    )


def downgrade() -> None:
    op.drop_table("member_login_codes")
    op.drop_table("staff_users")
