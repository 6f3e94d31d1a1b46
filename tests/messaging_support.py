"""Helpers of the messaging tests: a real SMTP server (aiosmtpd) and a real HTTP provider on
127.0.0.1, both recording what they received.

The fixtures are registered for the whole suite (``pytest_plugins`` in tests/conftest.py): ask
for ``smtp_server`` or ``provider`` by name; import the types (``SmtpServer``, ``Provider``)
from here for annotations.

``smtp_server`` starts an aiosmtpd server on a free port and points TREU_SMTP_HOST/PORT at it
(so ``treu.messaging.dispatcher.dispatch`` with its default transports delivers there, also in
subprocesses started by the test). ``server.received`` holds every accepted message, parsed:
``.to``, ``.subject``, ``.text``, ``.html``, ``.headers``. ``server.refuse["x@example.org"] =
"550 5.1.1 no such mailbox"`` makes it refuse a recipient; ``server.data_answers`` (a list)
makes it answer DATA with the given replies first (``"451 4.3.0 try again"``).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Received:
    """One e-mail the server accepted: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def headers(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.message.items()}

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, "no text/plain part"
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None, "no text/html part"
        return str(part.get_content())  # type: ignore[attr-defined]


@dataclass
class SmtpServer:
    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient → SMTP reply (5xx / 4xx)
    data_answers: list[str] = field(default_factory=list)  # replies to DATA before accepting

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


class _Handler:
    def __init__(self, state: SmtpServer) -> None:
        self.state = state

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        refusal = self.state.refuse.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.state.data_answers:
            return self.state.data_answers.pop(0)
        raw = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        self.state.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), raw, message)
        )
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    state = SmtpServer("127.0.0.1", free_port())
    # SMTPUTF8 on, as real servers announce it; 8BITMIME is aiosmtpd's default
    controller = Controller(
        _Handler(state), hostname=state.host, port=state.port, enable_SMTPUTF8=True
    )
    controller.start()
    monkeypatch.setenv("TREU_SMTP_HOST", state.host)
    monkeypatch.setenv("TREU_SMTP_PORT", str(state.port))
    monkeypatch.setenv("TREU_SMTP_STARTTLS", "false")
    monkeypatch.setenv("TREU_SMTP_SSL", "false")
    try:
        yield state
    finally:
        controller.stop()


# --- an HTTP provider (SMS, push) ------------------------------------------------------------


@dataclass(frozen=True)
class ProviderRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Provider:
    url: str
    requests: list[ProviderRequest] = field(default_factory=list)
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # then 201 + id


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append(ProviderRequest(self.path, headers, body))
            status, document = (
                state.answers.pop(0)
                if state.answers
                else (201, {"id": f"p-{len(state.requests)}", "sid": f"SM{len(state.requests)}"})
            )
            answer = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
