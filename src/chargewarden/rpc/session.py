"""CALLs from the CSMS to a station: one in flight, correlated by message id, with a timeout.

OCPP-J allows one outstanding CALL per direction (1.6 §4.1.1; REQUIREMENTS RPC-06). Callers do
not coordinate with each other: `call` queues them on a lock held until the answer, the
timeout or the end of the connection, so a second caller simply waits its turn.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from chargewarden.rpc.errors import RpcError
from chargewarden.rpc.frames import Call, CallError, CallResult, encode_call
from chargewarden.rpc.schemas import schema_registry
from chargewarden.rpc.versions import OcppVersion

logger = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[None]]


class CallTimeout(Exception):
    """The station did not answer in time."""


class CallErrorReceived(Exception):
    """The station answered with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict[str, Any]) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.details = details


class ConnectionGone(Exception):
    """The connection closed before or while the call was made."""


class InvalidResponse(Exception):
    """The station's answer was not a valid CALLRESULT for the action (see `error`)."""

    def __init__(self, action: str, error: RpcError) -> None:
        super().__init__(f"{action}: {error.description}")
        self.action = action
        self.error = error


# What the pending future resolves to: the answer, the reason the answer was unusable, or None
# when the connection went away.
_Outcome = CallResult | CallError | RpcError | None


@dataclass(slots=True)
class _Pending:
    unique_id: str
    action: str
    future: asyncio.Future[_Outcome]


class CallSession:
    def __init__(
        self,
        version: OcppVersion,
        send: Send,
        *,
        default_timeout: float = 30.0,
        validate: bool = True,
    ) -> None:
        self.version = version
        self._send = send
        self._default_timeout = default_timeout
        self._validate = validate
        self._registry = schema_registry(version)
        self._lock = asyncio.Lock()
        self._pending: _Pending | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    # The timeout is the OCPP answer deadline, part of the StationLink.call contract, and is
    # applied only to waiting for the answer (not to queueing), hence a parameter.
    async def call(
        self,
        action: str,
        payload: dict[str, Any],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload.

        Raises RpcError (invalid outgoing payload, nothing sent), CallTimeout,
        CallErrorReceived, InvalidResponse or ConnectionGone.
        """
        if self._closed:
            raise ConnectionGone("connection is closed")
        if self._validate:
            # Checked before queueing: a caller with a bad payload should not wait behind
            # others only to be told so.
            self._registry.validate_request(action, payload)
        wait = self._default_timeout if timeout is None else timeout
        async with self._lock:
            if self._closed:
                raise ConnectionGone("connection is closed")
            unique_id = str(uuid.uuid4())
            future: asyncio.Future[_Outcome] = asyncio.get_running_loop().create_future()
            # Registered before sending: an in-memory or very fast peer may answer before
            # `send` returns.
            self._pending = _Pending(unique_id, action, future)
            try:
                text = encode_call(Call(unique_id, action, payload))
                try:
                    await self._send(text)
                except Exception as exc:
                    raise ConnectionGone(f"sending {action} failed") from exc
                try:
                    async with asyncio.timeout(wait):
                        outcome = await future
                except TimeoutError:
                    raise CallTimeout(f"{action}: no answer within {wait:g} s") from None
            finally:
                self._pending = None
        return self._result(action, outcome)

    def _result(self, action: str, outcome: _Outcome) -> dict[str, Any]:
        if outcome is None:
            raise ConnectionGone(f"connection closed while waiting for the {action} answer")
        if isinstance(outcome, RpcError):
            raise InvalidResponse(action, outcome)
        if isinstance(outcome, CallError):
            raise CallErrorReceived(
                outcome.error_code, outcome.error_description, outcome.error_details
            )
        if self._validate:
            try:
                self._registry.validate_response(action, outcome.payload)
            except RpcError as exc:
                raise InvalidResponse(action, exc) from None
        return outcome.payload

    def deliver(self, frame: CallResult | CallError) -> bool:
        """Hand an answer to the waiting call. False when no call waits for this id."""
        return self._resolve(frame.unique_id, frame, type(frame).__name__)

    def deliver_invalid(self, unique_id: str, error: RpcError) -> bool:
        """Fail the waiting call with InvalidResponse because its answer could not be parsed,
        rather than letting it run into the timeout."""
        return self._resolve(unique_id, error, "unparsable answer")

    def _resolve(self, unique_id: str, outcome: _Outcome, what: str) -> bool:
        pending = self._pending
        if pending is None or pending.unique_id != unique_id or pending.future.done():
            # Late (after a timeout) or never asked for; %r keeps a hostile id on one log line.
            logger.warning("ignoring %s with unknown or late message id %r", what, unique_id)
            return False
        pending.future.set_result(outcome)
        return True

    def close(self) -> None:
        """Fail the waiting call and every later one with ConnectionGone."""
        self._closed = True
        pending = self._pending
        if pending is not None and not pending.future.done():
            pending.future.set_result(None)
