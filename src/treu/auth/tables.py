from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type, json_type

# Tenant API keys. Only the SHA-256 of the token is kept; the token is shown once.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("store_id", id_column_type()),
    Column("secret_hash", String(64), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # set by a rotation (the old key keeps working for a grace period) or at creation
    Column("expires_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    CheckConstraint("scope IN ('admin', 'integration', 'pos', 'read')", name="scope_known"),
    # a store binding makes sense for a till only
    CheckConstraint("store_id IS NULL OR scope = 'pos'", name="store_only_for_pos"),
    Index("ix_api_keys_tenant_id", "tenant_id", "id"),
    tenant_fk("store_id", "stores"),
)

# The first response to a POST with an Idempotency-Key, per API key, kept 24 hours and replayed.
# ``status_code`` NULL: the first request is still running (a second one gets 409).
idempotency_records = Table(
    "idempotency_records",
    metadata,
    # whose request: an API key, a staff user or a member (ids are prefixed, never shared)
    Column("principal_id", String(40), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer),
    Column("headers", json_type()),
    Column("body", LargeBinary),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime()),
    CheckConstraint(
        "status_code IS NULL OR (status_code >= 200 AND status_code < 600)", name="status_known"
    ),
    Index("ix_idempotency_records_created_at", "created_at"),
)

# A member's one-time login code (treu.auth.members): one per member, a new request replaces it;
# only an HMAC of the code is kept. Used codes are deleted; used-up ones stay until replaced.
member_login_codes = Table(
    "member_login_codes",
    metadata,
    Column("member_id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("code_hash", String(64), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # the guarded update that counts a guess refuses the sixth (tokens.LOGIN_CODE_TRIES)
    CheckConstraint("attempts >= 0 AND attempts <= 5", name="attempts_within_limit"),
    tenant_fk("member_id", "members"),
)

# Staff users of a tenant (owner, manager, cashier) for the web console; argon2id hashes only.
staff_users = Table(
    "staff_users",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("email", String(320), nullable=False),  # normalised: lower case
    Column("name", String(200)),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime()),
    CheckConstraint("role IN ('owner', 'manager', 'cashier')", name="role_known"),
    UniqueConstraint("tenant_id", "email"),
)
