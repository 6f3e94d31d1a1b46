"""Use cases for shop connections: connect a shop, change it, rotate its secret, delete it,
its product mapping table and the receipts of the deliveries it got. Receiving a delivery is
:mod:`treu.shops.receiving`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row

from treu.errors import ErrorCode, InvalidInput, NotFound
from treu.ids import new_id
from treu.programmes.service import store_ids
from treu.shops.model import (
    Connection,
    MappingMode,
    Outcome,
    Platform,
    ProductMapping,
    Receipt,
    check_secret,
    check_shop,
    new_secret,
)
from treu.shops.tables import shop_connections, shop_product_mappings
from treu.shops.tables import shop_webhook_receipts as receipts
from treu.storage.uow import UnitOfWork

C = shop_connections.c
M = shop_product_mappings.c
R = receipts.c
MAX_GRACE = timedelta(days=7)


@dataclass(frozen=True)
class CreatedConnection:
    """A connection and its secret: the only time the secret is shown."""

    connection: Connection
    secret: str


# --- set-up -----------------------------------------------------------------------------------


def create_connection(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    programme_id: str,
    platform: Platform,
    shop: str,
    store: str | None = None,
    mapping_mode: MappingMode = MappingMode.TAGS,
    auto_enrol: bool = False,
    customer_id_prefix: str = "",
    secret: str | None = None,
    enabled: bool = True,
) -> CreatedConnection:
    """Connect a shop to a programme. ``secret``: the one the shop signs with (Shopify shows it
    under Settings → Notifications → Webhooks); none: Treu makes one to enter in the shop
    (WooCommerce's webhook form has a Secret field)."""
    _check_store(uow, programme_id, store)
    now = uow.now()
    connection_id = new_id("shop_connection")
    secret = check_secret(secret) if secret is not None else new_secret()
    uow.conn.execute(
        insert(shop_connections).values(
            id=connection_id,
            tenant_id=tenant_id,
            programme_id=programme_id,
            platform=platform.value,
            shop=check_shop(platform, shop),
            store=store,
            mapping_mode=mapping_mode.value,
            auto_enrol=auto_enrol,
            customer_id_prefix=customer_id_prefix,
            secret=secret,
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
    )
    created = get_connection(uow, tenant_id=tenant_id, connection_id=connection_id)
    uow.commit()
    return CreatedConnection(created, secret)


def list_connections(uow: UnitOfWork, *, tenant_id: str, programme_id: str) -> list[Connection]:
    query = (
        select(shop_connections)
        .where(C.tenant_id == tenant_id, C.programme_id == programme_id, C.deleted_at.is_(None))
        .order_by(C.id)
    )
    return [connection_of(r) for r in uow.conn.execute(query)]


def get_connection(uow: UnitOfWork, *, tenant_id: str, connection_id: str) -> Connection:
    row = uow.conn.execute(
        select(shop_connections).where(
            C.id == connection_id, C.tenant_id == tenant_id, C.deleted_at.is_(None)
        )
    ).first()
    if row is None:
        raise NotFound(ErrorCode.SHOP_CONNECTION_NOT_FOUND, f"no shop connection {connection_id}")
    return connection_of(row)


def update_connection(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    connection_id: str,
    store: str | None = None,
    mapping_mode: MappingMode | None = None,
    auto_enrol: bool | None = None,
    customer_id_prefix: str | None = None,
    enabled: bool | None = None,
) -> Connection:
    """Change what is given (``None``: unchanged; ``store=""`` records without a store). A
    disabled connection acknowledges deliveries and records nothing."""
    found = get_connection(uow, tenant_id=tenant_id, connection_id=connection_id)
    values: dict[str, Any] = {"updated_at": uow.now()}
    if store is not None:
        _check_store(uow, found.programme_id, store or None)
        values["store"] = store or None
    if mapping_mode is not None:
        values["mapping_mode"] = mapping_mode.value
    if auto_enrol is not None:
        values["auto_enrol"] = auto_enrol
    if customer_id_prefix is not None:
        values["customer_id_prefix"] = customer_id_prefix
    if enabled is not None:
        values["enabled"] = enabled
    uow.conn.execute(update(shop_connections).where(C.id == connection_id).values(**values))
    updated = get_connection(uow, tenant_id=tenant_id, connection_id=connection_id)
    uow.commit()
    return updated


def rotate_secret(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    connection_id: str,
    secret: str | None = None,
    grace: timedelta = timedelta(0),
) -> CreatedConnection:
    """A new secret (given, or made by Treu); the old one still verifies for ``grace`` (at most
    7 days), while the shop changes over."""
    get_connection(uow, tenant_id=tenant_id, connection_id=connection_id)
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise InvalidInput(ErrorCode.VALIDATION_ERROR, "grace: 0 to 7 days")
    row = uow.conn.execute(select(C.secret).where(C.id == connection_id)).one()
    now = uow.now()
    fresh = check_secret(secret) if secret is not None else new_secret()
    uow.conn.execute(
        update(shop_connections)
        .where(C.id == connection_id)
        .values(
            secret=fresh,
            previous_secret=row.secret if grace else None,
            previous_secret_until=now + grace if grace else None,
            secret_rotated_at=now,
            updated_at=now,
        )
    )
    rotated = get_connection(uow, tenant_id=tenant_id, connection_id=connection_id)
    uow.commit()
    return CreatedConnection(rotated, fresh)


def delete_connection(uow: UnitOfWork, *, tenant_id: str, connection_id: str) -> None:
    """Deliveries to the connection are refused from now on (401); its receipts are kept."""
    get_connection(uow, tenant_id=tenant_id, connection_id=connection_id)
    now = uow.now()
    uow.conn.execute(
        update(shop_connections)
        .where(C.id == connection_id)
        .values(deleted_at=now, updated_at=now, enabled=False)
    )
    uow.commit()


def put_mappings(
    uow: UnitOfWork, *, tenant_id: str, connection_id: str, mappings: Sequence[ProductMapping]
) -> list[ProductMapping]:
    """Replace the connection's mapping table with ``mappings``."""
    get_connection(uow, tenant_id=tenant_id, connection_id=connection_id)
    seen: set[tuple[str, str]] = set()
    for i, m in enumerate(mappings):
        if (m.match, m.value) in seen:
            raise InvalidInput(
                ErrorCode.VALIDATION_ERROR,
                f"mappings.{i}: {m.match} {m.value!r} is mapped twice",
                errors=[{"path": f"mappings.{i}.value", "message": "mapped twice"}],
            )
        if not (m.category or m.brand or m.sku):
            raise InvalidInput(
                ErrorCode.VALIDATION_ERROR,
                f"mappings.{i}: give a category, a brand or a sku",
                errors=[{"path": f"mappings.{i}", "message": "maps to nothing"}],
            )
        seen.add((m.match, m.value))
    uow.conn.execute(delete(shop_product_mappings).where(M.connection_id == connection_id))
    if mappings:
        uow.conn.execute(
            insert(shop_product_mappings),
            [
                {
                    "connection_id": connection_id,
                    "tenant_id": tenant_id,
                    "match": m.match,
                    "value": m.value,
                    "category": m.category,
                    "brand": m.brand,
                    "sku": m.sku,
                }
                for m in mappings
            ],
        )
    found = mappings_of(uow, connection_id)
    uow.commit()
    return found


def list_mappings(uow: UnitOfWork, *, tenant_id: str, connection_id: str) -> list[ProductMapping]:
    get_connection(uow, tenant_id=tenant_id, connection_id=connection_id)
    return mappings_of(uow, connection_id)


def list_receipts(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    connection_id: str,
    outcome: Outcome | None = None,
    starting_after: str | None = None,
    limit: int = 100,
) -> list[Receipt]:
    """The deliveries the connection acted on, oldest first."""
    get_connection(uow, tenant_id=tenant_id, connection_id=connection_id)
    query = select(receipts).where(R.connection_id == connection_id).order_by(R.id).limit(limit)
    if outcome is not None:
        query = query.where(R.outcome == outcome.value)
    if starting_after is not None:
        query = query.where(R.id > starting_after)
    return [receipt_of(r) for r in uow.conn.execute(query)]


# --- rows -------------------------------------------------------------------------------------


def _check_store(uow: UnitOfWork, programme_id: str, store: str | None) -> None:
    if store is not None and store not in store_ids(uow, programme_id):
        raise NotFound(ErrorCode.STORE_NOT_FOUND, f"no store {store!r} in this programme")


def mappings_of(uow: UnitOfWork, connection_id: str) -> list[ProductMapping]:
    rows = uow.conn.execute(
        select(shop_product_mappings)
        .where(M.connection_id == connection_id)
        .order_by(M.match, M.value)
    )
    return [ProductMapping(r.match, r.value, r.category, r.brand, r.sku) for r in rows]


def connection_of(row: Row[Any]) -> Connection:
    return Connection(
        id=row.id,
        tenant_id=row.tenant_id,
        programme_id=row.programme_id,
        platform=Platform(row.platform),
        shop=row.shop,
        store=row.store,
        mapping_mode=MappingMode(row.mapping_mode),
        auto_enrol=row.auto_enrol,
        customer_id_prefix=row.customer_id_prefix,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        secret_rotated_at=row.secret_rotated_at,
    )


def receipt_of(row: Row[Any]) -> Receipt:
    return Receipt(
        id=row.id,
        connection_id=row.connection_id,
        webhook_id=row.webhook_id,
        topic=row.topic,
        order_id=row.order_id,
        outcome=Outcome(row.outcome),
        code=row.code,
        detail=row.detail,
        activity_ids=tuple(row.activity_ids or ()),
        received_at=row.received_at,
    )
