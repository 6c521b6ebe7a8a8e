"""RpcEndpoint: what a station sees on the wire for each kind of message it sends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from chargewarden.rpc.endpoint import RpcEndpoint
from chargewarden.rpc.errors import ErrorKind, RpcError
from chargewarden.rpc.router import Handler
from chargewarden.rpc.session import InvalidResponse
from chargewarden.rpc.versions import OcppVersion

V16, V201 = OcppVersion.V16, OcppVersion.V201
NOW = "2024-05-01T12:00:00Z"
SECRET = "S3cr3t-V4lue-N0t-F0r-The-Wire"


def answer(payload: dict[str, Any]) -> Handler:
    async def handler(_: dict[str, Any]) -> dict[str, Any]:
        return payload

    return handler


HANDLERS: dict[OcppVersion, dict[str, Handler]] = {
    V16: {
        "Heartbeat": answer({"currentTime": NOW}),
        "BootNotification": answer({"status": "Accepted", "currentTime": NOW, "interval": 300}),
        "StatusNotification": answer({}),
        "Authorize": answer({"idTagInfo": {"status": "Accepted"}}),
        "SecurityEventNotification": answer({}),
    },
    V201: {
        "Heartbeat": answer({"currentTime": NOW}),
        "BootNotification": answer({"status": "Accepted", "currentTime": NOW, "interval": 300}),
        "Authorize": answer({"idTokenInfo": {"status": "Accepted"}}),
    },
}


class Station:
    """A connected station: an endpoint plus everything the CSMS sent back."""

    def __init__(
        self, version: OcppVersion, handlers: dict[str, Handler] | None = None, **kwargs: Any
    ) -> None:
        self.sent: list[list[Any]] = []
        self.errors: list[RpcError] = []
        kwargs.setdefault("on_rpc_error", self.errors.append)
        chosen = HANDLERS[version] if handlers is None else handlers
        self.endpoint = RpcEndpoint(version, chosen, self._send, **kwargs)

    async def _send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def exchange(self, data: str | bytes) -> list[Any]:
        before = len(self.sent)
        await self.endpoint.receive(data)
        assert len(self.sent) == before + 1, "expected exactly one answer"
        return self.sent[-1]


LONG_ID = "x" * 37
CASES: list[tuple[str, str, str, str, str]] = [
    # (case, frame, expected id, 1.6 code, 2.0.1 code)
    ("malformed-json", '[2,"a","Heartbeat",{', "-1", "FormationViolation", "RpcFrameworkError"),
    ("not-an-array", '{"id": "a"}', "-1", "FormationViolation", "RpcFrameworkError"),
    ("numeric-id", '[2,17,"Heartbeat",{}]', "-1", "FormationViolation", "RpcFrameworkError"),
    ("id-too-long", f'[2,"{LONG_ID}","Heartbeat",{{}}]', "-1", "FormationViolation",
     "RpcFrameworkError"),
    ("missing-payload", '[2,"a","Heartbeat"]', "a", "FormationViolation", "RpcFrameworkError"),
    ("unknown-type", '[6,"a","Heartbeat",{}]', "a", "ProtocolError", "MessageTypeNotSupported"),
    ("payload-array", '[2,"a","Heartbeat",[]]', "a", "FormationViolation", "FormatViolation"),
    ("unknown-action", '[2,"a","FlyToTheMoon",{}]', "a", "NotImplemented", "NotImplemented"),
    ("unhandled-action", '[2,"a","DataTransfer",{"vendorId":"v"}]', "a", "NotSupported",
     "NotSupported"),
    ("additional-property", '[2,"a","Heartbeat",{"colour":"red"}]', "a", "FormationViolation",
     "FormatViolation"),
]


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize(
    ("frame", "unique_id", "code16", "code201"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_rpc_03_rpc_05_every_frame_error_gets_the_version_code_and_connection_survives(
    version: OcppVersion, frame: str, unique_id: str, code16: str, code201: str
) -> None:
    station = Station(version)
    reply = await station.exchange(frame)
    assert reply[:3] == [4, unique_id, code16 if version is V16 else code201]
    assert isinstance(reply[3], str) and len(reply[3]) <= 255
    assert reply[4] == {} or set(reply[4]) == {"path", "rule"}
    # The connection stays usable.
    assert await station.exchange('[2,"next","Heartbeat",{}]') == [3, "next", {"currentTime": NOW}]


SCHEMA_CASES: list[tuple[OcppVersion, str, dict[str, Any], str]] = [
    (V16, "BootNotification", {"chargePointModel": "M"}, "OccurenceConstraintViolation"),
    (V16, "BootNotification", {"chargePointVendor": 1, "chargePointModel": "M"},
     "TypeConstraintViolation"),
    (V16, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Flying"},
     "PropertyConstraintViolation"),
    (V16, "Authorize", {"idTag": SECRET}, "PropertyConstraintViolation"),
    (V16, "SecurityEventNotification", {"type": "t", "timestamp": "soon"},
     "PropertyConstraintViolation"),
    (V201, "BootNotification", {"chargingStation": {"model": "M", "vendorName": "V"}},
     "OccurrenceConstraintViolation"),
    (V201, "BootNotification", {"reason": "PowerUp", "chargingStation": {"model": 1,
     "vendorName": "V"}}, "TypeConstraintViolation"),
    (V201, "BootNotification", {"reason": "Bored", "chargingStation": {"model": "M",
     "vendorName": "V"}}, "PropertyConstraintViolation"),
    (V201, "Authorize", {"idToken": {"idToken": SECRET * 2, "type": "Central"}},
     "PropertyConstraintViolation"),
]


@pytest.mark.parametrize(
    ("version", "action", "payload", "code"),
    SCHEMA_CASES,
    ids=[f"{v}-{a}-{c}" for v, a, _, c in SCHEMA_CASES],
)
async def test_rpc_04_schema_violation_gets_the_version_code_without_the_value(
    version: OcppVersion, action: str, payload: dict[str, Any], code: str
) -> None:
    station = Station(version)
    text = json.dumps([2, "m", action, payload])
    reply = await station.exchange(text)
    assert reply[:3] == [4, "m", code]
    assert SECRET not in json.dumps(reply)
    # Answered with the CALLERROR and also reported: an InvalidMessages security event upstream.
    assert len(station.errors) == 1 and station.errors[0].kind.name.endswith(
        ("CONSTRAINT", "FORMAT")
    )


async def test_frame_errors_are_reported_for_security_events() -> None:
    station = Station(V201)
    await station.endpoint.receive("garbage")
    assert [error.kind for error in station.errors] == [ErrorKind.RPC_FRAMEWORK]


async def test_failing_report_callback_does_not_break_the_connection() -> None:
    def broken(error: RpcError) -> None:
        raise RuntimeError("store down")

    station = Station(V16, on_rpc_error=broken)
    assert (await station.exchange("garbage"))[2] == "FormationViolation"


async def test_observer_counts_calls_and_answered_frame_errors_but_not_answers() -> None:
    heard: list[tuple[str, str]] = []
    station = Station(V16, on_call_handled=lambda a, o, _s: heard.append((a, o)))
    await station.exchange('[2,"a","Heartbeat",{}]')
    await station.exchange("garbage")
    task = asyncio.create_task(station.endpoint.call("Reset", {"type": "Hard"}))
    await asyncio.sleep(0)
    await station.endpoint.receive(json.dumps([3, station.sent[-1][1], {"status": "Accepted"}]))
    await task
    # The station's answer to our CALL is not a station call.
    assert heard == [("Heartbeat", "ok"), ("unknown", "FormationViolation")]


async def test_rpc_08_gate_answers_security_error() -> None:
    def rejected(action: str) -> RpcError | None:
        if action == "BootNotification":
            return None
        return RpcError(ErrorKind.SECURITY, "not accepted")

    station = Station(V201, gate=rejected)
    assert (await station.exchange('[2,"a","Heartbeat",{}]'))[2] == "SecurityError"


async def test_station_answers_reach_the_pending_call() -> None:
    station = Station(V16)
    task = asyncio.create_task(station.endpoint.call("Reset", {"type": "Hard"}))
    await asyncio.sleep(0)
    call_id = station.sent[-1][1]
    await station.endpoint.receive(json.dumps([3, call_id, {"status": "Accepted"}]))
    assert await task == {"status": "Accepted"}


async def test_broken_answer_is_not_answered_and_fails_the_pending_call() -> None:
    station = Station(V16)
    task = asyncio.create_task(station.endpoint.call("Reset", {"type": "Hard"}))
    await asyncio.sleep(0)
    call_id = station.sent[-1][1]
    await station.endpoint.receive(json.dumps([3, call_id, "not an object"]))
    with pytest.raises(InvalidResponse):
        await asyncio.wait_for(task, 1)
    assert len(station.sent) == 1, "a CALLERROR must not answer a CALLRESULT"
    assert [error.kind for error in station.errors] == [ErrorKind.FORMAT]


async def test_calling_the_station_from_inside_a_handler_fails_fast() -> None:
    outcome: list[str] = []

    async def boot(payload: dict[str, Any]) -> dict[str, Any]:
        try:
            await station.endpoint.call("ClearCache", {})
        except RuntimeError:
            outcome.append("refused")
        # The supported way: a task, which can only proceed after this handler returns.
        asyncio.create_task(station.endpoint.call("ClearCache", {}))
        return {"status": "Accepted", "currentTime": NOW, "interval": 300}

    station = Station(V16, {"BootNotification": boot}, call_timeout=5)
    await asyncio.wait_for(
        station.endpoint.receive(
            '[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
        ),
        1,
    )
    assert outcome == ["refused"]
    assert station.sent[0][:2] == [3, "b"]
    await asyncio.sleep(0)
    assert station.sent[-1][2] == "ClearCache"
    station.endpoint.close()
