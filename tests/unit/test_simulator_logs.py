"""The simulated station's log upload, sans I/O, both versions (SIM-06, LOG-01; whitepaper N01,
2.0.1 TC_N_25/26/34/35/36, TC_F_15/16; 1.6 TC_079)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from test_simulator_core import (
    ACCEPTED_BOOT,
    KEY,
    NOW,
    PASSWORD,
    V16,
    V201,
    Clock,
    assert_valid_requests,
    config,
    handle,
)

from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.core import StationCore
from chargewarden.simulator.logs import log_filename, security_log_text
from chargewarden.simulator.tasks import LogUpload, TransferError

LOCATION = "https://localhost:9444/files/logs/t0k3n-secret"
Messages = list[tuple[str, dict[str, Any]]]


def booted(version: OcppVersion, **overrides: Any) -> tuple[StationCore, Clock]:
    clock = Clock()
    core = StationCore(config(version, **overrides), clock)
    core.on_connected(NOW)
    core.on_boot_response(ACCEPTED_BOOT, NOW)  # StartupOfTheDevice enters the security log
    core.take_outgoing()
    return core, clock


def get_log(log_type: str = "SecurityLog", request_id: int = 5, **log: Any) -> dict[str, Any]:
    retries = log.pop("retries", None)
    interval = log.pop("retryInterval", None)
    payload: dict[str, Any] = {
        "logType": log_type,
        "requestId": request_id,
        "log": {"remoteLocation": LOCATION, **log},
    }
    if retries is not None:
        payload.update(retries=retries, retryInterval=interval)
    return payload


def log_statuses(core: StationCore) -> list[tuple[str, int | None]]:
    messages = core.take_outgoing()
    assert_valid_requests(core, messages)
    return [(p["status"], p.get("requestId")) for a, p in messages if a == "LogStatusNotification"]


def uploads(core: StationCore) -> list[LogUpload]:
    tasks = core.take_tasks()
    assert all(isinstance(t, LogUpload) for t in tasks)
    return tasks  # type: ignore[return-value]


@pytest.mark.parametrize("version", [V16, V201])
async def test_SIM_06_TC_N_35_TC_079_security_log_is_uploaded(version: OcppVersion) -> None:
    core, _ = booted(version)
    core.log_security_event("SettingSystemTime", NOW, "clock\nset by\tCSMS")
    answer = await handle(core, "GetLog", get_log())
    assert answer["status"] == "Accepted"
    assert answer["filename"] == "AL1000-security-20250301T120000Z.log"
    assert log_statuses(core) == [("Uploading", 5)]
    [task] = uploads(core)
    assert (task.request_id, task.url, task.filename) == (5, LOCATION, answer["filename"])
    assert "t0k3n" not in repr(task)
    assert task.content.decode() == (
        "2025-03-01T12:00:00.000Z StartupOfTheDevice\n"
        "2025-03-01T12:00:00.000Z SettingSystemTime clock set by CSMS\n"  # one line per entry
    )
    core.on_upload_result(task, None)
    assert log_statuses(core) == [("Uploaded", 5)]
    assert not core.logs.uploading


async def test_security_log_is_filtered_by_oldest_and_latest_timestamp() -> None:
    core, _ = booted(V201)
    for minutes, kind in ((10, "InvalidMessages"), (20, "AttemptedReplayAttacks"), (30, "X")):
        core.log_security_event(kind, NOW + timedelta(minutes=minutes), f"at {minutes}")
    window = get_log(
        oldestTimestamp=(NOW + timedelta(minutes=10)).isoformat(),
        latestTimestamp=(NOW + timedelta(minutes=20)).isoformat().replace("+00:00", "Z"),
    )
    await handle(core, "GetLog", window)
    [task] = uploads(core)
    assert task.content.decode().splitlines() == [
        "2025-03-01T12:10:00.000Z InvalidMessages at 10",
        "2025-03-01T12:20:00.000Z AttemptedReplayAttacks at 20",
    ]


def test_security_log_never_holds_the_station_secrets() -> None:
    core, _ = booted(V16)
    text = security_log_text(core.security_log)
    for secret in (KEY.hex(), KEY.hex().upper(), PASSWORD):
        assert secret not in text


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_N_25_diagnostics_log_reports_the_station(version: OcppVersion) -> None:
    core, _ = booted(version, firmware_version="3.2.1")
    core.request_reconnect("Reset Soft")
    answer = await handle(core, "GetLog", get_log("DiagnosticsLog"))
    assert answer == {"status": "Accepted", "filename": "AL1000-diagnostics-20250301T120000Z.log"}
    [task] = uploads(core)
    text = task.content.decode()
    for fact in ("identity: AL1000", "firmware version: 3.2.1", "security profile: 1"):
        assert fact in text
    assert "connections admitted: 1" in text and "reconnect: Reset Soft" in text
    for secret in (KEY.hex().upper(), PASSWORD, "t0k3n"):
        assert secret not in text


async def test_TC_N_34_nothing_to_upload_is_rejected() -> None:
    core = StationCore(config(V201), Clock())  # never booted: its security log is empty
    assert await handle(core, "GetLog", get_log()) == {"status": "Rejected"}
    assert core.take_tasks() == []


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize(
    ("http_status", "status"), [(403, "PermissionDenied"), (500, "UploadFailure")]
)
async def test_TC_N_26_failed_upload_is_retried_then_given_up(
    version: OcppVersion, http_status: int, status: str
) -> None:
    core, clock = booted(version)
    await handle(core, "GetLog", get_log("DiagnosticsLog", retries=1, retryInterval=20))
    assert log_statuses(core) == [("Uploading", 5)]
    [task] = uploads(core)
    core.on_upload_result(task, TransferError(f"HTTP {http_status}", http_status))
    assert log_statuses(core) == [(status, 5)]
    assert core.next_deadline() == NOW + timedelta(seconds=20)
    clock.now += timedelta(seconds=20)
    core.poll(clock.now)
    assert log_statuses(core) == [("Uploading", 5)]
    [retry] = uploads(core)
    core.on_upload_result(retry, TransferError("ConnectError: refused"))
    assert log_statuses(core) == [("UploadFailure", 5)]
    assert not core.logs.uploading and core.next_deadline() is None
    assert "refused" in core.diagnostics.recent[-1][1]


async def test_unsupported_transfer_protocol_is_reported_as_such() -> None:
    core, _ = booted(V16)
    await handle(core, "GetLog", get_log(remoteLocation="ftp://user:pw@host/logs"))
    assert core.take_tasks() == []
    assert log_statuses(core) == [("Uploading", 5), ("NotSupportedOperation", 5)]


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_N_36_N01_FR_11_second_request_cancels_the_upload(version: OcppVersion) -> None:
    core, _ = booted(version)
    await handle(core, "GetLog", get_log(request_id=1))
    [first] = uploads(core)
    answer = await handle(core, "GetLog", get_log(request_id=2))
    assert answer["status"] == "AcceptedCanceled"
    assert core.take_cancelled() == [first.task_id]
    expected = [("Uploading", 1)]
    if version is V201:
        expected.append(("AcceptedCanceled", 1))  # 1.6 has no such UploadLogStatus
    assert log_statuses(core) == [*expected, ("Uploading", 2)]
    [second] = uploads(core)
    core.on_upload_result(first, None)  # the cancelled one's late answer: ignored
    core.on_upload_result(second, None)
    assert log_statuses(core) == [("Uploaded", 2)]


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_F_15_16_triggered_log_status(version: OcppVersion) -> None:
    core, _ = booted(version)
    action = "ExtendedTriggerMessage" if version is V16 else "TriggerMessage"
    trigger = {"requestedMessage": "LogStatusNotification"}
    assert await handle(core, action, trigger) == {"status": "Accepted"}
    assert log_statuses(core) == [("Idle", None)]
    await handle(core, "GetLog", get_log())
    log_statuses(core)
    assert await handle(core, action, trigger) == {"status": "Accepted"}
    assert log_statuses(core) == [("Uploading", 5)]


def test_filename_is_safe_and_bounded() -> None:
    assert log_filename("a/b c:d", "SecurityLog", NOW) == "a_b_c_d-security-20250301T120000Z.log"
    assert len(log_filename("x" * 300, "DiagnosticsLog", NOW)) == 255
