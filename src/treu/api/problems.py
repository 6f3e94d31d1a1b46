"""Every error as ``application/problem+json`` (RFC 9457), with Treu's stable ``code``.

The HTTP status follows the error's class, so an integrator can branch on the status alone:

    NotFound         404   (also: another tenant's object — never 403)
    InvalidInput     422   the request is malformed; ``errors`` holds field paths
    Conflict         409   clashes with existing state (duplicate identifier, key in use)
    Rejected         422   well-formed, but a business rule says no (points, stock, window)
    Unauthenticated  401   missing, unknown, revoked or expired API key
    Forbidden        403   the key's scope does not allow this operation

One exception by code: ``idempotency_key_reuse`` (the same key with a different request) is 422,
because the request, not the server's state, is what is wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from treu.errors import (
    Conflict,
    ErrorCode,
    Forbidden,
    InvalidInput,
    NotFound,
    Rejected,
    TreuError,
    Unauthenticated,
)

log = logging.getLogger("treu.api")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:treu:error:"

STATUS_BY_CLASS: dict[type[TreuError], int] = {
    NotFound: 404,
    InvalidInput: 422,
    Conflict: 409,
    Rejected: 422,
    Unauthenticated: 401,
    Forbidden: 403,
}
STATUS_BY_CODE: dict[ErrorCode, int] = {ErrorCode.IDEMPOTENCY_KEY_REUSE: 422}


class FieldError(BaseModel):
    path: str
    message: str


class Problem(BaseModel):
    """An error (RFC 9457). ``code`` is stable: branch on it, not on ``detail``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None


def status_for(exc: TreuError) -> int:
    by_code = STATUS_BY_CODE.get(exc.code)
    if by_code is not None:
        return by_code
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_CLASS:
            return STATUS_BY_CLASS[cls]
    return 422


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Sequence[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = [{"path": e["path"], "message": e["message"]} for e in errors]
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def treu_error_response(exc: TreuError) -> JSONResponse:
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    errors = exc.details.get("errors")
    return problem(status, exc.code.value, exc.message, errors=errors, headers=headers)


def field_path(loc: Sequence[int | str]) -> str:
    """``("body", "lines", 0, "unit_price")`` → ``lines.0.unit_price``; other sources keep
    their name: ``query.limit``, ``header.idempotency-key``, ``path.member_id``."""
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "(body)"


def install(app: FastAPI) -> None:
    async def on_treu_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TreuError)
        return treu_error_response(exc)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"path": field_path(e["loc"]), "message": str(e["msg"])} for e in exc.errors()]
        summary = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:3])
        return problem(422, ErrorCode.VALIDATION_ERROR.value, summary, errors=errors)

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {
            404: ErrorCode.NOT_FOUND.value,
            405: ErrorCode.METHOD_NOT_ALLOWED.value,
            429: ErrorCode.RATE_LIMITED.value,
        }.get(exc.status_code, HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_"))
        detail = {404: "no such resource", 405: "method not allowed on this resource"}.get(
            exc.status_code, str(exc.detail)
        )
        return problem(exc.status_code, code, detail, headers=exc.headers)

    async def on_crash(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, ErrorCode.INTERNAL_ERROR.value, "internal server error")

    _document_problems_as_problem_json(app)
    app.add_exception_handler(TreuError, on_treu_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ResponseValidationError, on_crash)
    app.add_exception_handler(Exception, on_crash)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "An error"},
    500: {
        "model": Problem,
        "content": {PROBLEM_JSON: {}},
        "description": "A bug (`internal_error`; the details are only in the server log)",
    },
}


def _document_problems_as_problem_json(app: FastAPI) -> None:
    """Declare the :class:`Problem` schema under ``application/problem+json``, the media type
    errors are sent with. (FastAPI puts a response ``model`` under the route's own media type,
    ``application/json``; a client generated from the document would expect JSON errors.)"""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        document = generate()
        if fresh:
            for operation in _operations(document):
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if PROBLEM_JSON in content and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for path in document.get("paths", {}).values() for op in path.values()]
