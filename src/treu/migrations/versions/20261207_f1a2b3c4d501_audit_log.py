"""audit log: staff actions, written in the transaction of the change

Revision ID: f1a2b3c4d501
Revises: f2a3b4c5d602
Create Date: 2026-12-07 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import treu.storage.types

revision = "f1a2b3c4d501"
down_revision = "f2a3b4c5d602"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "actor LIKE 'staff:%' OR actor LIKE 'key:%'", name=op.f("ck_audit_log_actor_known")
        ),
        sa.CheckConstraint("action LIKE '%_._%'", name=op.f("ck_audit_log_action_is_code")),
        sa.ForeignKeyConstraint(
            ["programme_id", "tenant_id"],
            ["programmes.id", "programmes.tenant_id"],
            name=op.f("fk_audit_log_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_log_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", "tenant_id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_tenant", "audit_log", ["tenant_id", "id"])
    op.create_index("ix_audit_log_actor", "audit_log", ["tenant_id", "actor", "id"])
    op.create_index("ix_audit_log_subject", "audit_log", ["tenant_id", "subject", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
    op.drop_index("ix_audit_log_actor", table_name="audit_log")
    op.drop_index("ix_audit_log_tenant", table_name="audit_log")
    op.drop_table("audit_log")
