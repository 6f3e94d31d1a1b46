"""Member login codes, member and staff tokens, member QR tokens, staff passwords (pure).

Every token is signed with a key derived from the tenant's secret and the server's
``TREU_TOKEN_SECRET`` (:func:`signing_key`), one key per purpose: a member token cannot pass
for a staff session or a QR token, nor a token of one tenant for another's. Time is passed in
(``now``), never read from the system, so expiry follows the caller's clock.

- **Login code**: 6 digits from the CSPRNG, valid :data:`LOGIN_CODE_TTL`, :data:`LOGIN_CODE_TRIES`
  guesses. Stored as an HMAC (not a bare SHA-256: a million codes hash in a blink).
- **Member token / staff session**: a JWT (HS256) with ``tenant``, ``exp``, ``jti`` and the
  member's or staff user's id. PyJWT's own time checks are off: they read the system clock.
- **QR token**: ``tqr1.<member id>.<time step>.<HMAC>``, TOTP-like: a new one every
  :data:`QR_STEP` seconds, valid in its own step and the next (30 to 60 seconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from treu.errors import ErrorCode, InvalidInput, Unauthenticated

LOGIN_CODE_TTL = timedelta(minutes=10)
LOGIN_CODE_TRIES = 5
STAFF_SESSION = timedelta(hours=8)
QR_STEP = 30  # seconds
QR_PREFIX = "tqr1"
_ALGORITHM = "HS256"
_MEMBER = "member"
_STAFF = "staff"
_WIDGET = "widget"


def signing_key(tenant_secret: str, server_secret: str, purpose: str) -> bytes:
    """The key for one purpose (``member``, ``staff``, ``qr``, ``code``) of one tenant."""
    message = f"treu:{purpose}:".encode() + server_secret.encode()
    return hmac.new(tenant_secret.encode(), message, hashlib.sha256).digest()


# --- login codes ---------------------------------------------------------------------------


def new_login_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def hash_login_code(key: bytes, member_id: str, code: str) -> str:
    return hmac.new(key, f"{member_id}:{code}".encode(), hashlib.sha256).hexdigest()


def login_code_matches(key: bytes, member_id: str, code: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_login_code(key, member_id, code), stored_hash)


# --- member tokens and staff sessions (JWT) ------------------------------------------------


@dataclass(frozen=True)
class MemberClaims:
    tenant_id: str
    programme_id: str
    member_id: str
    expires_at: datetime
    token_id: str
    # A widget token (a shop's backend asked for it, it sits in the shop's page): it reads the
    # member's account and nothing else, not even a QR token for the till.
    widget: bool = False


@dataclass(frozen=True)
class StaffClaims:
    tenant_id: str
    staff_user_id: str
    expires_at: datetime
    token_id: str


def looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


def encode_member_token(key: bytes, claims: MemberClaims, now: datetime) -> str:
    return _encode(
        key,
        _MEMBER,
        now,
        claims.expires_at,
        claims.token_id,
        tenant=claims.tenant_id,
        programme=claims.programme_id,
        member=claims.member_id,
        **({"use": _WIDGET} if claims.widget else {}),
    )


def encode_staff_token(key: bytes, claims: StaffClaims, now: datetime) -> str:
    return _encode(
        key,
        _STAFF,
        now,
        claims.expires_at,
        claims.token_id,
        tenant=claims.tenant_id,
        staff=claims.staff_user_id,
    )


def token_kind_and_tenant(token: str) -> tuple[str, str]:
    """``(typ, tenant)`` as the token says, *unverified*: which key to verify it with."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        kind, tenant = claims["typ"], claims["tenant"]
    except (jwt.PyJWTError, KeyError, TypeError):
        raise _bad_token() from None
    if kind not in (_MEMBER, _STAFF) or not isinstance(tenant, str):
        raise _bad_token()
    return kind, tenant


def decode_member_token(token: str, key: bytes, now: datetime) -> MemberClaims:
    claims = _decode(token, key, _MEMBER, now, ("programme", "member"))
    return MemberClaims(
        claims["tenant"],
        claims["programme"],
        claims["member"],
        _instant(claims["exp"]),
        claims["jti"],
        widget=claims.get("use") == _WIDGET,
    )


def decode_staff_token(token: str, key: bytes, now: datetime) -> StaffClaims:
    claims = _decode(token, key, _STAFF, now, ("staff",))
    return StaffClaims(claims["tenant"], claims["staff"], _instant(claims["exp"]), claims["jti"])


def new_token_id() -> str:
    return secrets.token_urlsafe(16)


def _encode(
    key: bytes, kind: str, now: datetime, expires_at: datetime, jti: str, **claims: str
) -> str:
    payload = {
        "typ": kind,
        **claims,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": jti,
    }
    return jwt.encode(payload, key, algorithm=_ALGORITHM)


def _decode(
    token: str, key: bytes, kind: str, now: datetime, fields: tuple[str, ...]
) -> dict[str, Any]:
    required = ["typ", "tenant", "exp", "jti", *fields]
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],  # never "none", never whatever the header says
            options={
                "require": required,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError:
        raise _bad_token() from None
    if claims["typ"] != kind or not all(isinstance(claims[f], str) for f in fields):
        raise _bad_token()
    if not isinstance(claims["exp"], int) or now >= _instant(claims["exp"]):
        raise Unauthenticated(ErrorCode.UNAUTHENTICATED, f"this {kind} token has expired")
    return claims


def _instant(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _bad_token() -> Unauthenticated:
    return Unauthenticated(ErrorCode.UNAUTHENTICATED, "invalid token")


# --- member QR tokens ----------------------------------------------------------------------


@dataclass(frozen=True)
class QrToken:
    token: str
    expires_at: datetime


def is_qr_token(text: str) -> bool:
    return text.startswith(QR_PREFIX + ".")


def make_qr_token(key: bytes, member_id: str, now: datetime) -> QrToken:
    step = _step(now)
    token = f"{QR_PREFIX}.{member_id}.{step}.{_qr_mac(key, member_id, step)}"
    return QrToken(token, _instant((step + 2) * QR_STEP))


def verify_qr_token(token: str, key: bytes, now: datetime) -> str:
    """The member id a QR token stands for; ``invalid_token`` if it is tampered, another
    tenant's or older than its step and the next."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != QR_PREFIX or not parts[2].isdigit():
        raise _invalid_qr("malformed QR token")
    member_id, step = parts[1], int(parts[2])
    if not hmac.compare_digest(_qr_mac(key, member_id, step), parts[3]):
        raise _invalid_qr("QR token not signed by this tenant")
    if not 0 <= _step(now) - step <= 1:
        raise _invalid_qr("QR token expired: show a fresh one")
    return member_id


def _step(now: datetime) -> int:
    return int(now.timestamp()) // QR_STEP


def _qr_mac(key: bytes, member_id: str, step: int) -> str:
    digest = hmac.new(key, f"{member_id}.{step}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _invalid_qr(message: str) -> InvalidInput:
    return InvalidInput(
        ErrorCode.INVALID_TOKEN, message, errors=[{"path": "token", "message": message}]
    )


# --- staff passwords -----------------------------------------------------------------------

MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; this keeps a request from costing seconds


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters


def check_password_policy(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        message = f"{MIN_PASSWORD} to {MAX_PASSWORD} characters"
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"password: {message}",
            errors=[{"path": "password", "message": message}],
        )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Verify ``password``; with no stored hash (no such user) verify against a dummy one, so
    that the answer takes as long either way."""
    try:
        return _hasher().verify(stored_hash or _dummy_hash(), password) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored_hash: str) -> bool:
    return _hasher().check_needs_rehash(stored_hash)


@cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))
