"""Signed firmware end to end: our CSMS and our simulated station over real TLS, both versions.

TC_080 / TC_L_01: a signed release reaches the station over HTTPS, is verified against its
manufacturer root and installed; the station boots with the new version. TC_081: an image
altered on the server after the station accepted the update is refused by the station
(InvalidSignature), which the CSMS turns into a failed update, a stored security event and a
critical alert.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from firmwarekit import dev_release, dev_signer
from jobkit import wait_job
from rawstation import PASSWORD, register_test_station
from simkit import Running, until
from tlskit import tls_settings

from chargewarden.app import RunningCsms, start_csms
from chargewarden.demo_tls import tls_config
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.store.job_records import JobState
from chargewarden.store.records import EventSource
from chargewarden.store.transfer_records import FirmwareUpdateState

V16, V201 = OcppVersion.V16, OcppVersion.V201
AUTH_KEY = bytes.fromhex("9F3A61C2D4E5F60718293A4B5C6D7E8F90A1B2C3")
INVALID_SIGNATURE_EVENT = "InvalidFirmwareSignature"


@pytest.fixture
async def fw_csms(tmp_path: Path, pki_template: Path) -> AsyncIterator[RunningCsms]:
    settings = tls_settings(
        tmp_path / "csms", pki_template, allow_profile_0=False, jobs={"poll_seconds": 0.2}
    )
    running = await start_csms(settings, with_api=False)
    try:
        yield running
    finally:
        await running.stop()


async def station_config(csms: RunningCsms, identity: str, version: OcppVersion) -> StationConfig:
    await register_test_station(csms.store, identity, version, 2)
    config = tls_config(
        csms,
        identity,
        version,
        2,
        auth_key=AUTH_KEY if version is V16 else None,
        password=PASSWORD if version is V201 else None,
    )
    root = dev_signer(csms).manufacturer_root.pem
    return replace(config, manufacturer_root_pem=root, reconnect_backoff_initial=0.2)


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_080_TC_L_01_simulated_station_installs_a_signed_release(
    fw_csms: RunningCsms, version: OcppVersion, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None
    identity = f"SIMFW-{version.value}"
    release = await dev_release(fw_csms, tmp_path, name=f"acme-{version.value}")
    async with Running(await station_config(fw_csms, identity, version)):
        job, update = await fw_csms.firmware.update(identity, release.name, actor="test")
        done = await wait_job(fw_csms, job.id, timeout=40)
        assert done.state is JobState.SUCCEEDED, done.message

        async def booted_with_new_version() -> bool:
            station = await fw_csms.store.stations.get(identity)
            return station is not None and station.firmware_version == "fw-2.1.0"

        await until(booted_with_new_version, timeout=20)
    stored = await fw_csms.store.firmware_updates.get(update.id or 0)
    assert stored is not None and stored.state is FirmwareUpdateState.INSTALLED
    statuses = [change.status for change in stored.history]
    for expected in ("Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"):
        assert expected in statuses, statuses
    assert statuses.index("Downloaded") < statuses.index("SignatureVerified")
    events = await fw_csms.store.events.list(station=identity, source=EventSource.STATION)
    assert "FirmwareUpdated" in {event.type for event in events}


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_081_simulated_station_refuses_an_image_altered_after_acceptance(
    fw_csms: RunningCsms, version: OcppVersion, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None and fw_csms.files is not None
    identity = f"SIMFW-BAD-{version.value}"
    release = await dev_release(fw_csms, tmp_path, name=f"acme-bad-{version.value}")
    stored_image = fw_csms.files.storage.firmware_path(release.sha256, release.filename)
    async with Running(await station_config(fw_csms, identity, version)):
        at = datetime.now(UTC) + timedelta(seconds=2)
        job, update = await fw_csms.firmware.update(identity, release.name, actor="t", at=at)

        async def accepted() -> bool:
            record = await fw_csms.store.firmware_updates.get(update.id or 0)
            return record is not None and record.state is FirmwareUpdateState.ACCEPTED

        await until(accepted)
        # Someone with access to the file server swaps bytes before the station downloads.
        stored_image.write_bytes(stored_image.read_bytes()[:-4] + b"evil")
        done = await wait_job(fw_csms, job.id, timeout=40)
    assert done.state is JobState.FAILED and "InvalidSignature" in (done.message or "")
    events = await fw_csms.store.events.list(station=identity, source=EventSource.STATION)
    assert INVALID_SIGNATURE_EVENT in {event.type for event in events}
    alerts = await fw_csms.store.alerts.list(station_identity=identity)
    assert any(alert.kind == "firmware.invalid_signature" for alert in alerts)
    station = await fw_csms.store.stations.get(identity)
    assert station is not None and station.firmware_version != "fw-2.1.0"
