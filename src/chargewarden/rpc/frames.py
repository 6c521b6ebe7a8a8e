"""OCPP-J frames: parse text into CALL / CALLRESULT / CALLERROR and encode them back.

Parsing never trusts the peer: every way a frame can be wrong maps to one `RpcError` kind, and
the message id is echoed only when it is a string of at most 36 characters (OCPP-J 1.6 §4.1.1,
Table 3); otherwise the answer carries "-1" (REQUIREMENTS RPC-03).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring,
    encode_basestring_ascii,
)
from typing import Any, NoReturn

from chargewarden.rpc.errors import ErrorKind, RpcError

MAX_MESSAGE_ID_LENGTH = 36
MAX_DESCRIPTION_LENGTH = 255
UNREADABLE_ID = "-1"


class MessageType(IntEnum):
    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4


@dataclass(frozen=True, slots=True)
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    unique_id: str
    error_code: str
    error_description: str
    error_details: dict[str, Any]


Frame = Call | CallResult | CallError


class FrameError(RpcError):
    """A frame that could not be parsed.

    `message_type` is set when the frame said what it was: a broken CALLRESULT or CALLERROR must
    not be answered with a CALLERROR (a CALLERROR answers a CALL, and two peers that answer each
    other's errors can loop), so the endpoint needs to tell them apart.
    """

    def __init__(
        self,
        kind: ErrorKind,
        description: str,
        unique_id: str,
        message_type: MessageType | None = None,
    ) -> None:
        super().__init__(kind, description, unique_id=unique_id)
        self.message_type = message_type


def _reject_constant(name: str) -> NoReturn:
    # Python's json accepts NaN and Infinity, which are not JSON (RFC 8259) and would later
    # slip through numeric schema checks because every comparison with NaN is false.
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# `scan_once` is the C scanner behind `decode`; calling it directly skips two regex passes for
# surrounding whitespace, a third of the cost of parsing a small frame. Frames with whitespace
# around them take the full `decode`, so the accepted language is unchanged.
_SCAN = _DECODER.scan_once


def _make_encoder(ensure_ascii: bool) -> Callable[[Any], str]:
    python_encoder = json.JSONEncoder(
        ensure_ascii=ensure_ascii, separators=(",", ":"), allow_nan=False
    )
    if c_make_encoder is None:  # pragma: no cover - CPython always has the C encoder
        return python_encoder.encode
    # JSONEncoder.encode builds a new C encoder on every call, half the cost of encoding a
    # small frame; this one is built once. No circular-reference check (markers=None): a cyclic
    # handler answer fails with RecursionError, which the router turns into InternalError.
    c_encoder = c_make_encoder(
        None,
        python_encoder.default,
        encode_basestring_ascii if ensure_ascii else encode_basestring,
        None,
        ":",
        ",",
        False,
        False,
        False,
    )

    def encode(value: Any) -> str:
        return "".join(c_encoder(value, 0))

    return encode


_ENCODE = _make_encoder(ensure_ascii=False)
_ENCODE_ASCII = _make_encoder(ensure_ascii=True)


def _decode(text: str) -> Any:
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return _DECODER.decode(text)
    if end != len(text):
        return _DECODER.decode(text)
    return value


def parse_frame(data: str | bytes) -> Call | CallResult | CallError:
    """Parse one WebSocket message. Raises `FrameError` (an `RpcError`) when it is not valid."""
    if not isinstance(data, str):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError(
                ErrorKind.RPC_FRAMEWORK, "message is not valid UTF-8", UNREADABLE_ID
            ) from None
    try:
        msg = _decode(data)
    except (ValueError, RecursionError):
        # RecursionError: deeply nested arrays are a cheap way to crash a naive parser.
        raise FrameError(
            ErrorKind.RPC_FRAMEWORK, "message is not valid JSON", UNREADABLE_ID
        ) from None

    # Fast path for the overwhelmingly common well-formed CALL; everything else is diagnosed
    # below, where clarity matters more than speed.
    if type(msg) is list and len(msg) == 4 and type(msg[0]) is int and msg[0] == 2:
        unique_id, action, payload = msg[1], msg[2], msg[3]
        if (
            type(unique_id) is str
            and len(unique_id) <= MAX_MESSAGE_ID_LENGTH
            and type(action) is str
            and type(payload) is dict
        ):
            return Call(unique_id, action, payload)
    return _parse_slow(msg)


def _readable_id(msg: list[Any]) -> str | None:
    if len(msg) < 2:
        return None
    candidate = msg[1]
    if type(candidate) is str and len(candidate) <= MAX_MESSAGE_ID_LENGTH:
        return candidate
    return None


def _payload(
    value: Any, unique_id: str, message_type: MessageType, what: str
) -> dict[str, Any]:
    # OCPP-J 1.6 §4.2.1 and 2.0.1 Part 4 §4.2.1 allow null for "no payload".
    if value is None:
        return {}
    if type(value) is not dict:
        raise FrameError(ErrorKind.FORMAT, f"{what} is not a JSON object", unique_id, message_type)
    return value


def _parse_slow(msg: Any) -> Call | CallResult | CallError:
    framework = ErrorKind.RPC_FRAMEWORK
    if type(msg) is not list:
        raise FrameError(framework, "message is not a JSON array", UNREADABLE_ID)
    if not msg:
        raise FrameError(framework, "message has no MessageTypeId", UNREADABLE_ID)
    readable = _readable_id(msg)
    reply_id = readable if readable is not None else UNREADABLE_ID
    raw_type = msg[0]
    if type(raw_type) is not int:
        raise FrameError(framework, "MessageTypeId is not an integer", reply_id)
    if raw_type not in (2, 3, 4):
        raise FrameError(
            ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED, "MessageTypeId must be 2, 3 or 4", reply_id
        )
    message_type = MessageType(raw_type)
    if readable is None:
        raise FrameError(
            framework,
            f"MessageId must be a string of at most {MAX_MESSAGE_ID_LENGTH} characters",
            UNREADABLE_ID,
            message_type,
        )

    if message_type is MessageType.CALL:
        if len(msg) != 4:
            raise FrameError(framework, "CALL must have 4 elements", readable, message_type)
        if type(msg[2]) is not str:
            raise FrameError(framework, "Action is not a string", readable, message_type)
        return Call(readable, msg[2], _payload(msg[3], readable, message_type, "payload"))

    if message_type is MessageType.CALLRESULT:
        if len(msg) != 3:
            raise FrameError(framework, "CALLRESULT must have 3 elements", readable, message_type)
        return CallResult(readable, _payload(msg[2], readable, message_type, "payload"))

    # Lenient about a missing or null errorDetails only: stations that omit it still mean
    # "your call failed", and treating that as garbage would hide the real error code.
    if len(msg) not in (4, 5):
        raise FrameError(framework, "CALLERROR must have 5 elements", readable, message_type)
    code, description = msg[2], msg[3]
    if type(code) is not str or type(description) is not str:
        raise FrameError(
            framework, "errorCode and errorDescription must be strings", readable, message_type
        )
    details = _payload(msg[4] if len(msg) == 5 else None, readable, message_type, "errorDetails")
    return CallError(readable, code, description, details)


def _dumps(value: list[Any]) -> str:
    text = _ENCODE(value)
    # A lone surrogate (legal in JSON text as an escape) cannot be sent as UTF-8; escaping
    # everything in that rare case keeps the frame valid instead of failing in the socket.
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _ENCODE_ASCII(value)
    return text


def encode_call(call: Call) -> str:
    return _dumps([2, call.unique_id, call.action, call.payload])


def encode_result(unique_id: str, payload: dict[str, Any]) -> str:
    return _dumps([3, unique_id, payload])


def encode_error(
    unique_id: str, code: str, description: str, details: dict[str, Any] | None = None
) -> str:
    return _dumps(
        [4, unique_id, code, description[:MAX_DESCRIPTION_LENGTH], details if details else {}]
    )
