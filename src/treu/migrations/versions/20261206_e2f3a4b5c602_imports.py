"""imports: jobs with their checkpoint, and the error report

Revision ID: e2f3a4b5c602
Revises: e1f2a3b4c501
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import treu.storage.types

revision = "e2f3a4b5c602"
down_revision = "e1f2a3b4c501"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows_done", sa.BigInteger(), nullable=False),
        sa.Column("rows_ok", sa.BigInteger(), nullable=False),
        sa.Column("rows_failed", sa.BigInteger(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("next_line", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("started_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('members', 'activities')", name=op.f("ck_import_jobs_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('running', 'failed', 'done')", name=op.f("ck_import_jobs_status_known")
        ),
        sa.CheckConstraint(
            "rows_ok >= 0 AND rows_failed >= 0 AND rows_done = rows_ok + rows_failed",
            name=op.f("ck_import_jobs_counts_add_up"),
        ),
        sa.CheckConstraint(
            "next_offset >= 0 AND next_offset <= file_size",
            name=op.f("ck_import_jobs_offset_in_file"),
        ),
        sa.CheckConstraint(
            "(status = 'done') = (finished_at IS NOT NULL)",
            name=op.f("ck_import_jobs_done_when_finished"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f("fk_import_jobs_programme_id_programmes")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_import_jobs_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
        sa.UniqueConstraint(
            "programme_id",
            "kind",
            "fingerprint",
            name=op.f("uq_import_jobs_programme_id_kind_fingerprint"),
        ),
    )
    op.create_index("ix_import_jobs_tenant", "import_jobs", ["tenant_id", "started_at"])
    op.create_table(
        "import_errors",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("column_name", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint("line > 1", name=op.f("ck_import_errors_line_after_header")),
        sa.ForeignKeyConstraint(
            ["job_id"], ["import_jobs.id"], name=op.f("fk_import_errors_job_id_import_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_import_errors_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_errors")),
        sa.UniqueConstraint(
            "job_id", "line", "column_name", name=op.f("uq_import_errors_job_id_line_column_name")
        ),
    )


def downgrade() -> None:
    op.drop_table("import_errors")
    op.drop_index("ix_import_jobs_tenant", table_name="import_jobs")
    op.drop_table("import_jobs")
