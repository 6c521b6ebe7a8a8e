"""CallSession: CSMS-initiated calls (RPC-06)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from chargewarden.rpc.errors import ErrorKind, RpcError
from chargewarden.rpc.frames import CallError, CallResult
from chargewarden.rpc.session import (
    CallErrorReceived,
    CallSession,
    CallTimeout,
    ConnectionGone,
    InvalidResponse,
)
from chargewarden.rpc.versions import OcppVersion

V16 = OcppVersion.V16
RESET = {"type": "Soft"}


class Wire:
    """The station side of the socket: records what the session sent."""

    def __init__(self) -> None:
        self.sent: list[list[Any]] = []
        self.new_frame = asyncio.Event()

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))
        self.new_frame.set()

    async def next_frame(self) -> list[Any]:
        await asyncio.wait_for(self.new_frame.wait(), 1)
        self.new_frame.clear()
        return self.sent[-1]


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def session(wire: Wire) -> CallSession:
    return CallSession(V16, wire.send, default_timeout=1.0)


async def test_call_sends_a_call_frame_and_returns_the_answer(
    wire: Wire, session: CallSession
) -> None:
    task = asyncio.create_task(session.call("Reset", RESET))
    frame = await wire.next_frame()
    assert frame[0] == 2 and frame[2:] == ["Reset", RESET]
    assert session.deliver(CallResult(frame[1], {"status": "Accepted"}))
    assert await task == {"status": "Accepted"}


async def test_rpc_06_only_one_call_in_flight_second_waits(
    wire: Wire, session: CallSession
) -> None:
    first = asyncio.create_task(session.call("Reset", RESET))
    second = asyncio.create_task(session.call("ClearCache", {}))
    frame = await wire.next_frame()
    await asyncio.sleep(0.01)
    assert len(wire.sent) == 1, "second CALL went out before the first was answered"
    session.deliver(CallResult(frame[1], {"status": "Accepted"}))
    frame2 = await wire.next_frame()
    assert frame2[2] == "ClearCache"
    session.deliver(CallResult(frame2[1], {"status": "Rejected"}))
    assert await first == {"status": "Accepted"}
    assert await second == {"status": "Rejected"}


async def test_rpc_06_ids_are_unique_and_at_most_36_characters(
    wire: Wire, session: CallSession
) -> None:
    for _ in range(50):
        task = asyncio.create_task(session.call("ClearCache", {}))
        frame = await wire.next_frame()
        session.deliver(CallResult(frame[1], {"status": "Accepted"}))
        await task
    ids = [frame[1] for frame in wire.sent]
    assert len(set(ids)) == 50
    assert all(isinstance(i, str) and len(i) <= 36 for i in ids)


async def test_answer_with_another_id_does_not_resolve_the_call(
    wire: Wire, session: CallSession, caplog: pytest.LogCaptureFixture
) -> None:
    task = asyncio.create_task(session.call("Reset", RESET))
    frame = await wire.next_frame()
    caplog.set_level(logging.WARNING)
    assert not session.deliver(CallResult("someone-else", {"status": "Rejected"}))
    assert "someone-else" in caplog.text
    assert session.deliver(CallResult(frame[1], {"status": "Accepted"}))
    assert await task == {"status": "Accepted"}


async def test_rpc_06_timeout_then_late_answer_is_refused_and_logged(
    wire: Wire, session: CallSession, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(CallTimeout):
        await session.call("Reset", RESET, timeout=0.02)
    late_id = wire.sent[-1][1]
    caplog.set_level(logging.WARNING)
    assert not session.deliver(CallResult(late_id, {"status": "Accepted"}))
    assert late_id in caplog.text
    # The lock was released: the next call goes out.
    task = asyncio.create_task(session.call("ClearCache", {}))
    frame = await wire.next_frame()
    session.deliver(CallResult(frame[1], {"status": "Accepted"}))
    assert await task == {"status": "Accepted"}


async def test_callerror_answer_raises_with_its_fields(wire: Wire, session: CallSession) -> None:
    task = asyncio.create_task(session.call("Reset", RESET))
    frame = await wire.next_frame()
    session.deliver(CallError(frame[1], "NotSupported", "no reset here", {"hint": 1}))
    with pytest.raises(CallErrorReceived) as caught:
        await task
    error = caught.value
    assert (error.code, error.description, error.details) == (
        "NotSupported",
        "no reset here",
        {"hint": 1},
    )


async def test_answer_that_fails_its_schema_is_invalid_response(
    wire: Wire, session: CallSession
) -> None:
    task = asyncio.create_task(session.call("Reset", RESET))
    frame = await wire.next_frame()
    session.deliver(CallResult(frame[1], {"status": "Maybe"}))
    with pytest.raises(InvalidResponse) as caught:
        await task
    assert caught.value.error.kind is ErrorKind.PROPERTY_CONSTRAINT


async def test_invalid_outgoing_payload_is_refused_before_anything_is_sent(
    wire: Wire, session: CallSession
) -> None:
    with pytest.raises(RpcError) as caught:
        await session.call("Reset", {"type": "Now"})
    assert caught.value.kind is ErrorKind.PROPERTY_CONSTRAINT
    with pytest.raises(RpcError) as unknown:
        await session.call("SetVariables", {})
    assert unknown.value.kind is ErrorKind.NOT_IMPLEMENTED
    assert wire.sent == []


async def test_close_fails_the_pending_call_and_every_later_one(
    wire: Wire, session: CallSession
) -> None:
    pending = asyncio.create_task(session.call("Reset", RESET))
    queued = asyncio.create_task(session.call("ClearCache", {}))
    await wire.next_frame()
    session.close()
    with pytest.raises(ConnectionGone):
        await pending
    with pytest.raises(ConnectionGone):
        await queued
    with pytest.raises(ConnectionGone):
        await session.call("ClearCache", {})
    assert len(wire.sent) == 1


async def test_send_failure_is_connection_gone() -> None:
    async def broken(text: str) -> None:
        raise OSError("socket closed")

    session = CallSession(V16, broken)
    with pytest.raises(ConnectionGone):
        await session.call("ClearCache", {})


async def test_unparsable_answer_fails_the_call_at_once(
    wire: Wire, session: CallSession
) -> None:
    task = asyncio.create_task(session.call("Reset", RESET, timeout=30))
    frame = await wire.next_frame()
    assert session.deliver_invalid(frame[1], RpcError(ErrorKind.FORMAT, "payload is not an object"))
    with pytest.raises(InvalidResponse):
        await asyncio.wait_for(task, 1)
