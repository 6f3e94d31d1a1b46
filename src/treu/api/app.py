"""The FastAPI application: ``create_app(engine)``; ``treu serve`` runs it under uvicorn."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from alembic.script import ScriptDirectory
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, text

from treu import __version__
from treu.api.deps import Rt, Runtime, no_nul_characters
from treu.api.idempotency import IdempotencyMiddleware
from treu.api.problems import PROBLEM_RESPONSES, install, problem
from treu.api.ratelimit import RateLimiter
from treu.api.routers import (
    activities,
    admin,
    analytics,
    audit,
    automations,
    donations,
    imports,
    me,
    members,
    memberships,
    messages,
    pos,
    programmes,
    referrals,
    rewards,
    segments,
    shops,
    staff,
    stamps,
    tiers,
    wallet,
    webhooks,
)
from treu.clock import Clock, SystemClock
from treu.config import get_settings
from treu.errors import ErrorCode
from treu.observability import RequestMetricsMiddleware, metrics_payload
from treu.storage.engine import make_engine
from treu.storage.migrate import alembic_config, current_heads
from treu.web import install as install_web
from treu.worker import BackgroundWorker

DESCRIPTION = """The Treu loyalty engine over HTTP: members, activities, points, rewards and
vouchers. Authenticate with `Authorization: Bearer <API key>` (or a staff session or member
token, see /v1/staff/login and /v1/member-auth); send an `Idempotency-Key` with
every POST; errors are `application/problem+json` with a stable `code`. Guide: docs/api.md."""


ROUTERS = (
    programmes.router,
    members.programme_router,
    activities.router,
    members.router,
    rewards.router,
    rewards.voucher_router,
    activities.activity_router,
    admin.router,
    webhooks.router,
    pos.router,
    me.auth_router,
    me.router,
    staff.router,
    memberships.router,
    wallet.router,
    donations.router,
    referrals.router,
    stamps.router,
    tiers.router,
    imports.router,
    segments.router,
    automations.router,
    automations.member_router,
    shops.router,
    messages.router,
    analytics.router,
    audit.router,
)


def route_table() -> list[tuple[str, APIRoute]]:
    """(method, route) of every ``/v1`` operation, in path order (docs, authorisation tests)."""
    found = [
        (method, route)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods or ())
    ]
    return sorted(found, key=lambda mr: (mr[1].path, mr[0]))


def _inprocess_worker(
    runtime: Runtime, owned: bool, wanted: bool | None
) -> BackgroundWorker | None:
    """``treu serve`` on SQLite (the embedded default) sends messages and webhooks itself:
    the worker runs in a thread of this process (TREU_INPROCESS_WORKER; unset: on for an
    engine of its own on SQLite). An app given an engine (tests, embedding) runs none unless
    asked."""
    if wanted is None:
        wanted = owned and runtime.engine.dialect.name == "sqlite"
    if not wanted:
        return None
    worker = BackgroundWorker(runtime.queued_uow)  # in turn with the requests (SQLite)
    worker.start()
    return worker


def create_app(engine: Engine | None = None, clock: Clock | None = None) -> FastAPI:
    """The API on ``engine`` (default: ``TREU_DATABASE_URL``, disposed on shutdown)."""
    owned = engine is None
    settings = get_settings()
    runtime = Runtime(engine or make_engine(), clock or SystemClock(), settings.token_secret)
    head = sorted(ScriptDirectory.from_config(alembic_config()).get_heads())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = _inprocess_worker(runtime, owned, settings.inprocess_worker)
        yield
        if worker is not None:
            await asyncio.to_thread(worker.stop)  # finishes its pass; the loop keeps serving
        if owned:
            runtime.engine.dispose()

    app = FastAPI(
        title="Treu API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
        lifespan=lifespan,
        dependencies=[Depends(no_nul_characters)],
    )
    app.state.runtime = runtime
    app.state.rate_limiter = RateLimiter.from_settings(settings)
    install(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RequestMetricsMiddleware)  # outermost: sees every answer, sets the id
    for router in ROUTERS:
        app.include_router(router, responses=PROBLEM_RESPONSES)
    install_web(app)  # the member portal and staff console (HTML), outside /openapi.json

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def metrics(request: Request, rt: Rt) -> Response:
        """Prometheus metrics (treu.observability); with TREU_METRICS_TOKEN set, only for
        ``Authorization: Bearer <token>``."""
        if settings.metrics_token and not hmac.compare_digest(
            request.headers.get("authorization", ""), f"Bearer {settings.metrics_token}"
        ):
            return problem(401, ErrorCode.UNAUTHENTICATED.value, "metrics need the metrics token")
        return Response(metrics_payload(rt.engine), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up (no database check: use /readyz for that)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: PROBLEM_RESPONSES["4XX"]})
    def readyz(rt: Rt) -> Any:
        """The database answers and its schema is the one this code expects."""
        try:
            with rt.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            revision = current_heads(rt.engine)
        except Exception as exc:  # any failure means "not ready", never a 500
            return problem(
                503, ErrorCode.NOT_READY.value, f"database unavailable: {type(exc).__name__}"
            )
        if revision != head:
            return problem(
                503,
                ErrorCode.NOT_READY.value,
                f"database schema at {', '.join(revision) or 'nothing'}, expected "
                f"{', '.join(head)}: run `treu db upgrade`",
            )
        return JSONResponse({"status": "ready", "schema": ", ".join(revision)})

    return app
