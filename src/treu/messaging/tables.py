from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type

# One row per message, rendered when it was queued: the log shows what was (or would have been)
# sent. ``dedupe_key`` is unique per tenant, so a second enqueue of the same occasion (a retried
# automation, a replayed event) finds the first row instead of queueing again. A dispatcher
# claims a due row by setting it ``sending`` with ``next_attempt_at`` a lease ahead: if it dies
# before recording the outcome, the row is due again when the lease is over.
messages = Table(
    "messages",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("template", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("automation", String(64)),
    Column("dedupe_key", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(32)),
    Column("locale", String(16)),
    Column("to_address", String(320)),
    Column("subject", String(500)),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text),
    Column("not_before", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime()),
    Column("last_error", String(500)),
    Column("provider_id", String(200)),  # the SMTP Message-ID, the SMS provider's id
    Column("sent_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "dedupe_key"),
    CheckConstraint(
        "status IN ('queued', 'sending', 'sent', 'failed', 'suppressed')", name="status_known"
    ),
    CheckConstraint("kind IN ('transactional', 'marketing')", name="kind_known"),
    CheckConstraint("channel IN ('email', 'sms', 'push', 'webhook')", name="channel_known"),
    CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    CheckConstraint(
        "status NOT IN ('queued', 'sending') OR next_attempt_at IS NOT NULL",
        name="waiting_is_scheduled",
    ),
    CheckConstraint("status <> 'suppressed' OR reason IS NOT NULL", name="suppressed_has_reason"),
    CheckConstraint("status <> 'sent' OR sent_at IS NOT NULL", name="sent_has_time"),
    Index("ix_messages_due", "status", "next_attempt_at"),
    Index("ix_messages_member", "member_id", "id"),
    # the frequency cap counts a member's marketing messages on a channel in the last 7 days
    Index("ix_messages_member_channel", "member_id", "channel", "created_at"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
)

# Addresses nothing (bounced) or no marketing (complained, unsubscribed) goes to, as reported by
# the mail provider or found by the SMTP dispatcher. Per tenant: an address that bounced for one
# programme bounces for all of the tenant's programmes.
message_suppressions = Table(
    "message_suppressions",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("address", String(320), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("detail", String(500)),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "channel", "address"),
    CheckConstraint("reason IN ('bounced', 'complained', 'unsubscribed')", name="reason_known"),
    CheckConstraint("channel IN ('email', 'sms', 'push', 'webhook')", name="channel_known"),
)
