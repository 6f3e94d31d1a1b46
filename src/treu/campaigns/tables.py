"""Campaign mechanics: tables.

``campaign_awards`` has one row per occasion (``welcome:<member>``, ``anniversary:<member>:2027``,
``surprise:<member>:week:10`` ...): its unique ``occasion`` per tenant makes every award happen
once however often the enrolment, purchase or nightly run is retried. ``campaign_visits`` counts
a member's visit-weeks and visits for the surprise, one row per week or purchase.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from treu.storage.metadata import metadata, tenant_fk
from treu.storage.types import UTCDateTime, id_column_type

campaign_awards = Table(
    "campaign_awards",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("programme_id", id_column_type(), nullable=False),
    Column("member_id", id_column_type(), nullable=False),
    Column("campaign", String(32), nullable=False),
    Column("occasion", String(200), nullable=False),
    Column("activity_id", id_column_type()),
    Column("points", BigInteger),
    Column("voucher_id", id_column_type()),
    Column("explanation", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "occasion"),
    Index("ix_campaign_awards_programme", "programme_id", "campaign"),
    tenant_fk("programme_id", "programmes"),
    tenant_fk("member_id", "members"),
    tenant_fk("activity_id", "activities"),
    tenant_fk("voucher_id", "vouchers"),
)

campaign_visits = Table(
    "campaign_visits",
    metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("member_id", id_column_type(), nullable=False),
    Column("per", String(8), nullable=False),
    Column("period", String(64), nullable=False),
    Column("activity_id", id_column_type(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("member_id", "per", "period", "tenant_id"),
    tenant_fk("member_id", "members"),
    tenant_fk("activity_id", "activities"),
)
