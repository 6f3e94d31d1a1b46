"""Shortcuts that exist only in ``treu demo``: its member logs in without a code by e-mail.

The portal logs members in with a one-time code sent by e-mail, and a laptop demo has no mail
server. ``treu demo`` therefore adds two routes to its own application (never to the app of
``treu serve``, never under ``/v1``), behind a random secret in the path that it prints:

- ``/demo/<secret>/portal`` — logs the demo member into the portal (the same session cookie a
  code log-in sets) and opens their card;
- ``/demo/<secret>/shop`` — the widget's demo page as the shop would show it to that member,
  with a widget token its "backend" got for them.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from treu.auth.member_login import issue_member_token
from treu.config import get_settings
from treu.web.context import PageNotFound, runtime_of
from treu.web.portal import SESSION_COOKIE
from treu.web.security import set_cookie
from treu.web.widget import demo_response


@dataclass(frozen=True)
class DemoMember:
    tenant_id: str
    tenant_key: str
    programme_key: str
    member_id: str


def install_demo_links(app: FastAPI, *, secret: str, member: DemoMember) -> None:
    def check(given: str) -> None:
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise PageNotFound

    def token(request: Request, minutes: int, *, widget: bool) -> str:
        rt = runtime_of(request)
        return rt.read(
            lambda uow: issue_member_token(
                uow,
                tenant_id=member.tenant_id,
                member_id=member.member_id,
                lifetime=timedelta(minutes=minutes),
                widget=widget,
                server_secret=rt.secret,
            )
        ).token

    portal = f"/portal/{member.tenant_key}/{member.programme_key}"

    @app.get("/demo/{given}/portal", include_in_schema=False)
    def portal_login(request: Request, given: str) -> Response:
        check(given)
        minutes = get_settings().member_token_minutes
        response = RedirectResponse(f"{portal}/", status_code=303)
        set_cookie(
            response,
            request,
            SESSION_COOKIE,
            token(request, minutes, widget=False),
            path=portal,
            max_age=minutes * 60,
        )
        return response

    @app.get("/demo/{given}/shop", include_in_schema=False)
    def shop(request: Request, given: str) -> Response:
        check(given)
        return demo_response(
            request,
            member.tenant_key,
            member.programme_key,
            token=token(request, 15, widget=True),
        )
