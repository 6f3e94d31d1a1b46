from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table, UniqueConstraint

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type, json_type

# One row per automation, member and occasion it was considered for: the UNIQUE key is what
# makes an automation fire at most once per occasion (inserted first, ON CONFLICT DO NOTHING;
# only the inserting transaction carries the action out). ``pending`` rows wait for ``due_at``
# (a delay); ``held_out`` rows are the control group; ``skipped`` says why nothing was done.
automation_runs = Table(
    "automation_runs",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("automation", String(64), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("occasion", String(200), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(200)),
    # what the action needs when it is carried out later (the event's payload, its id)
    Column("context", json_type(), nullable=False),
    Column("event_id", id_column_type()),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime()),
    UniqueConstraint(
        "programme_id",
        "automation",
        "member_id",
        "occasion",
        "tenant_id",
        name="uq_automation_runs_member_occasion_tenant_id",
    ),
    CheckConstraint("outcome IN ('pending', 'done', 'held_out', 'skipped')", name="outcome_known"),
    CheckConstraint(
        "(outcome = 'pending') = (completed_at IS NULL)", name="completed_unless_pending"
    ),
    Index("ix_automation_runs_due", "outcome", "due_at"),
    Index("ix_automation_runs_listing", "programme_id", "automation", "id"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
)
