"""Security-profile upgrades as durable jobs (UPG-01, UPG-02, SEC-11; TC_A_19, TC_083).

A raw station checks every message of the upgrade for both versions; the simulator runs the
whole walk 1→2→3 over real TLS. After each upgrade a connection on the old profile is refused.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import old_secret, wait_job
from rawstation import (
    BOOT,
    SUBPROTOCOL,
    V16,
    V201,
    RawStation,
    boot,
    connect,
    register_test_station,
)
from tlskit import tls_settings
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus
from wsclient import basic

from chargewarden.app import RunningCsms, start_csms
from chargewarden.pki.material import csms_root_pem
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.events import CsmsEvent
from chargewarden.store.job_records import JobState

ROOT_TYPE = {V16: "CentralSystemRootCertificate", V201: "CSMSRootCertificate"}
FAST_JOBS = {"poll_seconds": 0.2, "reconnect_wait_seconds": 1.0}


@pytest.fixture
async def tls_csms(tmp_path: Path, pki_template: Path) -> AsyncIterator[RunningCsms]:
    running = await start_csms(tls_settings(tmp_path, pki_template, jobs=FAST_JOBS), with_api=False)
    try:
        yield running
    finally:
        await running.stop()


def open_wss(
    csms: RunningCsms, identity: str, version: OcppVersion, secret: bytes | None = None
) -> Any:
    assert csms.wss_address is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=csms_root_pem(csms.settings).decode())
    return ws_connect(
        f"wss://127.0.0.1:{csms.wss_address[1]}/ocpp/{identity}",
        ssl=context,
        server_hostname="localhost",
        subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
        additional_headers={"Authorization": basic(identity, secret or old_secret(version))},
        open_timeout=5,
    )


async def answer(station: RawStation, action: str, reply: dict[str, Any]) -> dict[str, Any]:
    unique_id, payload = await station.expect_call(action)
    await station.answer(unique_id, reply)
    return payload


async def walk_to_switch(
    csms: RunningCsms, station: RawStation, version: OcppVersion, final: str = "Accepted"
) -> None:
    """Answer the upgrade's calls up to (and including) the one that makes the station switch."""
    install = await answer(station, "InstallCertificate", {"status": "Accepted"})
    assert install["certificateType"] == ROOT_TYPE[version]
    assert "BEGIN CERTIFICATE" in install["certificate"]
    if version is V16:
        change = await answer(station, "ChangeConfiguration", {"status": final})
        assert change == {"key": "SecurityProfile", "value": "2"}
        return
    slots = await answer(
        station,
        "GetVariables",
        {
            "getVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "attributeValue": "1",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "NetworkConfigurationPriority"},
                }
            ]
        },
    )
    assert slots["getVariableData"][0]["variable"]["name"] == "NetworkConfigurationPriority"
    profile = await answer(station, "SetNetworkProfile", {"status": "Accepted"})
    assert csms.wss_address is not None
    assert profile["configurationSlot"] == 2
    assert profile["connectionData"] == {
        "ocppVersion": "OCPP20",
        "ocppTransport": "JSON",
        "ocppCsmsUrl": f"wss://localhost:{csms.wss_address[1]}/ocpp",
        "messageTimeout": 30,
        "securityProfile": 2,
        "ocppInterface": "Wired0",
    }
    priority = await answer(
        station,
        "SetVariables",
        {
            "setVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "NetworkConfigurationPriority"},
                }
            ]
        },
    )
    assert priority["setVariableData"][0]["attributeValue"] == "2,1"
    reset = await answer(station, "Reset", {"status": final})
    assert reset == {"type": "OnIdle"}


async def refused_on_ws(csms: RunningCsms, identity: str, version: OcppVersion) -> int:
    try:
        async with connect(csms, identity, version):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_A_19_TC_083_upgrade_1_to_2_then_profile_1_refused(
    tls_csms: RunningCsms, version: OcppVersion
) -> None:
    identity = f"UPG-{version.value}"
    await register_test_station(tls_csms.store, identity, version, 1)
    async with connect(tls_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        job = await tls_csms.jobs.upgrade(identity, 2, actor="alice")
        await walk_to_switch(tls_csms, station, version)
        waiting = await wait_job(tls_csms, job.id, JobState.WAITING)
        assert waiting.step == "await-reconnect"
    record = await tls_csms.store.stations.get(identity)
    assert record is not None and (record.security_profile, record.pending_profile) == (1, 2)
    # Step 7-8: the station comes back on profile 2 and is let in; that commits the upgrade.
    async with open_wss(tls_csms, identity, version) as ws:
        await RawStation(ws).call("BootNotification", BOOT[version])
        done = await wait_job(tls_csms, job.id)
    assert done.state is JobState.SUCCEEDED, done.message
    record = await tls_csms.store.stations.get(identity)
    assert record is not None and (record.security_profile, record.pending_profile) == (2, None)
    # Steps 10-11: profile 1 is refused from now on, with a security event.
    assert await refused_on_ws(tls_csms, identity, version) == 401
    (event, *_) = await tls_csms.store.events.list(station=identity, limit=1)
    assert event.type == CsmsEvent.PROFILE_TRANSPORT_MISMATCH.value


@pytest.mark.parametrize("version", [V16, V201])
async def test_UPG_01_station_rejects_the_switch_job_fails_and_pending_withdrawn(
    tls_csms: RunningCsms, version: OcppVersion
) -> None:
    identity = f"UPG-REJ-{version.value}"
    await register_test_station(tls_csms.store, identity, version, 1)
    async with connect(tls_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        job = await tls_csms.jobs.upgrade(identity, 2, actor="test")
        await walk_to_switch(tls_csms, station, version, final="Rejected")
        done = await wait_job(tls_csms, job.id)
    assert done.state is JobState.FAILED and "Rejected" in (done.message or "")
    record = await tls_csms.store.stations.get(identity)
    assert record is not None and (record.security_profile, record.pending_profile) == (1, None)
    assert await refused_on_ws(tls_csms, identity, version) == 101


async def test_UPG_01_station_that_falls_back_is_reported_and_pending_withdrawn(
    tls_csms: RunningCsms,
) -> None:
    identity = "UPG-FALLBACK"
    await register_test_station(tls_csms.store, identity, V201, 1)
    async with connect(tls_csms, identity, V201) as ws:
        station = RawStation(ws)
        await boot(station, V201)
        job = await tls_csms.jobs.upgrade(identity, 2, actor="test")
        await walk_to_switch(tls_csms, station, V201)
        await wait_job(tls_csms, job.id, JobState.WAITING)
    # A05.FR.08: it could not connect on profile 2 and came back on profile 1.
    async with connect(tls_csms, identity, V201) as ws:
        await boot(RawStation(ws), V201)
        done = await wait_job(tls_csms, job.id)
    assert done.state is JobState.FAILED and "fell back" in (done.message or "")
    alerts = await tls_csms.store.alerts.list(station_identity=identity)
    assert [a.kind for a in alerts] == ["upgrade.fell_back"]
    record = await tls_csms.store.stations.get(identity)
    assert record is not None and record.pending_profile is None


async def test_UPG_station_not_back_is_reported_then_cancel_withdraws_the_pending_profile(
    tls_csms: RunningCsms,
) -> None:
    identity = "UPG-GONE"
    version = V16
    await register_test_station(tls_csms.store, identity, version, 1)
    async with connect(tls_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        job = await tls_csms.jobs.upgrade(identity, 2, actor="test")
        await walk_to_switch(tls_csms, station, version)
    # reconnect_wait_seconds is 1 s here: the overdue upgrade raises one alert.

    async def reported() -> bool:
        return bool(await tls_csms.store.alerts.list(station_identity=identity))

    from test_certificate_lifecycle import until

    await until(reported)
    job_now = await tls_csms.store.jobs.get(job.id or -1)
    assert job_now is not None and job_now.state is JobState.WAITING
    assert "Cancel the job" in (job_now.message or "")
    await tls_csms.jobs.cancel(job.id or -1, actor="bob")
    done = await wait_job(tls_csms, job.id)
    assert done.state is JobState.CANCELLED and "withdrawn" in (done.message or "")
    # Profile 2 no longer lets it in; profile 1 still does.
    with pytest.raises(InvalidStatus):
        async with open_wss(tls_csms, identity, version):
            pass
    assert await refused_on_ws(tls_csms, identity, version) == 101
    alerts = await tls_csms.store.alerts.list(station_identity=identity)
    # Its refused profile-2 attempt is a critical security event with an alert of its own.
    assert [a.kind for a in alerts if not a.kind.startswith("security-event.")] == [
        "upgrade.overdue"
    ]


async def test_UPG_03_refusals(tls_csms: RunningCsms) -> None:
    from chargewarden.workflows.service import JobError, JobErrorKind

    await register_test_station(tls_csms.store, "UPG-P2", V16, 2)
    with pytest.raises(JobError) as down:
        await tls_csms.jobs.upgrade("UPG-P2", 2, actor="test")
    assert down.value.kind is JobErrorKind.CONFLICT and "never lowered" in str(down.value)
    with pytest.raises(JobError) as bad:
        await tls_csms.jobs.upgrade("UPG-P2", 4, actor="test")
    assert bad.value.kind is JobErrorKind.INVALID
    with pytest.raises(JobError) as missing:
        await tls_csms.jobs.upgrade("NOPE", 3, actor="test")
    assert missing.value.kind is JobErrorKind.NOT_FOUND


async def test_upgrade_without_tls_listener_is_refused(csms: RunningCsms) -> None:
    from chargewarden.workflows.service import JobError, JobErrorKind

    await register_test_station(csms.store, "UPG-NOTLS", V16, 1)
    with pytest.raises(JobError) as refused:
        await csms.jobs.upgrade("UPG-NOTLS", 2, actor="test")
    assert refused.value.kind is JobErrorKind.CONFLICT and "TLS" in str(refused.value)
