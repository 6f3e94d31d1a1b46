"""Use cases for API keys: create (shown once), list, rotate, revoke, authenticate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Row

from treu.auth.member_login import authenticate_member
from treu.auth.model import (
    ApiKey,
    Principal,
    Scope,
    key_id_of,
    new_token,
    token_matches,
)
from treu.auth.staff import authenticate_staff
from treu.auth.tables import api_keys
from treu.auth.tokens import looks_like_jwt, token_kind_and_tenant
from treu.errors import ErrorCode, InvalidInput, NotFound, Rejected, Unauthenticated
from treu.programmes.tables import programmes, stores
from treu.storage.uow import Event, UnitOfWork


@dataclass(frozen=True)
class CreatedKey:
    """A new key and its token: the only time the token is ever seen."""

    key: ApiKey
    token: str


def create_api_key(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    scope: Scope,
    name: str,
    store: str | None = None,
    programme: str | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """A new key of ``tenant_id``; ``store`` (a store key, with ``programme`` if the tenant has
    several programmes with that store key) binds a ``pos`` key to one till's store."""
    scope = Scope(scope)
    store_id = None
    if store is not None:
        if scope is not Scope.POS:
            raise InvalidInput(
                ErrorCode.VALIDATION_ERROR,
                "only a pos key can be bound to a store",
                errors=[{"path": "store", "message": "only for scope pos"}],
            )
        store_id = _store_id(uow, tenant_id, store, programme)
    created = _insert(uow, tenant_id, scope, name, store_id, expires_at)
    uow.commit()
    return created


def list_api_keys(
    uow: UnitOfWork, *, tenant_id: str, include_revoked: bool = False
) -> list[ApiKey]:
    query = select(api_keys).where(api_keys.c.tenant_id == tenant_id).order_by(api_keys.c.id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    return [_key(r) for r in uow.conn.execute(query)]


def get_api_key(uow: UnitOfWork, *, tenant_id: str, key_id: str) -> ApiKey:
    row = uow.conn.execute(
        select(api_keys).where(api_keys.c.id == key_id, api_keys.c.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound(ErrorCode.API_KEY_NOT_FOUND, f"no API key {key_id}")
    return _key(row)


def revoke_api_key(uow: UnitOfWork, *, tenant_id: str, key_id: str) -> ApiKey:
    """Revoke a key at once (revoking twice is harmless)."""
    key = get_api_key(uow, tenant_id=tenant_id, key_id=key_id)
    if key.revoked_at is None:
        uow.conn.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=uow.now())
        )
        uow.publish(Event(tenant_id, "api_key.revoked", {"api_key_id": key_id}))
        key = get_api_key(uow, tenant_id=tenant_id, key_id=key_id)
    uow.commit()
    return key


def rotate_api_key(
    uow: UnitOfWork, *, tenant_id: str, key_id: str, grace: timedelta = timedelta(0)
) -> CreatedKey:
    """A new key with the same name, scope and store; the old one stops working after
    ``grace`` (0: at once), so a till can be switched over without a gap."""
    old = get_api_key(uow, tenant_id=tenant_id, key_id=key_id)
    now = uow.now()
    if not old.usable_at(now):
        raise Rejected(ErrorCode.API_KEY_REVOKED, f"API key {key_id} is revoked or expired")
    created = _insert(uow, tenant_id, old.scope, old.name, old.store_id, None)
    ends = now + grace
    if old.expires_at is None or ends < old.expires_at:
        uow.conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(expires_at=ends))
    if grace <= timedelta(0):
        uow.conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now))
    uow.publish(
        Event(
            tenant_id, "api_key.rotated", {"api_key_id": key_id, "new_api_key_id": created.key.id}
        )
    )
    uow.commit()
    return created


_AUTHENTICATE = (
    select(
        api_keys.c.id,
        api_keys.c.tenant_id,
        api_keys.c.scope,
        api_keys.c.store_id,
        api_keys.c.secret_hash,
        api_keys.c.expires_at,
        api_keys.c.revoked_at,
        stores.c.key.label("store_key"),
        stores.c.programme_id,
    )
    .outerjoin(stores, stores.c.id == api_keys.c.store_id)
    .where(api_keys.c.id == bindparam("key_id"))
)


def authenticate(uow: UnitOfWork, token: str) -> Principal:
    """The principal a bearer token stands for; :class:`Unauthenticated` if none."""
    row = uow.conn.execute(_AUTHENTICATE, {"key_id": key_id_of(token)}).first()
    # One answer for "no such key" and "wrong secret": nothing to learn from the difference.
    if row is None or not token_matches(token, row.secret_hash):
        raise Unauthenticated(ErrorCode.UNAUTHENTICATED, "invalid API key")
    now = uow.now()
    if row.revoked_at is not None or (row.expires_at is not None and now >= row.expires_at):
        raise Unauthenticated(ErrorCode.UNAUTHENTICATED, "this API key is revoked or expired")
    return Principal(
        row.id, row.tenant_id, Scope(row.scope), row.store_id, row.store_key, row.programme_id
    )


def _insert(
    uow: UnitOfWork,
    tenant_id: str,
    scope: Scope,
    name: str,
    store_id: str | None,
    expires_at: datetime | None,
) -> CreatedKey:
    if not name.strip() or len(name) > 200:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            "a key needs a name of 1 to 200 characters",
            errors=[{"path": "name", "message": "1 to 200 characters"}],
        )
    token = new_token()
    uow.conn.execute(
        insert(api_keys).values(
            id=token.key_id,
            tenant_id=tenant_id,
            name=name,
            scope=scope.value,
            store_id=store_id,
            secret_hash=token.hash,
            last4=token.token[-4:],
            created_at=uow.now(),
            expires_at=expires_at,
        )
    )
    uow.publish(
        Event(tenant_id, "api_key.created", {"api_key_id": token.key_id, "scope": scope.value})
    )
    return CreatedKey(get_api_key(uow, tenant_id=tenant_id, key_id=token.key_id), token.token)


def _store_id(uow: UnitOfWork, tenant_id: str, store: str, programme: str | None) -> str:
    query = (
        select(stores.c.id)
        .join(programmes, programmes.c.id == stores.c.programme_id)
        .where(stores.c.tenant_id == tenant_id, stores.c.key == store)
    )
    if programme is not None:
        query = query.where(programmes.c.key == programme)
    found = list(uow.conn.execute(query).scalars())
    if not found:
        raise NotFound(ErrorCode.STORE_NOT_FOUND, f"no store {store!r}")
    if len(found) > 1:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"several programmes have a store {store!r}: name the programme",
            errors=[{"path": "programme", "message": "required: the store key is ambiguous"}],
        )
    return str(found[0])


def _key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        row.id,
        row.tenant_id,
        row.name,
        Scope(row.scope),
        row.store_id,
        row.last4,
        row.created_at,
        row.expires_at,
        row.revoked_at,
    )


def authenticate_bearer(uow: UnitOfWork, token: str, *, server_secret: str = "") -> Principal:
    """The principal behind any bearer token: an API key, a staff session or a member token."""
    if not looks_like_jwt(token):
        return authenticate(uow, token)
    kind, tenant_id = token_kind_and_tenant(token)
    if kind == "staff":
        return authenticate_staff(uow, token, tenant_id=tenant_id, server_secret=server_secret)
    return authenticate_member(uow, token, tenant_id=tenant_id, server_secret=server_secret)
