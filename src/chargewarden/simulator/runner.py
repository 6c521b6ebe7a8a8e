"""Network side of one simulated station: WebSocket, OCPP-J endpoint, timers, reconnects.

All station decisions come from `StationCore`; this module only moves its messages over a real
connection and keeps time. File transfers (firmware downloads, log uploads) run beside the
connection in `filetransfer.FileTransfers`, for as long as `run()` does. Secrets (the
Authorization header, transfer URLs) are handed to websockets / httpx and are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chargewarden.rpc.endpoint import RpcEndpoint
from chargewarden.rpc.errors import RpcError
from chargewarden.rpc.session import (
    CallErrorReceived,
    CallTimeout,
    ConnectionGone,
    InvalidResponse,
)
from chargewarden.simulator.config import StationConfig, TlsMaterialError
from chargewarden.simulator.connect import ConnectOutcome, core_ssl_context, open_connection
from chargewarden.simulator.core import Clock, Payload, RegistrationStatus, StationCore
from chargewarden.simulator.filetransfer import FileTransfers
from chargewarden.simulator.values import utc_now

__all__ = ["ConnectOutcome", "RunnerState", "StationRunner"]

logger = logging.getLogger(__name__)

_RAW_BUFFER = 64
# Failures of one station→CSMS call that leave the connection usable.
_CALL_FAILURES = (CallTimeout, CallErrorReceived, InvalidResponse, RpcError)

T = TypeVar("T")


@dataclass
class RunnerState:
    """What observers (tests, the CLI, fleet reports) may read while the station runs."""

    connected: bool = False
    last_outcome: ConnectOutcome | None = None
    first_outcome: ConnectOutcome | None = None
    boot_status: RegistrationStatus | None = None
    sent: int = 0
    received: int = 0
    admitted_connections: int = 0
    refused_connections: int = 0
    # Set while the current connection has an Accepted registration; cleared on disconnect.
    booted: asyncio.Event = field(default_factory=asyncio.Event)


class _Backoff:
    """Exponential reconnect delay with equal jitter, so a fleet does not reconnect in step."""

    def __init__(self, initial: float, cap: float, rng: random.Random) -> None:
        self._initial, self._cap, self._rng = initial, cap, rng
        self._attempt = 0

    def next(self) -> float:
        ceiling = min(self._cap, self._initial * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self._attempt = 0


class StationRunner:
    def __init__(
        self,
        config: StationConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
        clock: Clock = utc_now,
        call_timeout: float = 30.0,
        connect_limiter: asyncio.Semaphore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.core = StationCore(config, clock)
        self.state = RunnerState()
        # An explicit context wins (clamped to TLS >= 1.2) until the station's certificates or
        # CSMS roots change; otherwise the station builds its own from what it holds
        # (`core_ssl_context`): now if it holds TLS material, so that bad material fails here
        # and not in a retry loop, else on the first wss connect (a ws-only fleet of thousands
        # should not load the system CA bundle for each station).
        self._ssl_context = ssl_context
        self._context_generation = self.core.certificates.generation
        if ssl_context is None and self.core.certificates.has_tls_material():
            self._ssl_context = core_ssl_context(self.core)
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout
        self._clock = clock
        # Shared by a fleet so thousands of stations do not all open sockets at once.
        self._limiter = connect_limiter
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._ws: ClientConnection | None = None
        self._endpoint: RpcEndpoint | None = None
        self._wake = asyncio.Event()
        self._raw: deque[str] = deque(maxlen=_RAW_BUFFER)
        self._raw_arrived = asyncio.Event()
        self.transfers = FileTransfers(
            self.core,
            clock=clock,
            on_change=self._wake.set,
            fallback_context=lambda: self._ssl_context,
        )

    # ---- connecting ---------------------------------------------------------------------------

    async def connect_once(self) -> ConnectOutcome:
        """One connection attempt as a probe: report whether the CSMS admits the station, then
        close. `run` is what keeps a station connected."""
        outcome, ws = await self._open()
        if ws is not None:
            await ws.close()
        return outcome

    async def _handshake(self) -> tuple[ConnectOutcome, ClientConnection | None]:
        if self.core.connection_url()[:6].lower() == "wss://":
            self._refresh_ssl_context()
        return await open_connection(
            self.core, ssl_context=self._ssl_context, connect_timeout=self._connect_timeout
        )

    def _refresh_ssl_context(self) -> None:
        """Build the context on first use, and again after a CertificateSigned or a change of
        the CSMS roots, so the next handshake presents the new certificate and trusts the new
        roots."""
        generation = self.core.certificates.generation
        if self._ssl_context is not None and generation == self._context_generation:
            return
        try:
            self._ssl_context = core_ssl_context(self.core)
        except TlsMaterialError as exc:
            if self._ssl_context is None:
                raise
            logger.warning(
                "%s: new TLS material unusable, keeping the old: %s", self.config.identity, exc
            )
        self._context_generation = generation

    async def _open(self) -> tuple[ConnectOutcome, ClientConnection | None]:
        if self._limiter is None:
            outcome, ws = await self._handshake()
        else:
            async with self._limiter:
                outcome, ws = await self._handshake()
        self.state.last_outcome = outcome
        if self.state.first_outcome is None:
            self.state.first_outcome = outcome
        if outcome.admitted:
            self.state.admitted_connections += 1
        else:
            self.state.refused_connections += 1
        return outcome, ws

    # ---- running ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until `stop` is set: boot, heartbeat, serve, reconnect."""
        transfers = asyncio.create_task(self.transfers.run())
        try:
            await self._run(stop)
        finally:
            transfers.cancel()
            await asyncio.gather(transfers, return_exceptions=True)

    async def _run(self, stop: asyncio.Event) -> None:
        backoff = _Backoff(
            self.config.reconnect_backoff_initial, self.config.reconnect_backoff_max, self._rng
        )
        while not stop.is_set():
            outcome, ws = await self._open()
            if ws is None:
                logger.info(
                    "%s: not admitted (%s): %s",
                    self.config.identity,
                    outcome.http_status,
                    outcome.reason,
                )
                self.core.on_connect_failed(self._clock())
                await _sleep_until(stop, backoff.next())
                continue
            accepted = await self._serve(ws, stop)
            if accepted:
                backoff.reset()
            if stop.is_set():
                break
            if self.core.reconnect_requested:
                logger.info(
                    "%s: reconnecting: %s", self.config.identity, self.core.reconnect_reason
                )
                continue  # new credentials / profile / reboot: no reason to wait
            await _sleep_until(stop, backoff.next())

    async def _serve(self, ws: ClientConnection, stop: asyncio.Event) -> bool:
        """Run one admitted connection; True if the boot was accepted on it."""
        self._ws = ws
        endpoint = RpcEndpoint(
            self.config.ocpp_version,
            self.core.handlers(),
            self._send,
            call_timeout=self._call_timeout,
        )
        self._endpoint = endpoint
        self.state.connected = True
        tasks = [
            asyncio.create_task(self._receive_loop(ws, endpoint)),
            asyncio.create_task(self._drive(stop)),
            asyncio.create_task(stop.wait()),
        ]
        accepted = False
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            accepted = self.state.booted.is_set()
            for task in done:
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    # A bug, not a network event: surface it instead of reconnecting forever.
                    raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            endpoint.close()
            self._endpoint = None
            self._ws = None
            self.state.connected = False
            self.state.booted.clear()
            await ws.close()
        return accepted

    async def _receive_loop(self, ws: ClientConnection, endpoint: RpcEndpoint) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                self.state.received += 1
                if isinstance(message, str):
                    text = message
                else:
                    text = bytes(message).decode("utf-8", "replace")
                self._raw.append(text)
                self._raw_arrived.set()
                # Returns after our reply (if any) went out, so anything the handler queued or
                # a reconnect it asked for now happens strictly after that reply (TriggerMessage).
                await endpoint.receive(message)
                self.transfers.kick()  # the call may have asked for a download or upload
                if self.core.reconnect_requested or self.core.has_outgoing():
                    self._wake.set()

    async def _drive(self, stop: asyncio.Event) -> None:
        core = self.core
        try:
            if core.on_connected(self._clock()):
                if not await self._boot():
                    return
            else:
                self._sync_boot_state()  # still registered from the previous connection
            loop = asyncio.get_running_loop()
            next_beat = loop.time() + core.heartbeat_interval
            while not stop.is_set():
                self._wake.clear()
                if core.reconnect_requested:
                    return  # reset / new credentials: go at once, the queue waits (A01 step 3)
                await self._flush()
                if loop.time() >= next_beat:
                    await self._guarded(self._call_and_apply(*core.heartbeat_request()))
                    next_beat = loop.time() + core.heartbeat_interval
                    continue
                await _wait_event(self._wake, next_beat - loop.time())
        except ConnectionGone:
            return

    async def _boot(self) -> bool:
        """Boot until Accepted (True) or until a reconnect is requested (False)."""
        core = self.core
        loop = asyncio.get_running_loop()
        while True:
            await self._guarded(self._call_and_apply(*core.boot_request()))
            if core.registration is RegistrationStatus.ACCEPTED:
                return True
            # Pending: stay connected, answer the CSMS and send what it triggers (a triggered
            # BootNotification may be accepted before the retry interval ends). Rejected: wait.
            deadline = loop.time() + core.retry_interval
            while loop.time() < deadline:
                self._wake.clear()
                if core.reconnect_requested:
                    return False
                await self._flush()
                if core.registration is RegistrationStatus.ACCEPTED:
                    return True
                await _wait_event(self._wake, deadline - loop.time())

    async def _flush(self) -> None:
        while batch := self.core.take_outgoing():
            for index, (action, payload) in enumerate(batch):
                try:
                    await self._guarded(self._call_and_apply(action, payload))
                except BaseException:
                    # Connection lost or runner stopping: the rest (and the call in flight,
                    # which may not have arrived) goes out on the next connection.
                    self.core.requeue(batch[index:])
                    raise

    async def _call_and_apply(self, action: str, payload: Payload) -> None:
        response = await self._call(action, payload)
        self.core.on_response(action, response, self._clock(), payload)
        if action == "BootNotification":
            self._sync_boot_state()

    def _sync_boot_state(self) -> None:
        # Observers learn of the Accepted boot at once, not after the messages that follow it.
        self.state.boot_status = self.core.registration
        if self.core.registration is RegistrationStatus.ACCEPTED:
            self.state.booted.set()

    async def _call(self, action: str, payload: Payload) -> Payload:
        endpoint = self._endpoint
        if endpoint is None:
            raise ConnectionGone("not connected")
        return await endpoint.call(action, payload)

    async def _guarded(self, call: Awaitable[T]) -> T | None:
        """A failed call (timeout, CALLERROR, bad answer) is logged and skipped, as a station
        would; a lost connection propagates and ends the connection's driver."""
        try:
            return await call
        except _CALL_FAILURES as exc:
            logger.warning("%s: call failed: %s", self.config.identity, exc)
            return None

    async def _send(self, text: str) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionGone("not connected")
        await ws.send(text)
        self.state.sent += 1

    # ---- test hooks ---------------------------------------------------------------------------

    async def send_call(self, action: str, payload: Payload) -> Payload:
        """Make the station send any (schema-valid) call now and return the CSMS's answer."""
        return await self._call(action, payload)

    async def send_raw(self, text: str) -> None:
        """Send a frame as-is (malformed ones included). Clears the raw buffer first, so the
        next `recv_raw` returns the first message that arrives after this one was sent."""
        ws = self._ws
        if ws is None:
            raise ConnectionGone("not connected")
        self._raw.clear()
        self._raw_arrived.clear()
        await ws.send(text)
        self.state.sent += 1

    async def recv_raw(self, timeout: float) -> str:  # noqa: ASYNC109 - the test's deadline
        """The oldest received message not yet read through this method (TimeoutError if none
        arrives in time). Every message is still processed normally as well."""
        async with asyncio.timeout(timeout):
            while not self._raw:
                self._raw_arrived.clear()
                await self._raw_arrived.wait()
        return self._raw.popleft()


async def _wait_event(event: asyncio.Event, timeout: float) -> None:  # noqa: ASYNC109
    if timeout <= 0:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


async def _sleep_until(stop: asyncio.Event, delay: float) -> None:
    """Sleep `delay` seconds unless `stop` is set first."""
    await _wait_event(stop, delay)
