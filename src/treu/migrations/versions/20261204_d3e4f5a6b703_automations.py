"""automations: automation runs, outbox.automated_at

Revision ID: d3e4f5a6b703
Revises: d2e3f4a5b602
Create Date: 2026-12-04 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import treu.storage.types

revision = "d3e4f5a6b703"
down_revision = "d2e3f4a5b602"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "automation_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("automation", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("occasion", sa.String(length=200), nullable=False),
        sa.Column("trigger", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("context", _JSON, nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=True),
        sa.Column("due_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('pending', 'done', 'held_out', 'skipped')",
            name=op.f("ck_automation_runs_outcome_known"),
        ),
        sa.CheckConstraint(
            "(outcome = 'pending') = (completed_at IS NULL)",
            name=op.f("ck_automation_runs_completed_unless_pending"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_automation_runs_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_automation_runs_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_automation_runs_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_runs")),
        sa.UniqueConstraint(
            "programme_id",
            "automation",
            "member_id",
            "occasion",
            name=op.f("uq_automation_runs_programme_id_automation_member_id_occasion"),
        ),
    )
    op.create_index("ix_automation_runs_due", "automation_runs", ["outcome", "due_at"])
    op.create_index(
        "ix_automation_runs_listing", "automation_runs", ["programme_id", "automation", "id"]
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("automated_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
    # Events from before automations existed are history, not news: a welcome e-mail for a
    # member who joined last year would be a surprise. They count as processed.
    op.execute("UPDATE outbox SET automated_at = created_at")
    op.create_index("ix_outbox_automation_pending", "outbox", ["automated_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_automation_pending", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("automated_at")
    op.drop_index("ix_automation_runs_listing", table_name="automation_runs")
    op.drop_index("ix_automation_runs_due", table_name="automation_runs")
    op.drop_table("automation_runs")
