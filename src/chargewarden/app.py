"""Composition root: builds the store, security services, gateway and API on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from chargewarden.api.app import create_api
from chargewarden.api.context import ApiContext
from chargewarden.config import Settings
from chargewarden.domain.station_calls import StationCalls
from chargewarden.gateway.admission import AdmissionPolicy
from chargewarden.gateway.registry import InMemoryRegistry
from chargewarden.gateway.server import Gateway, GatewayOptions, Listener
from chargewarden.security.recorder import SecurityRecorder
from chargewarden.security.throttle import AdmissionThrottle, ThrottlePolicy
from chargewarden.security.verifier import CredentialVerifier, VerificationCache
from chargewarden.store import Store

log = logging.getLogger(__name__)


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our loop: signals belong to the CSMS, not to the HTTP server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(**settings.throttle.model_dump())


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


async def open_store(settings: Settings) -> Store:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return await Store.open(settings.effective_database_url)


@dataclass
class RunningCsms:
    settings: Settings
    store: Store
    registry: InMemoryRegistry
    gateway: Gateway
    ws_address: tuple[str, int]
    api_address: tuple[str, int] | None
    _api_server: _EmbeddedUvicorn | None
    _api_task: asyncio.Task[None] | None

    @property
    def ws_url(self) -> str:
        host, port = self.ws_address
        return f"ws://{host}:{port}/ocpp"

    @property
    def api_url(self) -> str | None:
        if self.api_address is None:
            return None
        host, port = self.api_address
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._api_server is not None and self._api_task is not None:
            self._api_server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._api_task
        await self.gateway.stop()
        await self.store.close()


async def start_csms(settings: Settings, *, with_api: bool = True) -> RunningCsms:
    """Open the store (migrating it), start the station listener and, optionally, the API."""
    store = await open_store(settings)
    try:
        registry = InMemoryRegistry()
        recorder = SecurityRecorder(store)
        calls = StationCalls(store, recorder, settings.heartbeat_interval)
        gateway = Gateway(
            store,
            registry,
            recorder,
            CredentialVerifier(VerificationCache()),
            AdmissionThrottle(throttle_policy(settings)),
            calls,
            GatewayOptions(
                policy=AdmissionPolicy(allow_profile_0=settings.allow_profile_0),
                call_timeout=settings.call_timeout,
                max_message_bytes=settings.max_message_bytes,
                ping_interval=settings.ping_interval,
                ping_timeout=settings.ping_timeout,
            ),
        )
        (ws_address,) = await gateway.start([Listener(settings.host, settings.ws_port, "ws")])
    except BaseException:
        await store.close()
        raise

    api_server: _EmbeddedUvicorn | None = None
    api_task: asyncio.Task[None] | None = None
    api_address: tuple[str, int] | None = None
    if with_api:
        api = create_api(
            ApiContext(store=store, registry=registry, call_timeout=settings.call_timeout)
        )
        config = uvicorn.Config(
            api,
            host=settings.host,
            port=settings.api_port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            server_header=False,
        )
        api_server = _EmbeddedUvicorn(config)
        try:
            api_socket = bind_tcp(settings.host, settings.api_port)
        except OSError:
            await gateway.stop()
            await store.close()
            raise
        api_address = api_socket.getsockname()[:2]
        api_task = asyncio.create_task(api_server.serve(sockets=[api_socket]))
        # uvicorn exposes only a flag, no event, for "listening".
        while not api_server.started and not api_task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return RunningCsms(
        settings, store, registry, gateway, ws_address, api_address, api_server, api_task
    )


async def run_until_signalled(running: RunningCsms) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await running.stop()
