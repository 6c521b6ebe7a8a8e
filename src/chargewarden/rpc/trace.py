"""Message traces: every frame in and out at DEBUG on `chargewarden.rpc.trace`, redacted.

Off unless that logger is enabled for DEBUG, and then only copies pass through
`redact_payload`, so a trace never shows an AuthorizationKey or a BasicAuthPassword.
"""

from __future__ import annotations

import json
import logging

from chargewarden.rpc.errors import RpcError
from chargewarden.rpc.frames import Call, CallError, CallResult, parse_frame
from chargewarden.rpc.redact import redact_payload

trace_log = logging.getLogger("chargewarden.rpc.trace")


def tracing() -> bool:
    return trace_log.isEnabledFor(logging.DEBUG)


def trace_frame(peer: str, direction: str, frame: Call | CallResult | CallError) -> None:
    if isinstance(frame, Call):
        body = f"CALL {frame.action} {frame.unique_id} " + json.dumps(
            redact_payload(frame.action, frame.payload)
        )
    elif isinstance(frame, CallResult):
        body = f"CALLRESULT {frame.unique_id} " + json.dumps(redact_payload("", frame.payload))
    else:
        body = f"CALLERROR {frame.unique_id} {frame.error_code} {frame.error_description!r}"
    trace_log.debug("%s %s %s", peer, direction, body)


def trace_text(peer: str, direction: str, text: str | bytes) -> None:
    """Trace an encoded frame; unreadable ones are traced by size only, never verbatim."""
    try:
        frame = parse_frame(text)
    except RpcError:
        trace_log.debug("%s %s unreadable frame (%d bytes)", peer, direction, len(text))
        return
    trace_frame(peer, direction, frame)
