"""The website widget: a script a shop embeds to show a logged-in customer their points.

``/widget/v1.js`` is a small static script (``static/widget.js``). It reads one JSON document,
``/widget/v1/<tenant>/<programme>``: with ``Authorization: Bearer <member token>`` (the shop's
backend got it from ``POST /v1/members/{id}/tokens``) the member's balance, progress to the next
reward and the rewards they can afford; without one, a sign-up call to action. Every text comes
formatted and translated from here, so the script carries no catalogue of its own.

No cookies at all: the token travels in a header, so there is no third-party cookie, no CSRF
surface and nothing for the shop's page to leak but the short-lived, read-only token. A browser
may read the answer only on the shop sites the programme lists (``widget.origins``): CORS is
answered here, per programme, because the preflight names the programme in its path.

``/widget/demo/<tenant>/<programme>`` is a page that shows the widget embedded, as a guest (or,
from ``treu demo``, as its demo member).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from treu.auth.member_login import authenticate_member
from treu.errors import NotFound, Unauthenticated
from treu.ledger.service import get_balances
from treu.members.model import Member
from treu.members.service import get_member
from treu.programmes.model import Programme
from treu.programmes.service import find_programme_id, find_tenant, load_programme
from treu.storage.uow import UnitOfWork
from treu.web import portal_views as views
from treu.web.context import PageNotFound, runtime_of
from treu.web.i18n import Formats, language_of
from treu.web.render import render

router = APIRouter(prefix="/widget", include_in_schema=False)

SCRIPT = "/widget/v1.js"
_MAX_REWARDS = 5  # a widget, not the catalogue: the portal lists the rest


@cache
def script() -> bytes:
    return resources.files("treu.web").joinpath("static", "widget.js").read_bytes()


@router.get("/v1.js")
def widget_script() -> Response:
    return Response(
        script(),
        media_type="text/javascript; charset=utf-8",
        headers={
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
            # the shop's page may isolate itself (COEP): it still may load this script
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


# --- CORS ----------------------------------------------------------------------------------


def origin_allowed(origin: str | None, listed: list[str], own: str) -> bool:
    """No ``Origin`` (a same-origin GET, a server), Treu's own pages, or a listed shop site."""
    return origin is None or origin.lower() == own or origin.lower() in listed


def _own_origin(request: Request) -> str:
    parts = urlsplit(str(request.base_url))
    return f"{parts.scheme}://{parts.netloc}".lower()


def _cors(origin: str | None) -> dict[str, str]:
    headers = {"Vary": "Origin", "Cache-Control": "no-store"}
    if origin is not None:
        # Never Access-Control-Allow-Credentials: the widget sends no cookies, and must not.
        headers["Access-Control-Allow-Origin"] = origin
    return headers


def _refused() -> JSONResponse:
    body = {"error": "origin_not_allowed", "detail": "this site is not in widget.origins"}
    return JSONResponse(body, 403, headers={"Vary": "Origin", "Cache-Control": "no-store"})


# --- the widget's data ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    tenant_id: str
    programme: Programme
    member: Member | None
    token_refused: bool


def _load(request: Request, tenant: str, programme: str, token: str | None) -> _Found:
    rt = runtime_of(request)

    def go(uow: UnitOfWork) -> _Found:
        found = find_tenant(uow, tenant)
        if found is None:
            raise PageNotFound
        try:
            loaded = load_programme(uow, find_programme_id(uow, tenant_id=found.id, key=programme))
        except NotFound:
            raise PageNotFound from None
        if not token:
            return _Found(found.id, loaded, None, False)
        try:
            who = authenticate_member(uow, token, tenant_id=found.id, server_secret=rt.secret)
        except Unauthenticated:
            return _Found(found.id, loaded, None, True)
        if who.member_id is None or who.programme_id != loaded.id:
            return _Found(found.id, loaded, None, True)
        return _Found(found.id, loaded, get_member(uow, who.member_id, tenant_id=found.id), False)

    return rt.read(go)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@router.options("/v1/{tenant}/{programme}")
def preflight(request: Request, tenant: str, programme: str) -> Response:
    origin = request.headers.get("origin")
    loaded = _load(request, tenant, programme, None).programme
    if not origin_allowed(origin, loaded.document.widget.origins, _own_origin(request)):
        return _refused()
    headers = _cors(origin) | {
        "Access-Control-Allow-Methods": "GET",
        "Access-Control-Allow-Headers": "Authorization",
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)


@router.get("/v1/{tenant}/{programme}")
def widget_data(
    request: Request,
    tenant: str,
    programme: str,
    lang: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """What the widget shows, formatted in ``lang`` (else the programme's language)."""
    origin = request.headers.get("origin")
    found = _load(request, tenant, programme, _bearer(request))
    doc = found.programme.document
    if not origin_allowed(origin, doc.widget.origins, _own_origin(request)):
        return _refused()
    language = language_of(lang, found.member.locale if found.member else None, doc.locale)
    fmt = Formats(language, found.programme.tz, doc.currency, doc.point_name)
    portal = f"{_own_origin(request)}/portal/{tenant}/{doc.key}"
    body: dict[str, Any] = {"lang": language, "programme": doc.name}
    if found.member is None:
        body["guest"] = _guest(fmt, doc.name, portal)
        status = 401 if found.token_refused else 200
    else:
        body["member"] = _member(request, found, fmt, portal)
        status = 200
    return JSONResponse(body, status, headers=_cors(origin))


def _guest(fmt: Formats, name: str, portal: str) -> dict[str, str]:
    return {
        "title": name,
        "text": fmt.gettext("Collect points with every purchase and swap them for rewards."),
        "action": fmt.gettext("Join now"),
        "url": f"{portal}/join",
        "login": fmt.gettext("Already a member? Log in"),
        "login_url": f"{portal}/login",
    }


def _member(request: Request, found: _Found, fmt: Formats, portal: str) -> dict[str, Any]:
    member = found.member
    assert member is not None

    def go(uow: UnitOfWork) -> tuple[int, int, list[views.RewardOption]]:
        balances = get_balances(uow, tenant_id=found.tenant_id, member_id=member.id)
        options = views.reward_options(uow, found.programme, balances.available)
        return balances.available, balances.pending, options

    available, pending, options = runtime_of(request).read(go)
    affordable = [o for o in options if o.affordable]
    ahead = sorted((o for o in options if not o.affordable), key=lambda o: (o.cost, o.name))
    data: dict[str, Any] = {
        "name": member.name,
        "balance_label": fmt.gettext("Balance"),
        "balance": fmt.points(available),
        "pending": fmt.gettext("Pending") + ": " + fmt.points(pending) if pending else None,
        "next": None,
        "rewards_title": fmt.gettext("Rewards you can redeem now"),
        "rewards": [
            {
                "name": o.name,
                "cost": fmt.points(o.cost),
                "url": f"{portal}/rewards/{o.key}/redeem",
            }
            for o in affordable[:_MAX_REWARDS]
        ],
        "portal": {"text": fmt.gettext("Open your card in the member portal"), "url": portal},
    }
    if ahead:
        goal = ahead[0]
        data["next"] = {
            "text": fmt.gettext("%(missing)s to go until %(reward)s")
            % {"missing": fmt.points(goal.missing), "reward": goal.name},
            "value": max(available, 0),
            "max": goal.cost,
        }
    return data


# --- the demo page -------------------------------------------------------------------------


@router.get("/demo/{tenant}/{programme}")
def demo_page(request: Request, tenant: str, programme: str) -> Response:
    """A pretend shop page with the widget embedded: as a guest (no token)."""
    return demo_response(request, tenant, programme, token=None)


def demo_response(request: Request, tenant: str, programme: str, *, token: str | None) -> Response:
    found = _load(request, tenant, programme, None)
    doc = found.programme.document
    lang = language_of(request.headers.get("accept-language"), doc.locale)
    base = _own_origin(request)
    return render(
        "widget/demo.html",
        lang,
        programme_name=doc.name,
        script=f"{base}{SCRIPT}",
        programme_ref=f"{tenant}/{doc.key}",
        token=token,
    )
