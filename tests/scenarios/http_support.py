"""Helpers of the scenarios run through the HTTP API: keys made the ways an operator makes them,
a small client that states the status it expects, and a real server for concurrent requests."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import uvicorn
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from treu.cli.main import app as cli


def document(path: Path) -> Any:
    """A programme document file as a client sends it: JSON (YAML dates become strings)."""
    return json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))


def key_from_cli(engine: Engine, tenant: str, *args: str) -> str:
    """``treu keys create …`` against the test database; its last line is the token."""
    url = engine.url.render_as_string(hide_password=False)
    with mock.patch.dict(os.environ, {"TREU_DATABASE_URL": url}):
        result = CliRunner().invoke(cli, ["keys", "create", *args, "--tenant", tenant])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("treu_sk_"), result.output
    return token


class Api:
    """One API key talking to the app: ``call`` asserts the status and answers the JSON body."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, url: str, body: Any = None, *, status: int = 200) -> Any:
        r = self.client.request(method, url, json=body, headers=self.headers)
        assert r.status_code == status, f"{method} {url}: {r.status_code} {r.text}"
        return r.json()

    def get(self, url: str, **params: Any) -> Any:
        r = self.client.get(url, params=params, headers=self.headers)
        assert r.status_code == 200, f"GET {url}: {r.status_code} {r.text}"
        return r.json()

    def post(self, url: str, body: Any = None, *, status: int = 200) -> Any:
        return self.call("POST", url, body, status=status)


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """``app`` under a real uvicorn server on a free port of 127.0.0.1; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
