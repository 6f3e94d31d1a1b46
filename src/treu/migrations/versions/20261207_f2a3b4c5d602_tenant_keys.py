"""keys: tenant_id in every primary key, unique constraint and reference (Citus-ready)

Every table but ``tenants`` gets ``tenant_id`` as the last column of its primary key and of every
unique constraint that did not name it yet, and every reference between two tenant tables becomes
``(column, tenant_id) -> (id, tenant_id)`` (ADR 0008). Names stay those of the naming convention
(``fk_<table>_<column>_<referred>``, ``pk_<table>``); a unique constraint's name gains
``_tenant_id``. ``programmes``' UNIQUE (tenant_id, id) goes: the primary key (id, tenant_id) is it.

SQLite rebuilds each table (batch mode); ``treu.storage.migrate`` runs migrations with foreign
keys off, and the upgrade ends with ``PRAGMA foreign_key_check``. PostgreSQL drops the references,
rebuilds the keys and adds the references back, which checks every row.

Revision ID: f2a3b4c5d602
Revises: e2f3a4b5c602
Create Date: 2026-12-07 09:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "f2a3b4c5d602"
down_revision = "e2f3a4b5c602"
branch_labels = None
depends_on = None

T = "tenant_id"

# The primary key of every tenant table before this revision; after it, the same plus tenant_id.
PRIMARY_KEYS = {
    "accounts": ("id",),
    "activities": ("id",),
    "activity_effects": ("id",),
    "api_keys": ("id",),
    "automation_runs": ("id",),
    "awards": ("id",),
    "campaign_awards": ("id",),
    "campaign_visits": ("id",),
    "donations": ("id",),
    "gift_cards": ("id",),
    "holds": ("id",),
    "idempotency_records": ("principal_id", "key"),
    "import_errors": ("id",),
    "import_jobs": ("id",),
    "job_runs": ("id",),
    "lot_allocations": ("id",),
    "lots": ("id",),
    "member_consents": ("id",),
    "member_identifiers": ("id",),
    "member_login_codes": ("member_id",),
    "member_tiers": ("member_id",),
    "members": ("id",),
    "membership_dividends": ("id",),
    "membership_payments": ("id",),
    "memberships": ("id",),
    "message_suppressions": ("id",),
    "messages": ("id",),
    "outbox": ("id",),
    "programme_revisions": ("id",),
    "programmes": ("id",),
    "redemptions": ("id",),
    "referral_codes": ("member_id",),
    "referrals": ("id",),
    "rewards": ("id",),
    "rule_budgets": ("programme_id", "rule_key"),
    "segment_members": ("programme_id", "segment", "member_id"),
    "segment_uploads": ("programme_id", "segment", "member_id"),
    "shop_connections": ("id",),
    "shop_orders": ("programme_id", "purchase_external_id"),
    "shop_product_mappings": ("connection_id", "match", "value"),
    "shop_webhook_receipts": ("id",),
    "staff_users": ("id",),
    "stamp_awards": ("id",),
    "stamp_cards": ("id",),
    "stores": ("id",),
    "tier_history": ("id",),
    "transfers": ("id",),
    "vouchers": ("id",),
    "wallet_cashback": ("id",),
    "wallet_holds": ("id",),
    "webhook_attempts": ("id",),
    "webhook_deliveries": ("id",),
    "webhook_endpoints": ("id",),
}

# Unique constraints that did not name the tenant: (table, columns before); tenant_id is appended.
UNIQUES = [
    ("accounts", ("programme_id", "member_id", "kind", "unit")),
    ("activities", ("programme_id", "type", "external_id")),
    ("automation_runs", ("programme_id", "automation", "member_id", "occasion")),
    ("campaign_visits", ("member_id", "per", "period")),
    ("donations", ("transfer_id",)),
    ("gift_cards", ("account_id",)),
    ("import_errors", ("job_id", "line", "column_name")),
    ("import_jobs", ("programme_id", "kind", "fingerprint")),
    ("job_runs", ("programme_id", "step", "run_date")),
    ("member_identifiers", ("programme_id", "kind", "value")),
    ("membership_dividends", ("member_id", "plan_key", "year")),
    ("membership_payments", ("programme_id", "external_id")),
    ("memberships", ("member_id", "plan_key")),
    ("programme_revisions", ("programme_id", "number")),
    ("referral_codes", ("programme_id", "code")),
    ("referrals", ("friend_id",)),
    ("rewards", ("programme_id", "key")),
    ("shop_webhook_receipts", ("connection_id", "webhook_id")),
    ("stamp_awards", ("activity_id", "card_key")),
    ("stamp_cards", ("member_id", "card_key", "number")),
    ("stores", ("programme_id", "key")),
    ("transfers", ("corrects_id",)),
    ("vouchers", ("redemption_id",)),
    ("webhook_deliveries", ("endpoint_id", "event_id")),
]

# Every reference between two tenant tables, (table, column, referred table), always to ``id``:
# ``column -> referred (id)`` before, ``(column, tenant_id) -> referred (id, tenant_id)`` after.
REFERENCES = [
    ("accounts", "member_id", "members"),
    ("accounts", "programme_id", "programmes"),
    ("activities", "member_id", "members"),
    ("activities", "programme_id", "programmes"),
    ("activities", "purchase_id", "activities"),
    ("activities", "revision_id", "programme_revisions"),
    ("activities", "store_id", "stores"),
    ("activity_effects", "activity_id", "activities"),
    ("activity_effects", "member_id", "members"),
    ("activity_effects", "programme_id", "programmes"),
    ("api_keys", "store_id", "stores"),
    ("automation_runs", "member_id", "members"),
    ("automation_runs", "programme_id", "programmes"),
    ("awards", "activity_id", "activities"),
    ("awards", "member_id", "members"),
    ("awards", "transfer_id", "transfers"),
    ("campaign_awards", "activity_id", "activities"),
    ("campaign_awards", "member_id", "members"),
    ("campaign_awards", "programme_id", "programmes"),
    ("campaign_awards", "voucher_id", "vouchers"),
    ("campaign_visits", "activity_id", "activities"),
    ("campaign_visits", "member_id", "members"),
    ("donations", "member_id", "members"),
    ("donations", "programme_id", "programmes"),
    ("donations", "transfer_id", "transfers"),
    ("gift_cards", "account_id", "accounts"),
    ("gift_cards", "programme_id", "programmes"),
    ("gift_cards", "redeemed_by", "members"),
    ("holds", "member_id", "members"),
    ("holds", "programme_id", "programmes"),
    ("holds", "transfer_id", "transfers"),
    ("import_errors", "job_id", "import_jobs"),
    ("import_jobs", "programme_id", "programmes"),
    ("job_runs", "programme_id", "programmes"),
    ("lot_allocations", "lot_id", "lots"),
    ("lot_allocations", "transfer_id", "transfers"),
    ("lots", "activity_id", "activities"),
    ("lots", "member_id", "members"),
    ("lots", "programme_id", "programmes"),
    ("lots", "transfer_id", "transfers"),
    ("member_consents", "member_id", "members"),
    ("member_identifiers", "member_id", "members"),
    ("member_identifiers", "programme_id", "programmes"),
    ("member_login_codes", "member_id", "members"),
    ("member_tiers", "member_id", "members"),
    ("member_tiers", "programme_id", "programmes"),
    ("members", "merged_into_id", "members"),
    ("members", "programme_id", "programmes"),
    ("membership_dividends", "member_id", "members"),
    ("membership_dividends", "programme_id", "programmes"),
    ("membership_dividends", "transfer_id", "transfers"),
    ("membership_payments", "member_id", "members"),
    ("membership_payments", "membership_id", "memberships"),
    ("membership_payments", "programme_id", "programmes"),
    ("memberships", "member_id", "members"),
    ("memberships", "programme_id", "programmes"),
    ("messages", "member_id", "members"),
    ("messages", "programme_id", "programmes"),
    ("programme_revisions", "programme_id", "programmes"),
    ("redemptions", "hold_id", "holds"),
    ("redemptions", "member_id", "members"),
    ("redemptions", "programme_id", "programmes"),
    ("redemptions", "reward_id", "rewards"),
    ("referral_codes", "member_id", "members"),
    ("referral_codes", "programme_id", "programmes"),
    ("referrals", "friend_id", "members"),
    ("referrals", "programme_id", "programmes"),
    ("referrals", "purchase_id", "activities"),
    ("referrals", "referrer_id", "members"),
    ("rewards", "programme_id", "programmes"),
    ("rule_budgets", "programme_id", "programmes"),
    ("segment_members", "member_id", "members"),
    ("segment_members", "programme_id", "programmes"),
    ("segment_uploads", "member_id", "members"),
    ("segment_uploads", "programme_id", "programmes"),
    ("shop_connections", "programme_id", "programmes"),
    ("shop_orders", "connection_id", "shop_connections"),
    ("shop_orders", "programme_id", "programmes"),
    ("shop_product_mappings", "connection_id", "shop_connections"),
    ("shop_webhook_receipts", "connection_id", "shop_connections"),
    ("stamp_awards", "activity_id", "activities"),
    ("stamp_awards", "member_id", "members"),
    ("stamp_awards", "programme_id", "programmes"),
    ("stamp_awards", "purchase_id", "activities"),
    ("stamp_cards", "member_id", "members"),
    ("stamp_cards", "programme_id", "programmes"),
    ("stamp_cards", "voucher_id", "vouchers"),
    ("stores", "programme_id", "programmes"),
    ("tier_history", "activity_id", "activities"),
    ("tier_history", "member_id", "members"),
    ("tier_history", "programme_id", "programmes"),
    ("transfers", "activity_id", "activities"),
    ("transfers", "corrects_id", "transfers"),
    ("transfers", "credit_account_id", "accounts"),
    ("transfers", "debit_account_id", "accounts"),
    ("transfers", "member_id", "members"),
    ("transfers", "programme_id", "programmes"),
    ("vouchers", "member_id", "members"),
    ("vouchers", "programme_id", "programmes"),
    ("vouchers", "redemption_id", "redemptions"),
    ("vouchers", "reward_id", "rewards"),
    ("vouchers", "used_store_id", "stores"),
    ("wallet_cashback", "activity_id", "activities"),
    ("wallet_cashback", "member_id", "members"),
    ("wallet_cashback", "purchase_id", "activities"),
    ("wallet_cashback", "transfer_id", "transfers"),
    ("wallet_holds", "member_id", "members"),
    ("wallet_holds", "programme_id", "programmes"),
    ("wallet_holds", "transfer_id", "transfers"),
    ("webhook_attempts", "delivery_id", "webhook_deliveries"),
    ("webhook_deliveries", "endpoint_id", "webhook_endpoints"),
    ("webhook_deliveries", "event_id", "outbox"),
]

# (tenant_id, id) on programmes: the new primary key covers it.
PROGRAMMES_TENANT_ID = "uq_programmes_tenant_id_id"

# The naming convention's name would be longer than PostgreSQL's 63 characters.
LONG_NAMES: dict[tuple[str, tuple[str, ...]], str] = {
    ("automation_runs", ("programme_id", "automation", "member_id", "occasion", T)): (
        "uq_automation_runs_member_occasion_tenant_id"
    ),
}


def _uq_name(table: str, columns: tuple[str, ...]) -> str:
    return LONG_NAMES.get((table, columns), f"uq_{table}_{'_'.join(columns)}")


def _fk_name(table: str, column: str, referred: str) -> str:
    return f"fk_{table}_{column}_{referred}"


def upgrade() -> None:
    _rebuild(tenant_keys=True)


def downgrade() -> None:
    _rebuild(tenant_keys=False)


def _rebuild(*, tenant_keys: bool) -> None:
    """Every key and reference from one form to the other: with or without tenant_id."""
    extra = (T,) if tenant_keys else ()
    before = () if tenant_keys else (T,)
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(extra, before)
    else:
        _rebuild_postgresql(extra, before)


def _rebuild_postgresql(extra: tuple[str, ...], before: tuple[str, ...]) -> None:
    # References first: they depend on the keys they point at.
    for table, column, referred in REFERENCES:
        op.drop_constraint(_fk_name(table, column, referred), table, type_="foreignkey")
    if extra:
        op.drop_constraint(PROGRAMMES_TENANT_ID, "programmes", type_="unique")
    for table, columns in UNIQUES:
        op.drop_constraint(_uq_name(table, columns + before), table, type_="unique")
        op.create_unique_constraint(_uq_name(table, columns + extra), table, [*columns, *extra])
    for table, columns in PRIMARY_KEYS.items():
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, [*columns, *extra])
    if not extra:
        op.create_unique_constraint(PROGRAMMES_TENANT_ID, "programmes", [T, "id"])
    for table, column, referred in REFERENCES:
        op.create_foreign_key(
            _fk_name(table, column, referred),
            table,
            referred,
            [column, *extra],
            ["id", *extra],
        )


def _rebuild_sqlite(extra: tuple[str, ...], before: tuple[str, ...]) -> None:
    # One copy of each table with its new keys (foreign keys are off: see treu.storage.migrate).
    for table, columns in PRIMARY_KEYS.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            for ref_table, column, referred in REFERENCES:
                if ref_table == table:
                    batch.drop_constraint(_fk_name(table, column, referred), type_="foreignkey")
            if table == "programmes" and extra:
                batch.drop_constraint(PROGRAMMES_TENANT_ID, type_="unique")
            for uq_table, uq_columns in UNIQUES:
                if uq_table == table:
                    batch.drop_constraint(_uq_name(table, uq_columns + before), type_="unique")
                    batch.create_unique_constraint(
                        _uq_name(table, uq_columns + extra), [*uq_columns, *extra]
                    )
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", [*columns, *extra])
            if table == "programmes" and not extra:
                batch.create_unique_constraint(PROGRAMMES_TENANT_ID, [T, "id"])
            for ref_table, column, referred in REFERENCES:
                if ref_table == table:
                    batch.create_foreign_key(
                        _fk_name(table, column, referred),
                        referred,
                        [column, *extra],
                        ["id", *extra],
                    )
    broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"references to missing rows after the rebuild: {broken[:10]}")
