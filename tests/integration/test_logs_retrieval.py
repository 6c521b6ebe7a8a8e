"""Log retrieval (LOG-01; whitepaper N01, TC_079; 2.0.1 TC_N_25/34/35/36), both versions.

A real CSMS with its CA and its HTTPS file-transfer listener; a raw station under the test's
control answers GetLog, uploads with httpx to the remoteLocation it was given (trusting only
the CSMS root) and reports LogStatusNotification, as a charger would.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobkit import wait_job
from rawstation import V16, V201, RawStation, boot, connect, register_test_station
from test_certificate_lifecycle import until
from tlskit import tls_settings

from chargewarden.app import RunningCsms, start_csms
from chargewarden.pki.material import csms_root_pem
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.events import CsmsEvent
from chargewarden.store.job_records import JobRecord, JobState
from chargewarden.store.transfer_records import LogRequestState, LogType, TransferPurpose

SECURITY_LOG = b"2025-01-31T12:00:00Z StartupOfTheDevice\n2025-01-31T12:00:05Z SettingSystemTime\n"
DIAGNOSTICS = b"simulated diagnostics\nconnections admitted: 3\n"
FAST_JOBS = {"poll_seconds": 0.1}


# ------------------------------------------------------------------------------- helpers


@contextlib.asynccontextmanager
async def online(
    csms: RunningCsms, identity: str, version: OcppVersion
) -> AsyncIterator[RawStation]:
    """A registered, booted raw station on profile 1 (ws, Basic auth)."""
    if await csms.store.stations.get(identity) is None:
        await register_test_station(csms.store, identity, version, 1)
    async with connect(csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        await until(lambda: csms.registry.get(identity) is not None)
        yield station


def root_context(csms: RunningCsms) -> ssl.SSLContext:
    """What a station trusts for the upload: the CSMS root, nothing else."""
    return ssl.create_default_context(cadata=csms_root_pem(csms.settings).decode("ascii"))


async def upload(
    csms: RunningCsms,
    url: str,
    content: bytes,
    *,
    method: str = "PUT",
    multipart: str | None = None,
) -> httpx.Response:
    async with httpx.AsyncClient(verify=root_context(csms), timeout=15) as client:
        if multipart is not None:
            return await client.post(url, files={"file": (multipart, content, "text/plain")})
        return await client.request(method, url, content=content)


async def get_log_call(
    station: RawStation, status: str = "Accepted", filename: str | None = "security.log"
) -> dict[str, Any]:
    """Answer the CSMS's GetLog with ``status``; returns its payload."""
    unique_id, payload = await station.expect_call("GetLog")
    answer: dict[str, Any] = {"status": status}
    if filename is not None and status != "Rejected":
        answer["filename"] = filename
    await station.answer(unique_id, answer)
    return payload


async def report(station: RawStation, status: str, request_id: int | None) -> None:
    payload: dict[str, Any] = {"status": status}
    if request_id is not None:
        payload["requestId"] = request_id
    reply = await station.call("LogStatusNotification", payload)
    assert reply[0] == 3 and reply[2] == {}, reply


async def accepted(
    csms: RunningCsms, station: RawStation, identity: str, log_type: LogType, **fetch: Any
) -> tuple[JobRecord, dict[str, Any]]:
    """Start a fetch, answer Accepted; the job waits for the upload."""
    assert csms.logs is not None
    job = await csms.logs.fetch(identity, log_type, actor="alice", **fetch)
    payload = await get_log_call(station)
    await until(lambda: _at_upload(csms, job.id))
    return job, payload


async def _at_upload(csms: RunningCsms, job_id: int | None) -> bool:
    assert job_id is not None
    job = await csms.store.jobs.get(job_id)
    return job is not None and job.step == "upload" and job.state is JobState.WAITING


def csms_lines_with(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """Log lines of the CSMS (message traces included) that contain ``text``; the test's own
    station clients (websockets.client, httpx) log what they send, as a station would."""
    station_side = ("websockets.client", "httpx", "httpcore")
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if text in r.getMessage() and not r.name.startswith(station_side)
    ]


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def events_of(csms: RunningCsms, event: CsmsEvent) -> list[Any]:
    return await csms.store.events.list(type=str(event))


@pytest.fixture
async def small_csms(tmp_path: Path, pki_template: Path) -> AsyncIterator[RunningCsms]:
    """Uploads limited to 1024 bytes, fast job polling."""
    settings = tls_settings(
        tmp_path / "csms",
        pki_template,
        allow_profile_0=False,
        jobs=FAST_JOBS,
        files={"port": 0, "max_upload_bytes": 1024},
    )
    running = await start_csms(settings, with_api=False)
    try:
        yield running
    finally:
        await running.stop()


# --------------------------------------------------------------------------- the happy path


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_079_TC_N_35_LOG_01_security_log_is_fetched_stored_and_no_token_is_kept(
    ca_csms: RunningCsms, version: OcppVersion, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    csms, identity = ca_csms, f"LOG-SEC-{version.value}"
    async with online(csms, identity, version) as station:
        job, payload = await accepted(csms, station, identity, LogType.SECURITY)
        request_id = job.params["request_id"]
        # GetLog as N01 asks: the log type, our requestId, an https URL on the files listener.
        assert payload["logType"] == "SecurityLog"
        assert payload["requestId"] == request_id
        location = payload["log"]["remoteLocation"]
        assert csms.files_url is not None and location.startswith(csms.files_url + "/files/logs/")
        assert "oldestTimestamp" not in payload["log"]

        await report(station, "Uploading", request_id)
        response = await upload(csms, location, SECURITY_LOG)
        assert response.status_code == 201, response.text
        await report(station, "Uploaded", request_id)
        done = await wait_job(csms, job.id)

    assert done.state is JobState.SUCCEEDED, done.message
    assert f"{len(SECURITY_LOG)} bytes" in (done.message or "")
    record = await csms.store.log_requests.get(request_id)
    assert record is not None and record.state is LogRequestState.UPLOADED
    assert record.response_status == "Accepted" and record.station_filename == "security.log"
    assert record.station_status == "Uploaded"
    assert [h.status for h in record.history] == ["GetLog Accepted", "Uploading", "Uploaded"]
    assert record.size == len(SECURITY_LOG)
    assert record.sha256 == hashlib.sha256(SECURITY_LOG).hexdigest()
    assert csms.files is not None and record.stored_path is not None
    stored = csms.files.storage.absolute(record.stored_path)
    assert stored.read_bytes() == SECURITY_LOG
    assert stored.is_relative_to(csms.settings.data_dir / "logs")

    # The token is in the URL the station got, and nowhere else: not in logs, not in the job.
    token = token_of(location)
    steps = await csms.store.jobs.steps(done.id or -1)
    assert not csms_lines_with(caplog, token)
    assert token not in repr(done) + repr(steps) + repr(record)
    # The link was single-use and is spent.
    again = await upload(csms, location, b"more")
    assert again.status_code == 409


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_N_25_diagnostics_log_with_time_window_and_multipart_upload(
    ca_csms: RunningCsms, version: OcppVersion
) -> None:
    from datetime import UTC, datetime, timedelta

    csms, identity = ca_csms, f"LOG-DIAG-{version.value}"
    since = datetime(2025, 1, 1, tzinfo=UTC)
    until_time = since + timedelta(days=30)
    async with online(csms, identity, version) as station:
        job, payload = await accepted(
            csms, station, identity, LogType.DIAGNOSTICS, since=since, until=until_time
        )
        request_id = job.params["request_id"]
        assert payload["logType"] == "DiagnosticsLog"
        assert payload["log"]["oldestTimestamp"].startswith("2025-01-01T00:00:00")
        assert payload["log"]["latestTimestamp"].startswith("2025-01-31T00:00:00")
        await report(station, "Uploading", request_id)
        response = await upload(
            csms, payload["log"]["remoteLocation"], DIAGNOSTICS, multipart="diag.txt"
        )
        assert response.status_code == 201, response.text
        await report(station, "Uploaded", request_id)
        done = await wait_job(csms, job.id)
    assert done.state is JobState.SUCCEEDED, done.message
    record = await csms.store.log_requests.get(request_id)
    assert record is not None and record.log_type is LogType.DIAGNOSTICS
    assert csms.files is not None and record.stored_path is not None
    assert csms.files.storage.absolute(record.stored_path).read_bytes() == DIAGNOSTICS


# ---------------------------------------------------------------------- refused uploads


async def test_upload_with_a_wrong_token_is_404_and_recorded(ca_csms: RunningCsms) -> None:
    csms, identity = ca_csms, "LOG-WRONG"
    async with online(csms, identity, V201) as station:
        job, payload = await accepted(csms, station, identity, LogType.SECURITY)
        location = payload["log"]["remoteLocation"]
        forged = location.rsplit("/", 1)[0] + "/" + "A" * 43
        response = await upload(csms, forged, SECURITY_LOG)
        assert response.status_code == 404
        refused = await events_of(csms, CsmsEvent.FILE_TOKEN_REFUSED)
        assert refused and "log upload refused" in (refused[0].tech_info or "")
        assert "A" * 43 not in repr(refused)
        # The real link still works: a guess does not spoil the station's upload.
        assert (await upload(csms, location, SECURITY_LOG)).status_code == 201
        done = await wait_job(csms, job.id)
    assert done.state is JobState.SUCCEEDED


async def test_reused_token_is_409_with_a_critical_UploadTokenReused_event(
    ca_csms: RunningCsms,
) -> None:
    csms, identity = ca_csms, "LOG-REUSE"
    async with online(csms, identity, V16) as station:
        job, payload = await accepted(csms, station, identity, LogType.SECURITY)
        location = payload["log"]["remoteLocation"]
        assert (await upload(csms, location, SECURITY_LOG)).status_code == 201
        second = await upload(csms, location, b"replayed content\n")
        assert second.status_code == 409
        done = await wait_job(csms, job.id)
    assert done.state is JobState.SUCCEEDED
    reused = await events_of(csms, CsmsEvent.UPLOAD_TOKEN_REUSED)
    assert len(reused) == 1 and reused[0].critical and reused[0].station_identity == identity
    record = await csms.store.log_requests.get(job.params["request_id"])
    assert record is not None and record.stored_path is not None and csms.files is not None
    assert csms.files.storage.absolute(record.stored_path).read_bytes() == SECURITY_LOG


async def test_expired_token_is_410(ca_csms: RunningCsms) -> None:
    from datetime import UTC, datetime

    csms, identity = ca_csms, "LOG-EXPIRED"
    async with online(csms, identity, V201) as station:
        job, payload = await accepted(csms, station, identity, LogType.SECURITY)
        # The link's lifetime ends (upload_ttl_seconds), as if the station took too long.
        await csms.store.file_tokens.expire(
            TransferPurpose.LOG_UPLOAD, job.params["request_id"], datetime.now(UTC)
        )
        response = await upload(csms, payload["log"]["remoteLocation"], SECURITY_LOG)
        assert response.status_code == 410
        assert await events_of(csms, CsmsEvent.FILE_TOKEN_REFUSED)
        await csms.jobs.cancel(job.id or -1, actor="test")
        await wait_job(csms, job.id)


async def test_oversize_upload_is_413_and_the_job_still_waits(small_csms: RunningCsms) -> None:
    csms, identity = small_csms, "LOG-BIG"
    async with online(csms, identity, V201) as station:
        job, payload = await accepted(csms, station, identity, LogType.DIAGNOSTICS)
        location = payload["log"]["remoteLocation"]
        response = await upload(csms, location, b"x" * 2048)
        assert response.status_code == 413
        record = await csms.store.log_requests.get(job.params["request_id"])
        assert record is not None and record.stored_path is None
        # A refused upload does not spend the link: a smaller file still gets in.
        assert (await upload(csms, location, b"y" * 1000)).status_code == 201
        done = await wait_job(csms, job.id)
    assert done.state is JobState.SUCCEEDED, done.message


# ------------------------------------------------------------------- refusals and failures


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_N_34_station_answers_Rejected_and_the_job_fails_with_the_answer(
    ca_csms: RunningCsms, version: OcppVersion
) -> None:
    csms, identity = ca_csms, f"LOG-REJ-{version.value}"
    assert csms.logs is not None
    async with online(csms, identity, version) as station:
        job = await csms.logs.fetch(identity, LogType.SECURITY, actor="alice")
        payload = await get_log_call(station, "Rejected")
        done = await wait_job(csms, job.id)
    assert done.state is JobState.FAILED and "Rejected" in (done.message or "")
    record = await csms.store.log_requests.get(job.params["request_id"])
    assert record is not None and record.state is LogRequestState.REFUSED
    assert record.response_status == "Rejected"
    # The link died with the request.
    response = await upload(csms, payload["log"]["remoteLocation"], SECURITY_LOG)
    assert response.status_code in (410, 404)


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize("status", ["UploadFailure", "PermissionDenied"])
async def test_upload_failure_fails_the_job_and_alerts(
    ca_csms: RunningCsms, version: OcppVersion, status: str
) -> None:
    csms, identity = ca_csms, f"LOG-FAIL-{version.value}-{status}"[:48]
    async with online(csms, identity, version) as station:
        job, payload = await accepted(csms, station, identity, LogType.SECURITY)
        request_id = job.params["request_id"]
        await report(station, "Uploading", request_id)
        await report(station, status, request_id)
        done = await wait_job(csms, job.id)
    assert done.state is JobState.FAILED and status in (done.message or "")
    record = await csms.store.log_requests.get(request_id)
    assert record is not None and record.state is LogRequestState.FAILED
    alerts = await csms.store.alerts.list(station_identity=identity)
    assert [a.kind for a in alerts] == ["log.fetch_failed"]
    assert status in alerts[0].message and alerts[0].details["request_id"] == request_id
    assert (await upload(csms, payload["log"]["remoteLocation"], SECURITY_LOG)).status_code == 410


async def test_no_upload_within_log_wait_seconds_fails_overdue(
    tmp_path: Path, pki_template: Path
) -> None:
    settings = tls_settings(
        tmp_path / "csms", pki_template, jobs=FAST_JOBS, files={"port": 0, "log_wait_seconds": 0.3}
    )
    csms = await start_csms(settings, with_api=False)
    try:
        async with online(csms, "LOG-LATE", V201) as station:
            assert csms.logs is not None
            job = await csms.logs.fetch("LOG-LATE", LogType.SECURITY, actor="alice")
            await get_log_call(station)
            done = await wait_job(csms, job.id)
        assert done.state is JobState.FAILED and "no security log arrived" in (done.message or "")
        assert await csms.store.alerts.list(station_identity="LOG-LATE")
    finally:
        await csms.stop()


async def test_station_without_GetLog_fails_with_a_hint(ca_csms: RunningCsms) -> None:
    csms, identity = ca_csms, "LOG-NOGETLOG"
    assert csms.logs is not None
    async with online(csms, identity, V16) as station:
        job = await csms.logs.fetch(identity, LogType.SECURITY, actor="alice")
        unique_id, _ = await station.expect_call("GetLog")
        await station.ws.send(f'[4,"{unique_id}","NotImplemented","unknown action",{{}}]')
        done = await wait_job(csms, job.id)
    assert done.state is JobState.FAILED
    assert "NotImplemented" in (done.message or "") and "whitepaper" in (done.message or "")
