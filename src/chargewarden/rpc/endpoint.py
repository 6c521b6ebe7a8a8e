"""One connection's OCPP-J endpoint: incoming frames to the router or the call session.

The gateway owns the socket and feeds every received message to `receive`, one at a time.
Handling a CALL is awaited inside `receive`, which gives natural back-pressure and keeps the
station to one CALL in flight; the price is that a handler must not await `call()` on its own
endpoint (the answer could not be read until the handler returned). That mistake raises at
once instead of hanging until the timeout; schedule follow-up calls as tasks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from chargewarden.rpc.errors import RpcError, error_code
from chargewarden.rpc.frames import (
    UNREADABLE_ID,
    Call,
    FrameError,
    MessageType,
    encode_error,
    parse_frame,
)
from chargewarden.rpc.router import UNKNOWN_ACTION, CallObserver, Gate, Handler, Router
from chargewarden.rpc.session import CallSession, Send
from chargewarden.rpc.trace import trace_frame, trace_text, tracing
from chargewarden.rpc.versions import OcppVersion

logger = logging.getLogger(__name__)

_RESPONSE_TYPES = (MessageType.CALLRESULT, MessageType.CALLERROR)


class RpcEndpoint:
    def __init__(
        self,
        version: OcppVersion,
        handlers: Mapping[str, Handler],
        send: Send,
        *,
        call_timeout: float = 30.0,
        gate: Gate | None = None,
        on_rpc_error: Callable[[RpcError], None] | None = None,
        on_call_handled: CallObserver | None = None,
        trace_name: str = "",
    ) -> None:
        self.version = version
        self._trace_name = trace_name
        self.router = Router(
            version,
            handlers,
            gate=gate,
            on_invalid_request=self._report,
            on_call_handled=on_call_handled,
        )
        # Also told about frames answered with a CALLERROR before any action could be read.
        self._on_call_handled = on_call_handled
        self._raw_send = send
        self.session = CallSession(version, self._send, default_timeout=call_timeout)
        self._on_rpc_error = on_rpc_error
        self._handling_task: asyncio.Task[Any] | None = None

    async def _send(self, text: str) -> None:
        if tracing():
            trace_text(self._trace_name, ">", text)
        await self._raw_send(text)

    async def receive(self, data: str | bytes) -> None:
        """Process one received WebSocket message; send whatever answer it needs."""
        started = time.perf_counter()
        try:
            frame = parse_frame(data)
        except RpcError as exc:
            if tracing():
                trace_text(self._trace_name, "<", data)
            await self._frame_error(exc, started)
            return
        if tracing():
            trace_frame(self._trace_name, "<", frame)
        if type(frame) is Call:
            self._handling_task = asyncio.current_task()
            try:
                reply = await self.router.dispatch(frame)
            finally:
                self._handling_task = None
            await self._send(reply)
        else:
            self.session.deliver(frame)

    # The timeout is the OCPP answer deadline, part of the StationLink.call contract, and is
    # applied only to waiting for the answer (not to queueing), hence a parameter.
    async def call(
        self,
        action: str,
        payload: dict[str, Any],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Send a CALL to the station; see CallSession.call."""
        if self._handling_task is not None and asyncio.current_task() is self._handling_task:
            raise RuntimeError(
                f"{action} called from inside a CALL handler would deadlock: the answer is read "
                "only after the handler returns; run it in a task instead"
            )
        return await self.session.call(action, payload, timeout)

    def close(self) -> None:
        self.session.close()

    def _report(self, exc: RpcError) -> None:
        """Tell the owner about an invalid frame or a CALL that breaks its schema."""
        if self._on_rpc_error is not None:
            try:
                self._on_rpc_error(exc)
            except Exception:
                # Recording the security event must not take the connection down with it.
                logger.exception("on_rpc_error callback failed")

    async def _frame_error(self, exc: RpcError, started: float) -> None:
        unique_id = exc.unique_id or UNREADABLE_ID
        logger.warning("invalid OCPP-J frame (message id %r): %s", unique_id, exc)
        self._report(exc)
        message_type = exc.message_type if isinstance(exc, FrameError) else None
        if message_type in _RESPONSE_TYPES:
            # A CALLERROR answers a CALL only; a broken answer fails our waiting call now
            # instead of at its timeout.
            if unique_id != UNREADABLE_ID:
                self.session.deliver_invalid(unique_id, exc)
            return
        code = error_code(exc.kind, self.version)
        if self._on_call_handled is not None:
            try:
                self._on_call_handled(UNKNOWN_ACTION, code, time.perf_counter() - started)
            except Exception:
                logger.exception("on_call_handled observer failed")
        await self._send(encode_error(unique_id, code, exc.description, exc.details))
