"""Dispatch of incoming CALLs to handlers, with validation on both sides of the handler.

`Router.dispatch` is the one place that turns every outcome, including our own bugs, into a
frame: it never raises, and what it sends never contains a traceback or payload values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from chargewarden.rpc.errors import ErrorKind, RpcError, error_code
from chargewarden.rpc.frames import Call, encode_error, encode_result
from chargewarden.rpc.schemas import schema_registry
from chargewarden.rpc.versions import OcppVersion

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
Gate = Callable[[str], RpcError | None]
# Told once per CALL handled: (action, outcome, seconds). The outcome is OK or the CALLERROR
# code sent. The action is UNKNOWN_ACTION for names the version does not define: they come from
# the peer, and whoever labels metrics with them must stay bounded.
CallObserver = Callable[[str, str, float], None]

INTERNAL_ERROR_DESCRIPTION = "internal error"
OK = "ok"
UNKNOWN_ACTION = "unknown"


class Router:
    def __init__(
        self,
        version: OcppVersion,
        handlers: Mapping[str, Handler],
        *,
        gate: Gate | None = None,
        validate_responses: bool = True,
        on_invalid_request: Callable[[RpcError], None] | None = None,
        on_call_handled: CallObserver | None = None,
    ) -> None:
        self.version = version
        self._registry = schema_registry(version)
        unknown = sorted(set(handlers) - self._registry.known_actions())
        if unknown:
            # A misspelt action would otherwise be answered NotImplemented forever, silently.
            raise ValueError(f"OCPP {version} has no action(s) {', '.join(unknown)}")
        self._handlers = dict(handlers)
        self._gate = gate
        self._validate_responses = validate_responses
        # Told about CALLs that break their schema: an InvalidMessages security event upstream.
        self._on_invalid_request = on_invalid_request
        self._internal_code = error_code(ErrorKind.INTERNAL, version)
        self._on_call_handled = on_call_handled

    async def dispatch(self, call: Call) -> str:
        """Handle one CALL; return the encoded CALLRESULT or CALLERROR."""
        started = time.perf_counter()
        try:
            payload = await self._handle(call)
            reply, outcome = encode_result(call.unique_id, payload), OK
        except RpcError as exc:
            reply, outcome = self._encode_rpc_error(call, exc)
        except Exception:
            # Only action and id (repr: they come from the peer and must stay on one log line);
            # the payload may carry credentials, and the traceback stays off the wire.
            logger.exception("handling %r (message id %r) failed", call.action, call.unique_id)
            reply, outcome = self._internal(call.unique_id), self._internal_code
        if self._on_call_handled is not None:
            self._observe(call.action, outcome, time.perf_counter() - started)
        return reply

    def _observe(self, action: str, outcome: str, seconds: float) -> None:
        assert self._on_call_handled is not None
        label = action if self._registry.is_known(action) else UNKNOWN_ACTION
        try:
            self._on_call_handled(label, outcome, seconds)
        except Exception:
            # Counting must never cost the station its answer.
            logger.exception("on_call_handled observer failed")

    async def _handle(self, call: Call) -> dict[str, Any]:
        action = call.action
        # The gate comes first so that a station that is not accepted (RPC-08) learns nothing,
        # not even which actions we implement or how its payload is wrong.
        if self._gate is not None:
            refusal = self._gate(action)
            if refusal is not None:
                raise refusal
        registry = self._registry
        if not registry.is_known(action):
            raise RpcError(ErrorKind.NOT_IMPLEMENTED, "unknown action")
        handler = self._handlers.get(action)
        if handler is None:
            raise RpcError(ErrorKind.NOT_SUPPORTED, "action not supported")
        try:
            registry.validate_request(action, call.payload)
        except RpcError as exc:
            if self._on_invalid_request is not None:
                self._on_invalid_request(exc)
            raise
        response = await handler(call.payload)
        if type(response) is not dict:
            logger.error("handler for %s returned %s, not a dict", action, type(response).__name__)
            raise _internal_error()
        if self._validate_responses:
            try:
                registry.validate_response(action, response)
            except RpcError as exc:
                # Our handler broke the schema: the station is not at fault, so it gets
                # InternalError, and we get the path and rule (never the value) to fix it.
                logger.error("response to %s failed its schema: %s", action, exc.description)
                raise _internal_error() from None
        return response

    def _encode_rpc_error(self, call: Call, exc: RpcError) -> tuple[str, str]:
        """The CALLERROR frame and the code it carries."""
        code = error_code(exc.kind, self.version)
        try:
            return encode_error(call.unique_id, code, exc.description, exc.details), code
        except (TypeError, ValueError):
            logger.exception("CALLERROR details for %s are not JSON", call.action)
            return self._internal(call.unique_id), self._internal_code

    def _internal(self, unique_id: str) -> str:
        return encode_error(unique_id, self._internal_code, INTERNAL_ERROR_DESCRIPTION, {})


def _internal_error() -> RpcError:
    return RpcError(ErrorKind.INTERNAL, INTERNAL_ERROR_DESCRIPTION)
