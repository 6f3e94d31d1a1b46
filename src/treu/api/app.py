"""The FastAPI application: ``create_app(engine)``; ``treu serve`` runs it under uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from alembic.script import ScriptDirectory
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import Engine, text

from treu import __version__
from treu.api.deps import Rt, Runtime, no_nul_characters
from treu.api.idempotency import IdempotencyMiddleware
from treu.api.problems import PROBLEM_RESPONSES, install, problem
from treu.api.ratelimit import RateLimiter
from treu.api.routers import (
    activities,
    admin,
    donations,
    me,
    members,
    memberships,
    pos,
    programmes,
    referrals,
    rewards,
    staff,
    stamps,
    tiers,
    wallet,
    webhooks,
)
from treu.clock import Clock, SystemClock
from treu.config import get_settings
from treu.errors import ErrorCode
from treu.storage.engine import make_engine
from treu.storage.migrate import alembic_config, current

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


def create_app(engine: Engine | None = None, clock: Clock | None = None) -> FastAPI:
    """The API on ``engine`` (default: ``TREU_DATABASE_URL``, disposed on shutdown)."""
    owned = engine is None
    settings = get_settings()
    runtime = Runtime(engine or make_engine(), clock or SystemClock(), settings.token_secret)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
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
    for router in ROUTERS:
        app.include_router(router, responses=PROBLEM_RESPONSES)

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
            revision = current(rt.engine)
        except Exception as exc:  # any failure means "not ready", never a 500
            return problem(
                503, ErrorCode.NOT_READY.value, f"database unavailable: {type(exc).__name__}"
            )
        if revision != head:
            return problem(
                503,
                ErrorCode.NOT_READY.value,
                f"database schema at {revision}, expected {head}: run `treu db upgrade`",
            )
        return JSONResponse({"status": "ready", "schema": revision})

    return app
