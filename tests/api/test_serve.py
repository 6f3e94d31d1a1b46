"""``treu serve`` with several workers: accepted connections get ``TCP_NODELAY``.

uvicorn binds the shared socket with ``proto`` 0 and asyncio then leaves Nagle's algorithm on:
every keep-alive request after the first waited ~40 ms for the client's delayed ACK.
"""

from __future__ import annotations

import asyncio
import socket

from treu.api.serve import _Config


def test_the_socket_shared_by_workers_gives_connections_tcp_nodelay() -> None:
    listener = _Config("treu.api.app:create_app", host="127.0.0.1", port=0, workers=2).bind_socket()
    with listener:
        assert listener.proto == socket.IPPROTO_TCP
        assert asyncio.run(_nodelay_of_an_accepted_connection(listener)) == 1


async def _nodelay_of_an_accepted_connection(listener: socket.socket) -> int:
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=listener)
    async with server:
        _, writer = await asyncio.open_connection(*listener.getsockname())
        nodelay = await accepted
        writer.close()
        await writer.wait_closed()
    return nodelay
