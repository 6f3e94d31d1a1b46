"""Cookies and CSRF protection of the web pages.

Sessions are the signed tokens ``treu.auth`` already makes (a member token, a staff session),
kept in an HttpOnly cookie: scripts cannot read them, ``SameSite=Lax`` keeps them off
cross-site POSTs, and ``Secure`` is set whenever the page came over HTTPS.

Every POST form also carries a **signed double-submit token**: the same value in a cookie and
in a hidden field, ``<nonce>.<HMAC(key, nonce + session)>``. A forged form from another site
cannot read the cookie to copy it, and cannot plant a cookie of its own that passes either:
the HMAC is keyed with the tenant's secret and bound to the session it was made for, so a
token from before a log-in (or from another session) is refused after it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response

CSRF_COOKIE = "treu_csrf"
CSRF_FIELD = "csrf_token"
LANG_COOKIE = "treu_lang"


class CsrfRejected(Exception):
    """A POST without a valid token: answered 403 with a page that says to reload."""

    def __init__(self, lang: str | None = None) -> None:
        self.lang = lang


def csrf_token(key: bytes, session: str | None) -> str:
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_mac(key, nonce, session)}"


def csrf_token_valid(key: bytes, session: str | None, token: str | None) -> bool:
    if not token or token.count(".") != 1:
        return False
    nonce, mac = token.split(".")
    return hmac.compare_digest(_mac(key, nonce, session), mac)


def check_csrf(
    request: Request, key: bytes, session: str | None, submitted: str | None, lang: str
) -> None:
    """The form's token equals the cookie's, and is signed for this session."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not (submitted and cookie and hmac.compare_digest(submitted, cookie)):
        raise CsrfRejected(lang)
    if not csrf_token_valid(key, session, submitted):
        raise CsrfRejected(lang)


def csrf_for_page(request: Request, key: bytes, session: str | None) -> tuple[str, bool]:
    """The token to put in the page's forms, and whether the cookie must be (re)set."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie and csrf_token_valid(key, session, cookie):
        return cookie, False
    return csrf_token(key, session), True


def _mac(key: bytes, nonce: str, session: str | None) -> str:
    bound = hashlib.sha256((session or "").encode()).hexdigest()
    return hmac.new(key, f"{nonce}.{bound}".encode(), hashlib.sha256).hexdigest()[:32]


def set_cookie(
    response: Response,
    request: Request,
    name: str,
    value: str,
    *,
    path: str,
    max_age: int | None = None,
    http_only: bool = True,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=http_only,
        secure=request.url.scheme == "https",
        samesite="lax",
    )


def clear_cookie(response: Response, name: str, *, path: str) -> None:
    response.delete_cookie(name, path=path, samesite="lax")


def safe_next(target: str | None, prefix: str) -> str:
    """Where to go back to after a form: a path under ``prefix`` on this site, never an
    address elsewhere (an open redirect)."""
    if not target:
        return prefix + "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(prefix) or "\\" in target:
        return prefix + "/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


SECURITY_HEADERS = {
    # Pages load nothing from elsewhere: no CDN, no third-party script on a member's phone.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
