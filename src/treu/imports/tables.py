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

# One row per file imported into a programme, found again by the file's content hash: running
# the same file again resumes at ``next_offset`` (or does nothing once ``done``). The checkpoint
# columns (next_offset, next_line, rows_*) are updated in the transaction of the rows they
# cover, so they never disagree with the data.
import_jobs = Table(
    "import_jobs",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("file_size", BigInteger, nullable=False),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of the whole file, hex
    Column("status", String(16), nullable=False),
    Column("rows_done", BigInteger, nullable=False),
    Column("rows_ok", BigInteger, nullable=False),
    Column("rows_failed", BigInteger, nullable=False),
    Column("next_offset", BigInteger, nullable=False),
    Column("next_line", BigInteger, nullable=False),
    Column("source", String(16), nullable=False),  # cli or api
    Column("started_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("error", Text),
    UniqueConstraint("programme_id", "kind", "fingerprint", "tenant_id"),
    CheckConstraint("kind IN ('members', 'activities')", name="kind_known"),
    CheckConstraint("status IN ('running', 'failed', 'done')", name="status_known"),
    CheckConstraint(
        "rows_ok >= 0 AND rows_failed >= 0 AND rows_done = rows_ok + rows_failed",
        name="counts_add_up",
    ),
    CheckConstraint("next_offset >= 0 AND next_offset <= file_size", name="offset_in_file"),
    CheckConstraint("(status = 'done') = (finished_at IS NOT NULL)", name="done_when_finished"),
    Index("ix_import_jobs_tenant", "tenant_id", "started_at"),
    tenant_fk("programme_id", "programmes"),
)

# The error report: one row per bad cell (or bad row), written with the checkpoint that covers
# its line. Unique per line and column, so a report can never list a problem twice.
import_errors = Table(
    "import_errors",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("job_id", id_column_type(), nullable=False),
    Column("line", BigInteger, nullable=False),
    Column("column_name", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    UniqueConstraint("job_id", "line", "column_name", "tenant_id"),
    CheckConstraint("line > 1", name="line_after_header"),
    tenant_fk("job_id", "import_jobs"),
)
