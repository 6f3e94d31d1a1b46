from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type, json_type

# Staff actions, one row each, written in the transaction of the change they record (so a
# change that rolled back leaves no entry, and no committed change lacks one). Rows are only
# ever inserted. Read newest first by tenant, optionally by actor or subject (a member).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type()),
    Column("actor", String(80), nullable=False),  # staff:<staff user id> | key:<api key id>
    Column("action", String(64), nullable=False),  # member.adjusted, programme.applied …
    Column("subject", String(200), nullable=False),  # a member id, programme id …
    Column("details", json_type(), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    tenant_fk("programme_id", "programmes"),
    CheckConstraint("actor LIKE 'staff:%' OR actor LIKE 'key:%'", name="actor_known"),
    CheckConstraint("action LIKE '%_._%'", name="action_is_code"),
    Index("ix_audit_log_tenant", "tenant_id", "id"),
    Index("ix_audit_log_actor", "tenant_id", "actor", "id"),
    Index("ix_audit_log_subject", "tenant_id", "subject", "id"),
)
