"""One admitted station connection: the RPC endpoint bound to a WebSocket."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from chargewarden.domain.station_calls import FollowUp, StationCalls, StationSession
from chargewarden.gateway.registry import ConnectionInfo
from chargewarden.ocpp16.handlers import station_handlers as handlers_16
from chargewarden.ocpp201.handlers import station_handlers as handlers_201
from chargewarden.rpc.endpoint import RpcEndpoint
from chargewarden.rpc.errors import RpcError
from chargewarden.rpc.router import CallObserver
from chargewarden.rpc.session import ConnectionGone
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.events import CsmsEvent
from chargewarden.security.recorder import SecurityRecorder

log = logging.getLogger(__name__)

# A misbehaving station must not turn into a flood of stored events: at most this many
# InvalidMessages events per connection per window; the rest are counted into the next one.
INVALID_MESSAGE_EVENTS_PER_WINDOW = 5
INVALID_MESSAGE_WINDOW_SECONDS = 60.0


@dataclass(slots=True)
class _InvalidMessageBudget:
    window_start: float = 0.0
    recorded: int = 0
    suppressed: int = 0

    def admit(self, now: float) -> tuple[bool, int]:
        """Whether to record an event now, and how many were suppressed before it."""
        if now - self.window_start >= INVALID_MESSAGE_WINDOW_SECONDS:
            self.window_start, self.recorded = now, 0
        if self.recorded < INVALID_MESSAGE_EVENTS_PER_WINDOW:
            self.recorded += 1
            suppressed, self.suppressed = self.suppressed, 0
            return True, suppressed
        self.suppressed += 1
        return False, 0


class StationConnection:
    """Implements gateway.registry.StationLink for one live WebSocket."""

    def __init__(
        self,
        websocket: ServerConnection,
        info: ConnectionInfo,
        session: StationSession,
        calls: StationCalls,
        recorder: SecurityRecorder,
        call_timeout: float,
        on_call_handled: CallObserver | None = None,
    ) -> None:
        self._websocket = websocket
        self._info = info
        self._session = session
        self._recorder = recorder
        self._budget = _InvalidMessageBudget()
        self._follow_up_tasks: set[asyncio.Task[None]] = set()
        self._invalid_events: list[tuple[RpcError, int]] = []
        build = handlers_16 if info.ocpp_version is OcppVersion.V16 else handlers_201
        self.endpoint = RpcEndpoint(
            info.ocpp_version,
            build(calls, session),
            websocket.send,
            call_timeout=call_timeout,
            gate=lambda action: calls.gate(session, action),
            on_rpc_error=self._on_rpc_error,
            on_call_handled=on_call_handled,
            trace_name=info.identity,
        )

    @property
    def info(self) -> ConnectionInfo:
        return self._info

    @property
    def session(self) -> StationSession:
        return self._session

    async def call(
        self, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        return await self.endpoint.call(action, payload, timeout)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.endpoint.close()
        await self._websocket.close(code, reason)

    def _on_rpc_error(self, error: RpcError) -> None:
        # Called synchronously by the endpoint; the event is stored by the receive loop.
        record, suppressed = self._budget.admit(time.monotonic())
        if record:
            self._invalid_events.append((error, suppressed))

    async def _flush_invalid_events(self) -> None:
        while self._invalid_events:
            error, suppressed = self._invalid_events.pop(0)
            more = f" (+{suppressed} more not recorded)" if suppressed else ""
            await self._recorder.csms(
                CsmsEvent.INVALID_MESSAGES,
                identity=self._info.identity,
                peer=self._info.peer,
                reason=f"{error.kind.name}: {error.description}"[:200] + more,
                version=self._info.ocpp_version,
            )

    def start_follow_ups(self) -> None:
        """The answer to the station's CALL is sent: what had to wait for it may start now."""
        follow_ups, self._session.follow_ups = self._session.follow_ups, []
        for follow_up in follow_ups:
            task = asyncio.create_task(self._run_follow_up(follow_up))
            self._follow_up_tasks.add(task)
            task.add_done_callback(self._follow_up_tasks.discard)

    async def _run_follow_up(self, follow_up: FollowUp) -> None:
        try:
            await follow_up()
        except Exception:
            # A follow-up records its own outcome; one that fails must not end the connection.
            log.exception("follow-up call to station %s failed", self._info.identity)

    async def serve(self) -> None:
        """Receive until the socket closes; every frame gets an answer or a CALLERROR."""
        try:
            async for message in self._websocket:
                await self.endpoint.receive(message)
                if self._session.follow_ups:
                    self.start_follow_ups()
                if self._invalid_events:
                    await self._flush_invalid_events()
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == 1009:
                await self._recorder.csms(
                    CsmsEvent.OVERSIZED_MESSAGE,
                    identity=self._info.identity,
                    peer=self._info.peer,
                    reason="message larger than the configured limit; connection closed (1009)",
                    version=self._info.ocpp_version,
                )
        except ConnectionGone:
            pass
        finally:
            self.endpoint.close()
