from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, UniqueConstraint

from treu.storage.metadata import metadata
from treu.storage.types import UTCDateTime, id_column_type, json_type

# Domain events written in the same transaction as the change they announce (transactional
# outbox). Webhook and message delivery read from here; ``dedupe_key`` makes "at most once per
# occasion" events (expiry reminders) idempotent in the database. Two consumers mark what they
# have read: webhooks (``dispatched_at``) and automations (``automated_at``).
outbox = Table(
    "outbox",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", id_column_type(), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("payload", json_type(), nullable=False),
    Column("dedupe_key", String(200)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("dispatched_at", UTCDateTime()),
    Column("automated_at", UTCDateTime()),
    UniqueConstraint("tenant_id", "dedupe_key"),
    Index("ix_outbox_pending", "dispatched_at", "id"),
    Index("ix_outbox_automation_pending", "automated_at", "id"),
)
