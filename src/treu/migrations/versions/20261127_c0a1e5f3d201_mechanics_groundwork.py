"""mechanics groundwork: stamp and wallet accounts, activity effects, standing

Revision ID: c0a1e5f3d201
Revises: b37c0c3b71f1
Create Date: 2026-11-27 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import treu.storage.types

revision = "c0a1e5f3d201"
down_revision = "b37c0c3b71f1"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

# Programmes and members created before stamps and the wallet existed get those accounts too
# (the ids follow treu.ledger.model: acc_<owner ulid>_<unit[:3]>_<kind>).
_SYSTEM_KINDS = ("issuance", "redemption", "breakage", "adjustment", "donation")
_MEMBER_KINDS = {"stamps": ("available",), "wallet": ("available", "held")}


def upgrade() -> None:
    with op.batch_alter_table("activities") as batch:
        batch.add_column(sa.Column("standing", _JSON, nullable=True))
    op.create_table(
        "activity_effects",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("activity_id", sa.String(length=40), nullable=True),
        sa.Column("mechanic", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("created_at", treu.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_activity_effects_activity_id_activities"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_activity_effects_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_activity_effects_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_activity_effects_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_effects")),
    )
    op.create_index("ix_activity_effects_activity", "activity_effects", ["activity_id"])
    op.create_index("ix_activity_effects_member", "activity_effects", ["member_id", "id"])
    # A reward may be only given (welcome gift, full stamp card): no points cost.
    with op.batch_alter_table("rewards") as batch:
        batch.drop_constraint(op.f("ck_rewards_cost_positive"), type_="check")
        batch.alter_column("cost", existing_type=sa.BigInteger(), nullable=True)
        batch.create_check_constraint(op.f("ck_rewards_cost_positive"), "cost IS NULL OR cost > 0")
    with op.batch_alter_table("vouchers") as batch:
        batch.add_column(sa.Column("grant_key", sa.String(length=200), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_vouchers_tenant_id_grant_key"), ["tenant_id", "grant_key"]
        )
    _backfill_accounts()


def _backfill_accounts() -> None:
    conn = op.get_bind()
    rows: list[tuple[object, ...]] = []
    for pid, tid in conn.execute(sa.text("SELECT id, tenant_id FROM programmes")):
        owner = pid.split("_", 1)[1]
        for unit in _MEMBER_KINDS:
            for kind in _SYSTEM_KINDS:
                rows.append((f"acc_{owner}_{unit[:3]}_{kind}", tid, pid, None, kind, unit, None))
    for mid, tid, pid in conn.execute(sa.text("SELECT id, tenant_id, programme_id FROM members")):
        owner = mid.split("_", 1)[1]
        for unit, kinds in _MEMBER_KINDS.items():
            for kind in kinds:
                rows.append((f"acc_{owner}_{unit[:3]}_{kind}", tid, pid, mid, kind, unit, 0))
    insert = sa.text(
        "INSERT INTO accounts (id, tenant_id, programme_id, member_id, kind, unit, balance)"
        " VALUES (:id, :tenant_id, :programme_id, :member_id, :kind, :unit, :balance)"
    )
    keys = ("id", "tenant_id", "programme_id", "member_id", "kind", "unit", "balance")
    if rows:
        conn.execute(insert, [dict(zip(keys, row, strict=True)) for row in rows])


def downgrade() -> None:
    op.execute("DELETE FROM accounts WHERE unit IN ('stamps', 'wallet')")
    with op.batch_alter_table("vouchers") as batch:
        batch.drop_constraint(op.f("uq_vouchers_tenant_id_grant_key"), type_="unique")
        batch.drop_column("grant_key")
    with op.batch_alter_table("rewards") as batch:
        batch.drop_constraint(op.f("ck_rewards_cost_positive"), type_="check")
        batch.alter_column("cost", existing_type=sa.BigInteger(), nullable=False)
        batch.create_check_constraint(op.f("ck_rewards_cost_positive"), "cost > 0")
    op.drop_index("ix_activity_effects_member", table_name="activity_effects")
    op.drop_index("ix_activity_effects_activity", table_name="activity_effects")
    op.drop_table("activity_effects")
    with op.batch_alter_table("activities") as batch:
        batch.drop_column("standing")
