"""SEC-05: message traces show every frame but never a credential."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from chargewarden.rpc.endpoint import RpcEndpoint
from chargewarden.rpc.versions import OcppVersion

KEY = "0A1B2C3D4E5F60718293A4B5C6D7E8F901234567"
PASSWORD = "Station-Pass:word-42"


async def test_sec_05_trace_redacts_keys_and_passwords_both_ways(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="chargewarden.rpc.trace")
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    async def change_configuration(payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "Accepted"}

    station_side = RpcEndpoint(
        OcppVersion.V16, {"ChangeConfiguration": change_configuration}, send, trace_name="CP-T"
    )
    frame = [2, "c1", "ChangeConfiguration", {"key": "AuthorizationKey", "value": KEY}]
    await station_side.receive(json.dumps(frame))
    csms_side = RpcEndpoint(OcppVersion.V201, {}, send, trace_name="CS-T", call_timeout=0.05)
    variables = {
        "setVariableData": [
            {
                "attributeValue": PASSWORD,
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }
        ]
    }
    with pytest.raises(Exception):  # noqa: B017 - nobody answers; only the trace matters
        await csms_side.call("SetVariables", variables)

    assert "CP-T < CALL ChangeConfiguration c1" in caplog.text
    assert "CP-T > CALLRESULT c1" in caplog.text
    assert "CS-T > CALL SetVariables" in caplog.text
    assert KEY not in caplog.text and PASSWORD not in caplog.text
    assert caplog.text.count("***") == 2


async def test_trace_is_silent_unless_enabled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def send(text: str) -> None:
        return None

    endpoint = RpcEndpoint(OcppVersion.V16, {}, send)
    await endpoint.receive(json.dumps([2, "x", "Heartbeat", {}]))
    assert "chargewarden.rpc.trace" not in caplog.text
