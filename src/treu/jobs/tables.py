from __future__ import annotations

from sqlalchemy import Column, Date, ForeignKey, Integer, String, Table, UniqueConstraint

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type

# One row per nightly step that finished for a programme and date: a second run of the same
# date skips it (each step is also idempotent on its own, this just saves the work).
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("step", String(64), nullable=False),
    Column("run_date", Date, nullable=False),
    Column("processed", Integer, nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    UniqueConstraint("programme_id", "step", "run_date", "tenant_id"),
    tenant_fk("programme_id", "programmes"),
)
