"""Serving the API with uvicorn (``treu serve``, ``bench/api.py``).

Why not ``uvicorn.run``: with ``workers > 1`` it binds the listening socket itself with
``proto`` 0, the accepted connections inherit it, and asyncio only turns on ``TCP_NODELAY``
for sockets that say ``IPPROTO_TCP`` — so Nagle's algorithm meets the client's delayed ACK and
every keep-alive request after the first waits about 40 ms on Linux (uvicorn issue #3149).
Here the socket is re-wrapped so the kernel reports its real protocol.

And the supervisor's health check: it pings each worker process and kills one that does not
answer within ``timeout_worker_healthcheck`` (uvicorn: 5 s) — counted from the start of the
process, whose answering thread only starts once it has imported Treu. On a busy two-core
machine that import takes longer than 5 s, and ``treu serve --workers N`` killed and restarted
its workers forever without ever serving (a worker took over a minute under load). The answer
comes from a thread of its own, so a worker busy serving still answers at once, and one that
dies is replaced at once whatever the timeout: a generous one only delays noticing a worker
that hangs completely (the whole interpreter stuck).
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess


class _Config(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        bound = super().bind_socket()
        if bound.family not in (socket.AF_INET, socket.AF_INET6):
            return bound
        # without explicit arguments, socket() asks the kernel: family, type and proto (TCP)
        fixed = socket.socket(fileno=bound.detach())
        fixed.set_inheritable(True)
        return fixed


# Seconds a worker process has to answer the supervisor's health check, its start included.
HEALTHCHECK_TIMEOUT = 300


def serve(app: str, *, host: str, port: int, workers: int = 1, **options: Any) -> None:
    """Serve the ASGI app at import string ``app`` (``options``: more ``uvicorn.Config``)."""
    options.setdefault("timeout_worker_healthcheck", HEALTHCHECK_TIMEOUT)
    config = _Config(app, host=host, port=port, workers=workers, **options)
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise SystemExit(3)  # uvicorn's STARTUP_FAILURE
