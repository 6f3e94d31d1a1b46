"""Campaign mechanics: tables.

``campaign_awards`` has one row per occasion (``welcome:<member>``, ``anniversary:<member>:2027``,
``surprise:<member>:week:10`` ...): its unique ``occasion`` per tenant makes every award happen
once however often the enrolment, purchase or nightly run is retried. ``campaign_visits`` counts
a member's visit-weeks and visits for the surprise, one row per week or purchase.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from treu.storage.metadata import metadata
from treu.storage.types import UTCDateTime, id_column_type

campaign_awards = Table(
    "campaign_awards",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), nullable=False),
    Column("programme_id", ForeignKey("programmes.id"), nullable=False),
    Column("member_id", ForeignKey("members.id"), nullable=False),
    Column("campaign", String(32), nullable=False),
    Column("occasion", String(200), nullable=False),
    Column("activity_id", ForeignKey("activities.id")),
    Column("points", BigInteger),
    Column("voucher_id", ForeignKey("vouchers.id")),
    Column("explanation", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "occasion"),
    Index("ix_campaign_awards_programme", "programme_id", "campaign"),
)

campaign_visits = Table(
    "campaign_visits",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), nullable=False),
    Column("member_id", ForeignKey("members.id"), nullable=False),
    Column("per", String(8), nullable=False),
    Column("period", String(64), nullable=False),
    Column("activity_id", ForeignKey("activities.id"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("member_id", "per", "period"),
)
