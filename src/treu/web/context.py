"""What every web request resolves first: the runtime, the tenant and programme in the URL,
the language, the CSRF key and the visitor's session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from treu.api.deps import Runtime
from treu.auth.member_login import tenant_signing_key
from treu.storage.uow import UnitOfWork
from treu.web.i18n import Formats
from treu.web.render import render
from treu.web.security import CSRF_COOKIE, csrf_for_page, set_cookie


class LoginRequired(Exception):
    """No valid session: the handler sends the visitor to ``login`` (and forgets the cookie)."""

    def __init__(self, login: str, cookie: str, path: str) -> None:
        self.login, self.cookie, self.path = login, cookie, path


class NotAllowed(Exception):
    """A page the staff user's role does not allow: a 403 page, nothing done."""

    def __init__(self, lang: str) -> None:
        self.lang = lang


class PageNotFound(Exception):
    """An unknown tenant, programme, reward or voucher in the URL: a 404 page."""


def runtime_of(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


def csrf_key(uow: UnitOfWork, rt: Runtime, tenant_id: str) -> bytes:
    return tenant_signing_key(uow, tenant_id, rt.secret, "csrf")


@dataclass
class Page:
    """Renders pages with what every template needs, and sets the CSRF cookie when new."""

    request: Request
    prefix: str  # /portal/<tenant>/<programme> or /console/<tenant>
    lang: str
    fmt: Formats
    key: bytes = field(repr=False)
    session: str | None = field(repr=False)
    common: dict[str, Any] = field(default_factory=dict)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        token, fresh = csrf_for_page(self.request, self.key, self.session)
        response = render(
            template,
            self.lang,
            status,
            prefix=self.prefix,
            fmt=self.fmt,
            csrf=token,
            here=self.request.url.path
            + (f"?{self.request.url.query}" if self.request.url.query else ""),
            **{**self.common, **context},
        )
        if fresh:
            set_cookie(response, self.request, CSRF_COOKIE, token, path=self.prefix)
        return response
