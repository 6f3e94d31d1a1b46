"""Staff users (owner, manager, cashier) of a tenant: add, log in, authenticate a session.

Passwords are kept as argon2id hashes only. A session is a signed token (JWT, 8 hours); the
role is read from the database on every request, so a demoted or disabled user loses the old
rights at once, not when the token expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row

from treu.auth.member_login import tenant_signing_key
from treu.auth.model import Principal, StaffRole
from treu.auth.tables import staff_users
from treu.auth.tokens import (
    STAFF_SESSION,
    StaffClaims,
    check_password_policy,
    decode_staff_token,
    encode_staff_token,
    hash_password,
    new_token_id,
    password_matches,
    password_needs_rehash,
)
from treu.errors import Conflict, ErrorCode, InvalidInput, Unauthenticated
from treu.ids import new_id
from treu.programmes.service import find_tenant
from treu.storage.uow import Event, UnitOfWork

_STAFF = staff_users.c


@dataclass(frozen=True)
class StaffUser:
    id: str
    tenant_id: str
    email: str
    name: str | None
    role: StaffRole
    disabled: bool


@dataclass(frozen=True)
class StaffSession:
    token: str
    claims: StaffClaims
    user: StaffUser


def add_staff_user(
    uow: UnitOfWork,
    *,
    tenant_id: str,
    email: str,
    role: StaffRole,
    password: str,
    name: str | None = None,
) -> StaffUser:
    role = StaffRole(role)
    email = normalise_email(email)
    check_password_policy(password)
    if _row(uow, tenant_id, email) is not None:
        raise Conflict(ErrorCode.DUPLICATE_STAFF_USER, f"a staff user {email} exists already")
    user_id = new_id("staff_user")
    uow.conn.execute(
        insert(staff_users).values(
            id=user_id,
            tenant_id=tenant_id,
            email=email,
            name=name,
            role=role.value,
            password_hash=hash_password(password),
            created_at=uow.now(),
        )
    )
    uow.publish(
        Event(tenant_id, "staff_user.added", {"staff_user_id": user_id, "role": role.value})
    )
    row = _row(uow, tenant_id, email)
    assert row is not None
    uow.commit()
    return _user(row)


def log_in_staff(
    uow: UnitOfWork, *, tenant_key: str, email: str, password: str, server_secret: str = ""
) -> StaffSession:
    """A session for the right password; one answer (401) for an unknown tenant, an unknown
    or disabled user and a wrong password, in about the same time."""
    tenant = find_tenant(uow, tenant_key)
    try:
        email = normalise_email(email)
    except InvalidInput:
        email = ""
    row = _row(uow, tenant.id, email) if tenant is not None and email else None
    matches = password_matches(row.password_hash if row is not None else None, password)
    if tenant is None or row is None or row.disabled_at is not None or not matches:
        raise Unauthenticated(ErrorCode.UNAUTHENTICATED, "wrong e-mail or password")
    if password_needs_rehash(row.password_hash):  # the library's parameters got stronger
        uow.conn.execute(
            update(staff_users)
            .where(_STAFF.id == row.id)
            .values(password_hash=hash_password(password))
        )
    now = uow.now()
    claims = StaffClaims(tenant.id, row.id, now + STAFF_SESSION, new_token_id())
    key = tenant_signing_key(uow, tenant.id, server_secret, "staff")
    uow.commit()
    return StaffSession(encode_staff_token(key, claims, now), claims, _user(row))


def authenticate_staff(
    uow: UnitOfWork, token: str, *, tenant_id: str, server_secret: str = ""
) -> Principal:
    key = tenant_signing_key(uow, tenant_id, server_secret, "staff")
    claims = decode_staff_token(token, key, uow.now())
    row = uow.conn.execute(
        select(staff_users).where(
            _STAFF.id == claims.staff_user_id, _STAFF.tenant_id == claims.tenant_id
        )
    ).first()
    if row is None or row.disabled_at is not None:
        raise Unauthenticated(ErrorCode.UNAUTHENTICATED, "this staff user cannot log in")
    return Principal(row.id, row.tenant_id, None, role=StaffRole(row.role))


def normalise_email(email: str) -> str:
    try:
        return str(validate_email(email.strip(), check_deliverability=False).normalized).lower()
    except EmailNotValidError as exc:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"email: {exc}",
            errors=[{"path": "email", "message": str(exc)}],
        ) from None


def _row(uow: UnitOfWork, tenant_id: str, email: str) -> Row[Any] | None:
    return uow.conn.execute(
        select(staff_users).where(_STAFF.tenant_id == tenant_id, _STAFF.email == email)
    ).first()


def _user(row: Row[Any]) -> StaffUser:
    return StaffUser(
        row.id, row.tenant_id, row.email, row.name, StaffRole(row.role), row.disabled_at is not None
    )
