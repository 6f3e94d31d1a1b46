"""segments

Revision ID: d2e3f4a5b602
Revises: d1e2f3a4b501
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treu.storage.types

revision = "d2e3f4a5b602"
down_revision = "d1e2f3a4b501"
branch_labels = None
depends_on = None


def _table(name: str, instant: str) -> None:
    op.create_table(
        name,
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column(instant, treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("segment <> ''", name=op.f(f"ck_{name}_segment_named")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f(f"fk_{name}_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f(f"fk_{name}_programme_id_programmes")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{name}_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("programme_id", "segment", "member_id", name=op.f(f"pk_{name}")),
    )
    op.create_index(f"ix_{name}_member", name, ["member_id"])


def upgrade() -> None:
    _table("segment_members", "entered_at")
    _table("segment_uploads", "uploaded_at")


def downgrade() -> None:
    op.drop_index("ix_segment_uploads_member", table_name="segment_uploads")
    op.drop_table("segment_uploads")
    op.drop_index("ix_segment_members_member", table_name="segment_members")
    op.drop_table("segment_members")
