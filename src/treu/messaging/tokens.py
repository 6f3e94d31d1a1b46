"""The signed links in messages: confirm a double opt-in, unsubscribe (pure).

Both are JWTs (HS256) signed with a key derived from the tenant's secret and the server's
``TREU_TOKEN_SECRET``, one key per purpose (:func:`treu.auth.tokens.signing_key`): a
confirmation token cannot unsubscribe, and one tenant's token means nothing to another. The
token is the authority of the public endpoints that take it: whoever holds the link may use it
(that is what a link in an e-mail is for), so it names exactly one member, channel and purpose.

The tenant id rides in the token unsigned-first (``ten``), so the endpoint knows whose key to
verify it with; a forged tenant id just fails verification with that tenant's key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from treu.auth.tokens import new_token_id, signing_key
from treu.errors import ErrorCode, InvalidInput

CONFIRM = "optin"
UNSUBSCRIBE = "unsub"
CONFIRM_TTL = timedelta(days=30)
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class LinkClaims:
    purpose: str
    tenant_id: str
    member_id: str
    channel: str
    token_id: str
    subject: str | None  # the consent row to confirm / the message unsubscribed from


def key_for(tenant_secret: str, server_secret: str, purpose: str) -> bytes:
    return signing_key(tenant_secret, server_secret, f"messaging:{purpose}")


def encode_link(
    key: bytes,
    *,
    purpose: str,
    tenant_id: str,
    member_id: str,
    channel: str,
    subject: str | None,
    now: datetime,
    ttl: timedelta | None = None,
) -> str:
    """A signed link token. Without ``ttl`` it never expires and is the same every time for
    the same arguments: the unsubscribe link in a message's text and in its List-Unsubscribe
    header (made when it is sent) are one link, with the message as ``subject``."""
    claims: dict[str, Any] = {"pur": purpose, "ten": tenant_id, "sub": member_id, "chn": channel}
    if subject is not None:
        claims["obj"] = subject
    if ttl is not None:
        claims["jti"] = new_token_id()
        claims["iat"] = int(now.timestamp())
        claims["exp"] = int((now + ttl).timestamp())
    return jwt.encode(claims, key, algorithm=_ALGORITHM)


def tenant_of(token: str) -> str:
    """The tenant a token claims to be of (not verified yet: only to find the key)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _invalid() from None
    tenant = claims.get("ten")
    if not isinstance(tenant, str):
        raise _invalid()
    return tenant


def decode_link(token: str, key: bytes, *, purpose: str, now: datetime) -> LinkClaims:
    try:
        # PyJWT's own time checks read the system clock; expiry is checked against ``now``.
        claims = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],
            options={"verify_exp": False, "verify_iat": False, "require": ["sub"]},
        )
    except jwt.PyJWTError:
        raise _invalid() from None
    expires = claims.get("exp")
    if claims.get("pur") != purpose or (
        expires is not None and now >= datetime.fromtimestamp(int(expires), UTC)
    ):
        raise _invalid()
    return LinkClaims(
        purpose,
        str(claims["ten"]),
        str(claims["sub"]),
        str(claims.get("chn")),
        str(claims.get("jti") or claims.get("obj") or ""),
        claims.get("obj"),
    )


def _invalid() -> InvalidInput:
    return InvalidInput(
        ErrorCode.INVALID_TOKEN, "this link is not valid (mistyped, expired or already replaced)"
    )
