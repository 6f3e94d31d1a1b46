"""The web: the member portal (``/portal/…``), the staff console (``/console/…``) and the
website widget shops embed (``/widget/…``).

Server-rendered pages (Jinja2) with a little plain JavaScript, in German and English, served
by the API's application: ``install(app)`` adds the routes, the static files and the handlers
that turn "log in first", "not found" and "form expired" into pages.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from treu.web import (
    console,
    console_dashboard,
    console_privacy,
    console_review,
    console_setup,
    portal,
    widget,
)
from treu.web.context import LoginRequired, NotAllowed, PageNotFound
from treu.web.i18n import language_of
from treu.web.render import render
from treu.web.security import LANG_COOKIE, CsrfRejected, clear_cookie

STATIC = "/web-static"


def install(app: FastAPI) -> None:
    app.include_router(portal.router)
    app.include_router(console.router)
    app.include_router(console_review.router)
    app.include_router(console_privacy.router)
    app.include_router(widget.router)
    app.include_router(console_dashboard.router)
    app.include_router(console_setup.router)
    app.mount(STATIC, StaticFiles(packages=[("treu.web", "static")]), name="web-static")

    @app.get("/portal/{tenant}/{programme}", include_in_schema=False)
    def portal_root(tenant: str, programme: str) -> Response:
        return RedirectResponse(f"/portal/{tenant}/{programme}/", status_code=307)

    @app.exception_handler(LoginRequired)
    def login_required(_request: Request, exc: LoginRequired) -> Response:
        response = RedirectResponse(exc.login, status_code=303)
        clear_cookie(response, exc.cookie, path=exc.path)
        return response

    @app.exception_handler(PageNotFound)
    def page_not_found(request: Request, _exc: PageNotFound) -> Response:
        lang = language_of(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
        return render("error.html", lang, 404, kind="not_found")

    @app.exception_handler(NotAllowed)
    def not_allowed(_request: Request, exc: NotAllowed) -> Response:
        return render("error.html", exc.lang, 403, kind="forbidden")

    @app.exception_handler(CsrfRejected)
    def csrf_rejected(request: Request, exc: CsrfRejected) -> Response:
        lang = exc.lang or language_of(request.cookies.get(LANG_COOKIE))
        return render("error.html", lang, 403, kind="csrf")
