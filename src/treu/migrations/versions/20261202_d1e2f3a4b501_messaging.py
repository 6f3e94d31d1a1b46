"""messaging: messages, suppressions, evidence of consent

Revision ID: d1e2f3a4b501
Revises: c4e5f6a7b804
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import treu.storage.types

revision = "d1e2f3a4b501"
down_revision = "c4e5f6a7b804"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("automation", sa.String(length=64), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("not_before", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("sent_at", treu.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_messages_attempts_not_negative")),
        sa.CheckConstraint(
            "channel IN ('email', 'sms', 'push', 'webhook')", name=op.f("ck_messages_channel_known")
        ),
        sa.CheckConstraint(
            "kind IN ('transactional', 'marketing')", name=op.f("ck_messages_kind_known")
        ),
        sa.CheckConstraint(
            "status <> 'sent' OR sent_at IS NOT NULL", name=op.f("ck_messages_sent_has_time")
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed', 'suppressed')",
            name=op.f("ck_messages_status_known"),
        ),
        sa.CheckConstraint(
            "status <> 'suppressed' OR reason IS NOT NULL",
            name=op.f("ck_messages_suppressed_has_reason"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('queued', 'sending') OR next_attempt_at IS NOT NULL",
            name=op.f("ck_messages_waiting_is_scheduled"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_messages_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f("fk_messages_programme_id_programmes")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_messages_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "tenant_id", "dedupe_key", name=op.f("uq_messages_tenant_id_dedupe_key")
        ),
    )
    op.create_index("ix_messages_due", "messages", ["status", "next_attempt_at"])
    op.create_index("ix_messages_member", "messages", ["member_id", "id"])
    op.create_index(
        "ix_messages_member_channel", "messages", ["member_id", "channel", "created_at"]
    )
    op.create_table(
        "message_suppressions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('email', 'sms', 'push', 'webhook')",
            name=op.f("ck_message_suppressions_channel_known"),
        ),
        sa.CheckConstraint(
            "reason IN ('bounced', 'complained', 'unsubscribed')",
            name=op.f("ck_message_suppressions_reason_known"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_message_suppressions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_suppressions")),
        sa.UniqueConstraint(
            "tenant_id",
            "channel",
            "address",
            name=op.f("uq_message_suppressions_tenant_id_channel_address"),
        ),
    )
    with op.batch_alter_table("member_consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_version", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("evidence", _json(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("member_consents", schema=None) as batch_op:
        batch_op.drop_column("evidence")
        batch_op.drop_column("text_version")
    op.drop_table("message_suppressions")
    op.drop_index("ix_messages_member_channel", table_name="messages")
    op.drop_index("ix_messages_member", table_name="messages")
    op.drop_index("ix_messages_due", table_name="messages")
    op.drop_table("messages")
