"""Test and benchmark helpers: run a Sanic app in-process on an ephemeral 127.0.0.1 port.

Not on the message's path; used by tests, benchmarks and `python -m bot.testing.twilio_server`.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sanic import Sanic


def bind_local(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on an ephemeral port: know the URL before the app is built."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(512)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@asynccontextmanager
async def serve_in_process(app: Sanic, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve `app` in the running event loop; yield its base URL (http://127.0.0.1:PORT)."""
    app.config.MOTD = False
    app.config.TOUCHUP = False  # touch-up recompiles Sanic methods and breaks a second app
    sock = sock or bind_local()
    server = await app.create_server(
        sock=sock, return_asyncio_server=True, access_log=False, debug=False
    )
    if server is None:  # pragma: no cover - only when Sanic refuses to start
        raise RuntimeError("Sanic did not start")
    await server.startup()
    await server.before_start()
    await server.after_start()
    await server.start_serving()
    try:
        yield url_of(sock)
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        sock.close()
