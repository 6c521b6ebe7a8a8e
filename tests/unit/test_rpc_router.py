"""Router: what a station gets back for each outcome of a CALL."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from chargewarden.rpc.errors import ErrorKind, RpcError
from chargewarden.rpc.frames import Call
from chargewarden.rpc.router import Handler, Router
from chargewarden.rpc.versions import OcppVersion

V16, V201 = OcppVersion.V16, OcppVersion.V201
NOW = "2024-05-01T12:00:00Z"
BOOT_16 = {"chargePointVendor": "VendorX", "chargePointModel": "Model"}


async def heartbeat(payload: dict[str, Any]) -> dict[str, Any]:
    return {"currentTime": NOW}


async def boot(payload: dict[str, Any]) -> dict[str, Any]:
    return {"status": "Accepted", "currentTime": NOW, "interval": 300}


async def dispatch(router: Router, action: str, payload: dict[str, Any]) -> list[Any]:
    reply: list[Any] = json.loads(await router.dispatch(Call("m-1", action, payload)))
    return reply


def router16(**handlers: Handler) -> Router:
    return Router(V16, {"Heartbeat": heartbeat, "BootNotification": boot, **handlers})


async def test_handler_result_becomes_callresult() -> None:
    assert await dispatch(router16(), "BootNotification", BOOT_16) == [
        3,
        "m-1",
        {"status": "Accepted", "currentTime": NOW, "interval": 300},
    ]


@pytest.mark.parametrize("version", [V16, V201])
async def test_rpc_05_unknown_action_is_not_implemented_known_unhandled_is_not_supported(
    version: OcppVersion,
) -> None:
    router = Router(version, {})
    assert (await dispatch(router, "FlyToTheMoon", {}))[2] == "NotImplemented"
    assert (await dispatch(router, "DataTransfer", {"vendorId": "x"}))[2] == "NotSupported"


def test_handler_for_an_action_the_version_lacks_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="SetVariables"):
        Router(V16, {"SetVariables": heartbeat})


@pytest.mark.parametrize(
    ("version", "code"),
    [(V16, "OccurenceConstraintViolation"), (V201, "OccurrenceConstraintViolation")],
)
async def test_rpc_04_request_violation_uses_the_version_code(
    version: OcppVersion, code: str
) -> None:
    router = Router(version, {"BootNotification": boot})
    reply = await dispatch(router, "BootNotification", {})
    assert reply[:3] == [4, "m-1", code]


async def test_rpc_08_gate_refusal_wins_over_everything_else() -> None:
    calls: list[str] = []

    def gate(action: str) -> RpcError | None:
        calls.append(action)
        if action == "BootNotification":
            return None
        return RpcError(ErrorKind.SECURITY, "boot notification was rejected")

    router = Router(V16, {"Heartbeat": heartbeat, "BootNotification": boot}, gate=gate)
    assert (await dispatch(router, "Heartbeat", {}))[2:4] == [
        "SecurityError",
        "boot notification was rejected",
    ]
    # Invalid payload and unknown action: still SecurityError, the station learns nothing.
    assert (await dispatch(router, "Heartbeat", {"x": 1}))[2] == "SecurityError"
    assert (await dispatch(router, "FlyToTheMoon", {}))[2] == "SecurityError"
    assert (await dispatch(router, "BootNotification", BOOT_16))[0] == 3
    assert calls == ["Heartbeat", "Heartbeat", "FlyToTheMoon", "BootNotification"]


async def test_handler_rpc_error_is_sent_as_is() -> None:
    async def refuse(payload: dict[str, Any]) -> dict[str, Any]:
        raise RpcError(ErrorKind.GENERIC, "try later", {"retryAfter": 30})

    reply = await dispatch(router16(Heartbeat=refuse), "Heartbeat", {})
    assert reply == [4, "m-1", "GenericError", "try later", {"retryAfter": 30}]


async def test_handler_crash_is_internal_error_without_traceback_or_payload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def crash(payload: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("database exploded at /srv/secret/path")

    caplog.set_level(logging.ERROR)
    text = await router16(BootNotification=crash).dispatch(
        Call("m-1", "BootNotification", {**BOOT_16, "chargePointModel": "PAYLOAD-MARK"})
    )
    assert json.loads(text) == [4, "m-1", "InternalError", "internal error", {}]
    assert "Traceback" not in text and "exploded" not in text
    # Logged for us, with the traceback, but without the payload.
    assert "exploded" in caplog.text
    assert "PAYLOAD-MARK" not in caplog.text


async def test_response_failing_its_schema_is_our_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def bad_boot(payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "Maybe", "currentTime": NOW, "interval": 300}

    caplog.set_level(logging.ERROR)
    reply = await dispatch(router16(BootNotification=bad_boot), "BootNotification", BOOT_16)
    assert reply[2:4] == ["InternalError", "internal error"]
    assert "data.status: violates enum" in caplog.text


async def test_response_validation_can_be_turned_off() -> None:
    async def bad_boot(payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "Maybe"}

    router = Router(V16, {"BootNotification": bad_boot}, validate_responses=False)
    assert (await dispatch(router, "BootNotification", BOOT_16))[0] == 3


@pytest.mark.parametrize(
    "answer", [None, ["not", "a", "dict"], {"currentTime": float("nan")}, {"x": object()}]
)
async def test_unencodable_or_non_dict_answers_are_internal_error(answer: Any) -> None:
    async def weird(payload: dict[str, Any]) -> Any:
        return answer

    router = Router(V16, {"Heartbeat": weird}, validate_responses=False)
    assert (await dispatch(router, "Heartbeat", {}))[2] == "InternalError"


async def test_long_handler_description_is_cut_to_255() -> None:
    async def verbose(payload: dict[str, Any]) -> dict[str, Any]:
        raise RpcError(ErrorKind.GENERIC, "x" * 1000)

    reply = await dispatch(router16(Heartbeat=verbose), "Heartbeat", {})
    assert len(reply[3]) == 255


async def test_handler_gets_the_validated_payload() -> None:
    seen: list[dict[str, Any]] = []

    async def record(payload: dict[str, Any]) -> dict[str, Any]:
        seen.append(payload)
        return {"status": "Accepted", "currentTime": NOW, "interval": 300}

    await dispatch(router16(BootNotification=record), "BootNotification", BOOT_16)
    assert seen == [BOOT_16]


# ---- the call observer (metrics) -------------------------------------------------------------


async def test_observer_hears_each_call_with_its_outcome_and_a_bounded_action() -> None:
    heard: list[tuple[str, str]] = []
    seconds: list[float] = []

    def observe(action: str, outcome: str, elapsed: float) -> None:
        heard.append((action, outcome))
        seconds.append(elapsed)

    async def broken(payload: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("bug")

    router = Router(
        V201, {"Heartbeat": heartbeat, "BootNotification": broken}, on_call_handled=observe
    )
    await dispatch(router, "Heartbeat", {})
    await dispatch(router, "Heartbeat", {"unexpected": 1})
    await dispatch(router, "BootNotification", {"reason": "PowerUp", "chargingStation": {
        "model": "M", "vendorName": "V"}})
    await dispatch(router, "DataTransfer", {"vendorId": "v"})
    await dispatch(router, "Attacker-Chosen-Name-1234", {})
    assert heard == [
        ("Heartbeat", "ok"),
        ("Heartbeat", "FormatViolation"),
        ("BootNotification", "InternalError"),
        ("DataTransfer", "NotSupported"),
        # A name the version does not define is never passed on: label sets stay bounded.
        ("unknown", "NotImplemented"),
    ]
    assert all(s >= 0 for s in seconds)


async def test_a_failing_observer_does_not_cost_the_station_its_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def observe(action: str, outcome: str, elapsed: float) -> None:
        raise RuntimeError("metrics backend down")

    router = Router(V16, {"Heartbeat": heartbeat}, on_call_handled=observe)
    with caplog.at_level(logging.ERROR):
        assert await dispatch(router, "Heartbeat", {}) == [3, "m-1", {"currentTime": NOW}]
    assert "observer failed" in caplog.text
