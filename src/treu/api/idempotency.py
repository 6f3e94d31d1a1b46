"""``Idempotency-Key`` on every POST: the first response is stored and replayed.

A pure ASGI middleware, because it must see the raw body (to notice the same key with a
different request) and the finished response (to store it). Per principal (API key, staff user or
member) and idempotency key:

- first request: claim the key, run, store the response (24 h), answer;
- same key, same request, finished: the stored response again, with ``Idempotent-Replayed: true``;
- same key, different request: 422 ``idempotency_key_reuse``;
- same key while the first is still running: 409 ``idempotency_key_in_use`` (retry later).

Server errors (5xx) and rate-limit refusals (429) are not stored: the key is released so that a
retry runs the request again.
A request without valid credentials passes through untouched (the route answers 401).
"""

from __future__ import annotations

import hashlib

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from treu.api.deps import Runtime, principal_from_token
from treu.api.problems import problem, treu_error_response
from treu.auth import idempotency
from treu.auth.idempotency import StoredResponse
from treu.errors import ErrorCode, TreuError

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
            response = problem(
                422,
                ErrorCode.VALIDATION_ERROR.value,
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                errors=[{"path": "header.idempotency-key", "message": "1-255 printable ASCII"}],
            )
            await response(scope, receive, send)
            return
        rt: Runtime = scope["app"].state.runtime
        scheme, _, token = headers.get("authorization", "").partition(" ")
        try:
            who = await run_in_threadpool(
                principal_from_token, rt, token.strip() if scheme.lower() == "bearer" else None
            )
        except TreuError:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = who
        body, receive = await _buffer(receive)
        fingerprint = _fingerprint(scope, body)
        try:
            stored = await run_in_threadpool(
                rt.write,
                lambda uow: idempotency.begin(
                    uow,
                    principal_id=who.key_id,
                    tenant_id=who.tenant_id,
                    key=key,
                    fingerprint=fingerprint,
                ),
            )
        except TreuError as exc:
            await treu_error_response(exc)(scope, receive, send)
            return
        if stored is not None:
            await _send_stored(send, stored)
            return
        await self._run_and_store(scope, receive, send, rt, who.key_id, key)

    async def _run_and_store(
        self, scope: Scope, receive: Receive, send: Send, rt: Runtime, key_id: str, key: str
    ) -> None:
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        def release() -> None:
            rt.write(lambda uow: idempotency.release(uow, principal_id=key_id, key=key))

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await run_in_threadpool(release)
            raise
        start = next(m for m in messages if m["type"] == "http.response.start")
        status = int(start["status"])
        if status >= 500 or status == 429:  # a retry later must run, not replay the refusal
            await run_in_threadpool(release)
        else:
            response = StoredResponse(
                status,
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])],
                b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body"),
            )
            await run_in_threadpool(
                rt.write,
                lambda uow: idempotency.complete(
                    uow, principal_id=key_id, key=key, response=response
                ),
            )
        # Sent only once stored: a client that retries at once finds the stored response.
        for message in messages:
            await send(message)


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1")):
        digest.update(part.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


async def _send_stored(send: Send, stored: StoredResponse) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": stored.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body, "more_body": False})
