"""Station calls over real sockets: answers, every CALLERROR code of both versions, limits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import Register
from websockets.exceptions import ConnectionClosed
from wsclient import BOOT_16, BOOT_201, basic, call, open_station

from chargewarden.app import RunningCsms
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.events import CsmsEvent
from chargewarden.store.records import EventSource, RegistrationStatus

V16, V201 = OcppVersion.V16, OcppVersion.V201
PASSWORD_201 = "Correct-Horse-Battery-42"


async def credentials(
    register: Register, version: OcppVersion, identity: str
) -> tuple[str, tuple[str, ...]]:
    """Register the station; return its Authorization header and subprotocols."""
    if version is V16:
        key = await register(identity)
        return basic(identity, bytes.fromhex(key)), ("ocpp1.6",)
    await register(identity, V201, password=PASSWORD_201)
    return basic(identity, PASSWORD_201.encode()), ("ocpp2.0.1",)


async def connect(
    csms: RunningCsms, register: Register, version: OcppVersion, identity: str
) -> Any:
    header, subprotocols = await credentials(register, version, identity)
    return open_station(csms, identity, header, subprotocols)


async def raw(ws: Any, text: str) -> list[Any]:
    await ws.send(text)
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


# (version, frame sent, expected unique id, expected error code)
MALFORMED = [
    (V16, "this is not json", "-1", "FormationViolation"),
    (V201, "this is not json", "-1", "RpcFrameworkError"),
    (V16, '{"not": "an array"}', "-1", "FormationViolation"),
    (V201, '{"not": "an array"}', "-1", "RpcFrameworkError"),
    (V201, '[2, 12345, "Heartbeat", {}]', "-1", "RpcFrameworkError"),
    (V201, '[2, "' + "x" * 37 + '", "Heartbeat", {}]', "-1", "RpcFrameworkError"),
    (V201, '[7, "m1", "Heartbeat", {}]', "m1", "MessageTypeNotSupported"),
    (V16, '[2, "m2", "NoSuchAction", {}]', "m2", "NotImplemented"),
    (V201, '[2, "m2", "NoSuchAction", {}]', "m2", "NotImplemented"),
    # Known actions the CSMS does not serve yet: recognised, not supported.
    (V16, '[2, "m3", "Authorize", {"idTag": "ABC"}]', "m3", "NotSupported"),
    (
        V201,
        '[2, "m3", "Authorize", {"idToken": {"idToken": "A", "type": "ISO14443"}}]',
        "m3",
        "NotSupported",
    ),
    (
        V16,
        '[2, "m4", "BootNotification", {"chargePointModel": "M"}]',
        "m4",
        "OccurenceConstraintViolation",
    ),
    (
        V201,
        '[2, "m4", "BootNotification", {"reason": "PowerUp"}]',
        "m4",
        "OccurrenceConstraintViolation",
    ),
    (
        V16,
        '[2, "m5", "StatusNotification", '
        '{"connectorId": "one", "errorCode": "NoError", "status": "Available"}]',
        "m5",
        "TypeConstraintViolation",
    ),
    (V201, '[2, "m5", "Heartbeat", {"extra": 1}]', "m5", "FormatViolation"),
    (V16, '[2, "m6", "Heartbeat", {"extra": 1}]', "m6", "FormationViolation"),
    (
        V16,
        '[2, "m7", "StatusNotification", '
        '{"connectorId": 1, "errorCode": "NoError", "status": "Flying"}]',
        "m7",
        "PropertyConstraintViolation",
    ),
    (
        V201,
        '[2, "m7", "SecurityEventNotification", {"type": "'
        + "T" * 51
        + '", "timestamp": "2026-11-22T10:00:00Z"}]',
        "m7",
        "PropertyConstraintViolation",
    ),
]


@pytest.mark.parametrize(("version", "frame", "uid", "code"), MALFORMED)
async def test_rpc_03_04_05_callerror_codes_per_version(
    csms: RunningCsms, register: Register, version: OcppVersion, frame: str, uid: str, code: str
) -> None:
    async with await connect(csms, register, version, "CP-ERR") as ws:
        reply = await raw(ws, frame)
        assert reply[:3] == [4, uid, code]
        assert len(reply[3]) <= 255
        # The connection survives: the next well-formed call is answered.
        follow = await call(ws, "Heartbeat", {}, uid="after")
        assert follow[:2] == [3, "after"]
    events = await csms.store.events.list(station="CP-ERR", source=EventSource.CSMS)
    if code not in ("NotImplemented", "NotSupported"):
        assert [e.type for e in events] == [CsmsEvent.INVALID_MESSAGES]


async def test_rpc_04_error_details_never_echo_the_value(
    csms: RunningCsms, register: Register
) -> None:
    secret_looking = "hunter2-" + "s" * 300  # over vendorId's maxLength of 255
    async with await connect(csms, register, V16, "CP-ECHO") as ws:
        reply = await raw(ws, json.dumps([2, "e1", "DataTransfer", {"vendorId": secret_looking}]))
    assert reply[2] == "PropertyConstraintViolation"
    assert "hunter2" not in json.dumps(reply)


@pytest.mark.parametrize("version", [V16, V201])
async def test_station_calls_answered_and_stored(
    csms: RunningCsms, register: Register, version: OcppVersion
) -> None:
    async with await connect(csms, register, version, "CP-OK") as ws:
        boot = await call(ws, "BootNotification", BOOT_16 if version is V16 else BOOT_201)
        assert boot[2]["status"] == "Accepted" and boot[2]["interval"] == 300
        event = {
            "type": "TamperDetectionActivated",
            "timestamp": "2026-11-22T10:00:00Z",
            "techInfo": "lid open",
        }
        assert (await call(ws, "SecurityEventNotification", event, "2"))[:3] == [3, "2", {}]
        unknown = {"type": "VendorSpecificThing", "timestamp": "2026-11-22T10:00:01Z"}
        assert (await call(ws, "SecurityEventNotification", unknown, "3"))[0] == 3
        transfer = await call(ws, "DataTransfer", {"vendorId": "com.example"}, "4")
        assert transfer[2] == {"status": "UnknownVendorId"}
        status = (
            {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
            if version is V16
            else {
                "timestamp": "2026-11-22T10:00:00Z",
                "connectorStatus": "Available",
                "evseId": 1,
                "connectorId": 1,
            }
        )
        assert (await call(ws, "StatusNotification", status, "5"))[0] == 3
    events = await csms.store.events.list(station="CP-OK", source=EventSource.STATION)
    by_type = {e.type: e for e in events}
    assert by_type["TamperDetectionActivated"].critical  # EVT-02: critical in both versions
    assert by_type["TamperDetectionActivated"].tech_info == "lid open"
    assert not by_type["VendorSpecificThing"].critical  # EVT-01: stored although unknown
    station = await csms.store.stations.get("CP-OK")
    assert station is not None and station.last_boot_status is RegistrationStatus.ACCEPTED
    assert station.vendor == "TestVendor"
    connectors = await csms.store.connectors.list("CP-OK")
    assert [c.status for c in connectors] == ["Available"]


@pytest.mark.parametrize("version", [V16, V201])
async def test_rpc_08_after_rejected_boot_other_calls_get_security_error(
    csms: RunningCsms, register: Register, version: OcppVersion
) -> None:
    header, subprotocols = await credentials(register, version, "CP-REJ")
    await csms.store.stations.update("CP-REJ", registration_status=RegistrationStatus.REJECTED)
    async with open_station(csms, "CP-REJ", header, subprotocols) as ws:
        boot = await call(ws, "BootNotification", BOOT_16 if version is V16 else BOOT_201)
        assert boot[2]["status"] == "Rejected"
        beat = await call(ws, "Heartbeat", {}, "2")
        assert beat[:3] == [4, "2", "SecurityError"]
    # The verdict survives a reconnect: a fresh connection without a boot is still refused service.
    async with open_station(csms, "CP-REJ", header, subprotocols) as ws:
        assert (await call(ws, "Heartbeat", {}, "3"))[2] == "SecurityError"


async def test_pwd_03_station_flagged_for_credential_update_boots_pending(
    csms: RunningCsms, register: Register
) -> None:
    opener = await connect(csms, register, V201, "CP-PEND")
    await csms.store.stations.update("CP-PEND", needs_credential_update=True)
    async with opener as ws:
        boot = await call(ws, "BootNotification", BOOT_201)
        assert boot[2]["status"] == "Pending"


async def test_reconnecting_station_need_not_boot_again(
    csms: RunningCsms, register: Register
) -> None:
    opener = await connect(csms, register, V201, "CP-RECON")
    async with opener as ws:
        await call(ws, "BootNotification", BOOT_201)
    header = basic("CP-RECON", PASSWORD_201.encode())
    async with open_station(csms, "CP-RECON", header, ("ocpp2.0.1",)) as ws:
        assert (await call(ws, "Heartbeat", {}))[0] == 3


async def test_oversized_frame_closes_1009_with_event(
    csms: RunningCsms, register: Register
) -> None:
    async with await connect(csms, register, V16, "CP-BIG") as ws:
        big = json.dumps([2, "big", "DataTransfer", {"vendorId": "v", "data": "x" * 70000}])
        await ws.send(big)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    for _ in range(50):
        events = await csms.store.events.list(station="CP-BIG")
        if events:
            break
        await asyncio.sleep(0.02)
    assert [e.type for e in events] == [CsmsEvent.OVERSIZED_MESSAGE]
