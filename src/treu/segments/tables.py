"""Segments: who is in each segment since the last recompute, and uploaded static lists."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type

# Membership as of the last recompute, one row per member and segment (built-in or defined).
# A recompute writes only the difference and publishes segment.entered / segment.left for it,
# so a second run on the same day changes nothing. ``entered_at``: the instant of the recompute
# that first found the member in (the start of the nightly run's day, or the on-demand time).
segment_members = Table(
    "segment_members",
    metadata,
    Column("programme_id", id_column_type(), primary_key=True),
    Column("segment", String(64), primary_key=True),
    Column("member_id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("entered_at", UTCDateTime(), nullable=False),
    CheckConstraint("segment <> ''", name="segment_named"),
    Index("ix_segment_members_member", "member_id"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
)

# The uploaded list of a static segment (``static: true``): replaced as a whole by an upload.
# Kept apart from segment_members because a static segment may add conditions (consent, say):
# the list says who may be in, the recompute says who is.
segment_uploads = Table(
    "segment_uploads",
    metadata,
    Column("programme_id", id_column_type(), primary_key=True),
    Column("segment", String(64), primary_key=True),
    Column("member_id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("uploaded_at", UTCDateTime(), nullable=False),
    CheckConstraint("segment <> ''", name="segment_named"),
    Index("ix_segment_uploads_member", "member_id"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
)
