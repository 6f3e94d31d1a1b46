"""Serving the API with uvicorn (``treu serve``, ``bench/api.py``).

Why not ``uvicorn.run``: with ``workers > 1`` it binds the listening socket itself with
``proto`` 0, the accepted connections inherit it, and asyncio only turns on ``TCP_NODELAY``
for sockets that say ``IPPROTO_TCP`` — so Nagle's algorithm meets the client's delayed ACK and
every keep-alive request after the first waits about 40 ms on Linux (uvicorn issue #3149).
Here the socket is re-wrapped so the kernel reports its real protocol.
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


def serve(app: str, *, host: str, port: int, workers: int = 1, **options: Any) -> None:
    """Serve the ASGI app at import string ``app`` (``options``: more ``uvicorn.Config``)."""
    config = _Config(app, host=host, port=port, workers=workers, **options)
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise SystemExit(3)  # uvicorn's STARTUP_FAILURE
