"""Signed firmware updates on the CSMS side, both OCPP versions (FW-01/02/03).

A raw station under the test's control answers SignedUpdateFirmware (1.6) / UpdateFirmware
(2.0.1), downloads the image over HTTPS from the link it was given, and reports statuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from firmwarekit import STATUS_CALL, UPDATE_CALL, dev_release, dev_signer, files_client, image
from jobkit import wait_job
from rawstation import RawStation, boot, connect, register_test_station
from tlskit import foreign_ca, pem, tls_settings

from chargewarden.app import RunningCsms, start_csms
from chargewarden.pki.firmware import FirmwareRefused, digest_file, sign_digest
from chargewarden.pki.issue import issue_leaf
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.job_records import JobState
from chargewarden.store.records import EventSource
from chargewarden.store.transfer_records import FirmwareUpdateState

V16, V201 = OcppVersion.V16, OcppVersion.V201
HAPPY = ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]


@pytest.fixture
async def fw_csms(tmp_path: Path, pki_template: Path) -> AsyncIterator[RunningCsms]:
    settings = tls_settings(
        tmp_path / "csms",
        pki_template,
        allow_profile_0=False,
        files={"port": 0, "download_ttl_seconds": 2},
        jobs={"poll_seconds": 0.2},
    )
    running = await start_csms(settings, with_api=False)
    try:
        yield running
    finally:
        await running.stop()


async def report(station: RawStation, version: OcppVersion, request_id: int, status: str) -> None:
    reply = await station.call(
        STATUS_CALL[version.value], {"status": status, "requestId": request_id}
    )
    assert reply[0] == 3, reply


async def events_of(csms: RunningCsms, event_type: str) -> list[str]:
    events = await csms.store.events.list(source=EventSource.CSMS)
    return [e.tech_info or "" for e in events if e.type == event_type]


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_080_TC_L_01_signed_update_downloaded_and_tracked_to_installed(
    fw_csms: RunningCsms, version: OcppVersion, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None
    identity = f"FW-OK-{version.value}"
    await register_test_station(fw_csms.store, identity, version)
    release = await dev_release(fw_csms, tmp_path)
    async with connect(fw_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        job, update = await fw_csms.firmware.update(identity, release.name, actor="alice")
        unique_id, payload = await station.expect_call(UPDATE_CALL[version.value])
        # L01.FR.11: the signing certificate travels with the request, with the signature.
        assert payload["requestId"] == update.id
        firmware = payload["firmware"]
        assert firmware["signingCertificate"] == release.signing_certificate_pem
        assert firmware["signature"] == release.signature
        location = firmware["location"]
        assert location.startswith("https://localhost:") and "/files/firmware/" in location
        await station.answer(unique_id, {"status": "Accepted"})

        async with files_client(fw_csms) as client:
            response = await client.get(location)
        assert response.status_code == 200
        assert response.content == (tmp_path / "fw-2.1.0.bin").read_bytes()
        assert digest_file(tmp_path / "fw-2.1.0.bin")[0].hex() == release.sha256

        for status in HAPPY:
            await report(station, version, update.id or 0, status)
        done = await wait_job(fw_csms, job.id)
    assert done.state is JobState.SUCCEEDED, done.message
    stored = await fw_csms.store.firmware_updates.get(update.id or 0)
    assert stored is not None and stored.state is FirmwareUpdateState.INSTALLED
    assert [c.status for c in stored.history] == ["answer:Accepted", *HAPPY]
    assert stored.response_status == "Accepted"
    # Finished: the link no longer opens.
    async with files_client(fw_csms) as client:
        assert (await client.get(location)).status_code == 410


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_081_invalid_signature_reported_fails_the_update_with_a_critical_alert(
    fw_csms: RunningCsms, version: OcppVersion, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None
    identity = f"FW-SIG-{version.value}"
    await register_test_station(fw_csms.store, identity, version)
    release = await dev_release(fw_csms, tmp_path)
    async with connect(fw_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        job, update = await fw_csms.firmware.update(identity, release.name, actor="test")
        unique_id, _ = await station.expect_call(UPDATE_CALL[version.value])
        await station.answer(unique_id, {"status": "Accepted"})
        for status in ("Downloading", "Downloaded", "InvalidSignature"):
            await report(station, version, update.id or 0, status)
        done = await wait_job(fw_csms, job.id)
    assert done.state is JobState.FAILED and "InvalidSignature" in (done.message or "")
    alerts = await fw_csms.store.alerts.list(station_identity=identity)
    assert any(a.kind == "firmware.invalid_signature" and a.severity == "critical" for a in alerts)


@pytest.mark.parametrize("answer", ["InvalidCertificate", "RevokedCertificate", "Rejected"])
async def test_FW_03_station_refusing_the_request_ends_the_update(
    fw_csms: RunningCsms, answer: str, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None
    identity = f"FW-REF-{answer[:8]}"
    await register_test_station(fw_csms.store, identity, V201)
    release = await dev_release(fw_csms, tmp_path)
    async with connect(fw_csms, identity, V201) as ws:
        station = RawStation(ws)
        await boot(station, V201)
        job, update = await fw_csms.firmware.update(identity, release.name, actor="test")
        unique_id, _ = await station.expect_call("UpdateFirmware")
        await station.answer(unique_id, {"status": answer})
        done = await wait_job(fw_csms, job.id)
    assert done.state is JobState.FAILED and answer in (done.message or "")
    stored = await fw_csms.store.firmware_updates.get(update.id or 0)
    assert stored is not None and stored.state is FirmwareUpdateState.REFUSED
    alerts = await fw_csms.store.alerts.list(station_identity=identity)
    security = answer != "Rejected"
    assert any(a.kind == "firmware.signing_certificate_refused" for a in alerts) is security


async def test_FW_02_release_signed_by_a_foreign_ca_is_refused_and_recorded(
    fw_csms: RunningCsms, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None
    ca, ca_key = foreign_ca()
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    leaf = issue_leaf(
        ca, ca_key, key.public_key(), cn="Other Signer", o="Somebody Else",
        not_before=now.replace(year=now.year - 1), not_after=now.replace(year=now.year + 1),
        client=True, code_signing=True,
    )  # fmt: skip
    path = image(tmp_path)
    with pytest.raises(FirmwareRefused, match="manufacturer root"):
        await fw_csms.firmware.releases.register(
            path, sign_digest(digest_file(path)[0], key), pem(leaf), name="foreign", actor="test"
        )
    assert await fw_csms.store.firmware_releases.by_name("foreign") is None
    assert any("foreign" in text for text in await events_of(fw_csms, "FirmwareRefused"))


async def test_FW_02_tampered_image_is_refused_at_registration(
    fw_csms: RunningCsms, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None
    path = image(tmp_path)
    signer = dev_signer(fw_csms).firmware_signer
    signature = sign_digest(digest_file(path)[0], signer.key)  # type: ignore[arg-type]
    path.write_bytes(path.read_bytes() + b"backdoor")
    with pytest.raises(FirmwareRefused, match="does not verify"):
        await fw_csms.firmware.releases.register(
            path, signature, signer.pem, name="tampered", actor="test"
        )
    assert await events_of(fw_csms, "FirmwareRefused")


async def test_FW_02_revoked_signing_certificate_stops_an_update_before_it_is_sent(
    fw_csms: RunningCsms, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None
    identity = "FW-REVOKED"
    await register_test_station(fw_csms.store, identity, V16)
    release = await dev_release(fw_csms, tmp_path)
    signer = dev_signer(fw_csms).firmware_signer.certificate
    await fw_csms.store.certificates.revoke(
        format(signer.serial_number, "X"), "keyCompromise", datetime.now(UTC)
    )
    async with connect(fw_csms, identity, V16) as ws:
        station = RawStation(ws)
        await boot(station, V16)
        job, update = await fw_csms.firmware.update(identity, release.name, actor="test")
        done = await wait_job(fw_csms, job.id)
        await station.nothing_for(0.5)
    assert done.state is JobState.FAILED and "revoked" in (done.message or "")
    assert any("not sent" in text for text in await events_of(fw_csms, "FirmwareRefused"))
    alerts = await fw_csms.store.alerts.list(station_identity=identity)
    assert any(a.kind == "firmware.refused_by_csms" for a in alerts)


async def test_FW_02_stored_image_changed_after_registration_is_not_sent(
    fw_csms: RunningCsms, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None and fw_csms.files is not None
    identity = "FW-CHANGED"
    await register_test_station(fw_csms.store, identity, V201)
    release = await dev_release(fw_csms, tmp_path)
    stored = fw_csms.files.storage.firmware_path(release.sha256, release.filename)
    stored.write_bytes(stored.read_bytes()[:-1] + b"\x00")
    async with connect(fw_csms, identity, V201) as ws:
        station = RawStation(ws)
        await boot(station, V201)
        job, _ = await fw_csms.firmware.update(identity, release.name, actor="test")
        done = await wait_job(fw_csms, job.id)
        await station.nothing_for(0.3)
    assert done.state is JobState.FAILED and "not sent" in (done.message or "")


async def test_FW_01_expired_and_unknown_download_links_are_refused_and_recorded(
    fw_csms: RunningCsms, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None and fw_csms.files_url is not None
    identity = "FW-EXPIRED"
    await register_test_station(fw_csms.store, identity, V16)
    release = await dev_release(fw_csms, tmp_path)
    async with connect(fw_csms, identity, V16) as ws:
        station = RawStation(ws)
        await boot(station, V16)
        job, update = await fw_csms.firmware.update(identity, release.name, actor="test")
        unique_id, payload = await station.expect_call("SignedUpdateFirmware")
        await station.answer(unique_id, {"status": "Accepted"})
        location = payload["firmware"]["location"]
        await asyncio.sleep(2.5)  # the test CSMS's links live 2 s past the retrieve time
        async with files_client(fw_csms) as client:
            expired = await client.get(location)
            unknown = await client.get(f"{fw_csms.files_url}/files/firmware/guessed/fw-2.1.0.bin")
    assert expired.status_code == 410 and unknown.status_code == 404
    refused = await events_of(fw_csms, "FileTransferRefused")
    assert any("expired" in text for text in refused)
    assert any("unknown link" in text for text in refused)
    token = location.split("/files/firmware/")[1].split("/")[0]
    assert all(token not in text for text in refused)


async def test_FW_01_offline_station_gets_the_update_when_it_connects(
    fw_csms: RunningCsms, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None
    identity = "FW-LATER"
    await register_test_station(fw_csms.store, identity, V201)
    release = await dev_release(fw_csms, tmp_path)
    job, update = await fw_csms.firmware.update(identity, release.name, actor="test")
    await wait_job(fw_csms, job.id, JobState.WAITING)
    async with connect(fw_csms, identity, V201) as ws:
        station = RawStation(ws)
        await boot(station, V201)
        unique_id, payload = await station.expect_call("UpdateFirmware")
        assert payload["requestId"] == update.id
        await station.answer(unique_id, {"status": "Accepted"})
        await report(station, V201, update.id or 0, "Installed")
        done = await wait_job(fw_csms, job.id)
    assert done.state is JobState.SUCCEEDED


async def test_FW_03_status_for_another_stations_request_is_ignored(
    fw_csms: RunningCsms, tmp_path: Path
) -> None:
    assert fw_csms.firmware is not None
    await register_test_station(fw_csms.store, "FW-VICTIM", V201)
    await register_test_station(fw_csms.store, "FW-OTHER", V201)
    release = await dev_release(fw_csms, tmp_path)
    _, update = await fw_csms.firmware.update("FW-VICTIM", release.name, actor="test")
    async with connect(fw_csms, "FW-OTHER", V201) as ws:
        station = RawStation(ws)
        await boot(station, V201)
        await report(station, V201, update.id or 0, "Installed")
    stored = await fw_csms.store.firmware_updates.get(update.id or 0)
    assert stored is not None and stored.station_status is None
    assert stored.state is FirmwareUpdateState.PENDING
