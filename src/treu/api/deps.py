"""What every route needs: the runtime (engine, clock), the caller, and what the caller may see.

Each route declares the one :class:`Permission` it needs with ``dependencies=[needs(P.X)]``; the
authorisation test matrix reads it back from the route table with :func:`permission_of`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from types import TracebackType
from typing import Annotated, Any, Self, TypeVar
from urllib.parse import unquote_plus

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from treu.auth.model import Permission, Principal
from treu.auth.service import authenticate_bearer
from treu.clock import Clock
from treu.errors import ErrorCode, Forbidden, InvalidInput, NotFound, Unauthenticated
from treu.members.model import Member
from treu.members.service import get_member
from treu.programmes.service import find_programme_id
from treu.storage.uow import UnitOfWork, retrying

T = TypeVar("T")


@dataclass(frozen=True)
class Runtime:
    engine: Engine
    clock: Clock
    # TREU_TOKEN_SECRET: mixed into the keys of member tokens, staff sessions and QR tokens
    secret: str = field(default="", repr=False)
    # SQLite has one writer at a time. Request threads of one process queue here and are
    # handed the turn at once; left to SQLite's busy handler they poll with sleeps of up to
    # 100 ms, which put p99 at seconds with 50 concurrent tills (bench/api.py).
    _writer: AbstractContextManager[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sqlite = self.engine.dialect.name == "sqlite"
        object.__setattr__(self, "_writer", threading.RLock() if sqlite else nullcontext())

    def uow(self, *, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(self.engine, self.clock, readonly=readonly)

    def queued_uow(self) -> UnitOfWork:
        """A unit of work that takes its turn with the request threads (the in-process worker):
        on SQLite it waits for the writer turn of this process before it begins. Left to
        SQLite's busy handler instead, a request thread holding the turn polled in sleeps while
        the worker wrote, and everyone queued behind it: ``treu serve`` on SQLite served the
        till's purchases 10× slower with its worker running (bench/api.py)."""
        return _QueuedUnitOfWork(self.engine, self.clock, self._writer)

    def write(self, fn: Callable[[UnitOfWork], T]) -> T:
        """One use case in one transaction, run again whole on a retryable database error."""

        def attempt() -> T:
            with self._writer, self.uow() as uow:
                return fn(uow)

        return retrying(attempt)

    def read(self, fn: Callable[[UnitOfWork], T]) -> T:
        with self.uow(readonly=True) as uow:
            return fn(uow)


class _QueuedUnitOfWork(UnitOfWork):
    def __init__(self, engine: Engine, clock: Clock, turn: AbstractContextManager[Any]) -> None:
        super().__init__(engine, clock)
        self._turn = turn

    def __enter__(self) -> Self:
        self._turn.__enter__()
        try:
            return super().__enter__()
        except BaseException:
            self._turn.__exit__(None, None, None)
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            super().__exit__(exc_type, exc, tb)
        finally:
            self._turn.__exit__(None, None, None)


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (`Authorization: Bearer treu_sk_…`), a staff session or a member "
    "token (see docs/api.md).",
)


def principal_from_token(rt: Runtime, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated(ErrorCode.UNAUTHENTICATED, "send an API key: Authorization: Bearer …")
    return rt.read(lambda uow: authenticate_bearer(uow, token, server_secret=rt.secret))


def current_principal(
    request: Request,
    rt: Annotated[Runtime, Depends(runtime)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # The idempotency middleware may have authenticated this request already.
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    found = principal_from_token(rt, credentials.credentials if credentials else None)
    request.state.principal = found
    return found


class _Needs:
    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(self, who: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not who.allows(self.permission):
            raise Forbidden(
                ErrorCode.FORBIDDEN,
                f"{who.label} may not do this (needs {self.permission})",
            )
        return who


def needs(permission: Permission) -> Any:
    return Depends(_Needs(permission))


class _Public:
    """Marks a route anyone may call (logging in), in place of a permission."""

    def __call__(self) -> None:
        return None


def public() -> Any:
    return Depends(_Public())


def is_public(route: APIRoute) -> bool:
    return any(
        isinstance(d, DependsParam) and isinstance(d.dependency, _Public)
        for d in route.dependencies
    )


def permission_of(route: APIRoute) -> Permission | None:
    for dependency in route.dependencies:
        if isinstance(dependency, DependsParam) and isinstance(dependency.dependency, _Needs):
            return dependency.dependency.permission
    return None


Who = Annotated[Principal, Depends(current_principal)]
Rt = Annotated[Runtime, Depends(runtime)]


# --- what no request may contain -----------------------------------------------------------

# "\u0000" in JSON, unless its backslash is itself escaped ("\\u0000" is the text \u0000)
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


async def no_nul_characters(request: Request) -> None:
    """Refuse U+0000 anywhere in a request (422). PostgreSQL cannot store it in text, so it
    would fail deep inside a transaction; refused here, it is refused on every database."""
    query = unquote_plus(request.scope.get("query_string", b"").decode("latin-1"))
    # An import file (POST /v1/imports) is not read here: it would be held in memory whole;
    # the import reports a row with a NUL in its error report instead.
    body = b"" if request.scope["path"] == "/v1/imports" else await request.body()
    for where, found in (
        ("path", "\x00" in request.scope["path"]),
        ("query", "\x00" in query),
        ("(body)", _ESCAPED_NUL.search(body) is not None),
    ):
        if found:
            raise InvalidInput(
                ErrorCode.VALIDATION_ERROR,
                f"{where}: the NUL character (U+0000) is not allowed",
                errors=[{"path": where, "message": "the NUL character (U+0000) is not allowed"}],
            )


# --- what a principal may see --------------------------------------------------------------


def programme_id_for(uow: UnitOfWork, who: Principal, key: str) -> str:
    """The id of the programme ``key`` of the caller's tenant (a store-bound key sees only its
    store's programme); anything else is "not found"."""
    programme_id = find_programme_id(uow, tenant_id=who.tenant_id, key=key)
    if who.programme_id is not None and programme_id != who.programme_id:
        raise NotFound(ErrorCode.PROGRAMME_NOT_FOUND, f"no programme {key!r}")
    return programme_id


def member_for(uow: UnitOfWork, who: Principal, member_id: str) -> Member:
    member = get_member(uow, member_id, tenant_id=who.tenant_id)
    mine = who.member_id is None or member.id == who.member_id  # a member sees only themself
    if not mine or (who.programme_id is not None and member.programme_id != who.programme_id):
        raise NotFound(ErrorCode.MEMBER_NOT_FOUND, f"no member {member_id}")
    return member


def actor(who: Principal) -> str:
    return f"api:{who.key_id}" if who.is_api_key else f"staff:{who.key_id}"
