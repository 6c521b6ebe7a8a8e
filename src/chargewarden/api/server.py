"""The HTTP API served by uvicorn inside the CSMS's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our loop: signals belong to the CSMS, not to the HTTP server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_tcp(host: str, port: int) -> socket.socket:
    """Bind before uvicorn sees the socket: a busy port is then our clear error, not its exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


class ApiServer:
    def __init__(
        self, server: _EmbeddedUvicorn, task: asyncio.Task[None], address: tuple[str, int]
    ) -> None:
        self._server = server
        self._task = task
        self.address = address

    @classmethod
    async def start(
        cls, app: FastAPI, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> ApiServer:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            server_header=False,
        )
        if ssl_context is not None:
            # uvicorn builds contexts from file names only; ours switches certificates live.
            config.load()
            config.ssl = ssl_context
        server = _EmbeddedUvicorn(config)
        sock = bind_tcp(host, port)
        address = sock.getsockname()[:2]
        task = asyncio.create_task(server.serve(sockets=[sock]))
        # uvicorn exposes only a flag, no event, for "listening".
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return cls(server, task, address)

    async def stop(self) -> None:
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
