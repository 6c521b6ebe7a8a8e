"""Log fetches among other jobs and reports (LOG-01, TC_N_36): one fetch per station, a fetch
beside a rotation, replacing a fetch, statuses routed by requestId only to their own station,
cancelling, and a CSMS restart between the link and the station's answer."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jobkit import wait_job
from rawstation import V16, V201, RawStation, boot, connect, register_test_station
from test_certificate_lifecycle import until
from test_jobs_rotation import ROTATION_CALL, rotation_answer
from test_logs_retrieval import (
    SECURITY_LOG,
    accepted,
    get_log_call,
    online,
    report,
    token_of,
    upload,
)
from tlskit import tls_settings

from chargewarden.app import RunningCsms, start_csms
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.job_records import JobKind, JobState
from chargewarden.store.transfer_records import LogRequestState, LogType
from chargewarden.workflows.service import JobError, JobErrorKind


async def request_of(csms: RunningCsms, request_id: int) -> Any:
    record = await csms.store.log_requests.get(request_id)
    assert record is not None
    return record


async def test_a_second_fetch_of_the_same_station_is_a_conflict_worded_for_an_operator(
    ca_csms: RunningCsms,
) -> None:
    csms = ca_csms
    assert csms.logs is not None
    await register_test_station(csms.store, "LOG-TWICE", V201, 1)
    first = await csms.logs.fetch("LOG-TWICE", LogType.SECURITY, actor="alice")
    with pytest.raises(JobError) as refused:
        await csms.logs.fetch("LOG-TWICE", LogType.DIAGNOSTICS, actor="bob")
    assert refused.value.kind is JobErrorKind.CONFLICT
    assert f"job {first.id}" in str(refused.value) and "cancel" in str(refused.value)
    # Another station is not affected; nor is an unknown one a conflict.
    await register_test_station(csms.store, "LOG-OTHER", V201, 1)
    await csms.logs.fetch("LOG-OTHER", LogType.SECURITY, actor="bob")
    with pytest.raises(JobError) as unknown:
        await csms.logs.fetch("NO-SUCH", LogType.SECURITY, actor="bob")
    assert unknown.value.kind is JobErrorKind.NOT_FOUND
    now = datetime.now(UTC)
    with pytest.raises(JobError) as backwards:
        await csms.logs.fetch("LOG-OTHER", "security", actor="bob", since=now, until=now)
    assert backwards.value.kind is JobErrorKind.INVALID
    audit = await csms.store.audit.list(target="LOG-TWICE")
    fetches = [a for a in audit if a.action == "log.fetch"]
    assert len(fetches) == 1 and fetches[0].actor == "alice"
    assert fetches[0].details["request_id"] == first.params["request_id"]


@pytest.mark.parametrize("version", [V16, V201])
async def test_a_fetch_neither_blocks_nor_is_blocked_by_a_rotation(
    ca_csms: RunningCsms, version: OcppVersion
) -> None:
    csms, identity = ca_csms, f"LOG-ROT-{version.value}"
    assert csms.logs is not None
    async with online(csms, identity, version) as station:
        fetch, payload = await accepted(csms, station, identity, LogType.SECURITY)
        # A rotation starts while the fetch waits for its upload ...
        rotation = await csms.jobs.rotate(identity, actor="alice")
        unique_id, _ = await station.expect_call(ROTATION_CALL[version])
        await station.answer(unique_id, rotation_answer(version, "Rejected"))
        assert (await wait_job(csms, rotation.id)).state is JobState.FAILED
        # ... and the fetch goes on to the end.
        request_id = fetch.params["request_id"]
        assert (
            await upload(csms, payload["log"]["remoteLocation"], SECURITY_LOG)
        ).status_code == 201
        await report(station, "Uploaded", request_id)
        assert (await wait_job(csms, fetch.id)).state is JobState.SUCCEEDED

        # The other way round: a fetch while a rotation waits for the station's answer.
        rotation = await csms.jobs.rotate(identity, actor="alice")
        unique_id, _ = await station.expect_call(ROTATION_CALL[version])
        second = await csms.logs.fetch(identity, LogType.DIAGNOSTICS, actor="bob")
        await station.answer(unique_id, rotation_answer(version, "Rejected"))
        await get_log_call(station, "Rejected")
        assert (await wait_job(csms, second.id)).state is JobState.FAILED
        assert (await wait_job(csms, rotation.id)).state is JobState.FAILED
    # A fleet rotation does not skip a station for its log fetch either.
    active = await csms.store.jobs.active_for_station(identity, exclude=(JobKind.FETCH_LOG,))
    assert active is None


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_N_36_second_request_replaces_the_first_which_the_station_cancels(
    ca_csms: RunningCsms, version: OcppVersion
) -> None:
    csms, identity = ca_csms, f"LOG-2ND-{version.value}"
    assert csms.logs is not None
    async with online(csms, identity, version) as station:
        first, first_payload = await accepted(csms, station, identity, LogType.SECURITY)
        first_id = first.params["request_id"]
        await report(station, "Uploading", first_id)

        second = await csms.logs.fetch(identity, LogType.SECURITY, actor="bob", replace=True)
        second_id = second.params["request_id"]
        assert second_id != first_id and second.params["replaces_job"] == first.id
        payload = await get_log_call(station, "AcceptedCanceled")
        assert payload["requestId"] == second_id
        if version is V201:  # 1.6 has no AcceptedCanceled upload status
            await report(station, "AcceptedCanceled", first_id)
        await report(station, "Uploading", second_id)
        # The first link no longer works; the second does.
        late = await upload(csms, first_payload["log"]["remoteLocation"], b"old upload")
        assert late.status_code == 410
        assert (
            await upload(csms, payload["log"]["remoteLocation"], SECURITY_LOG)
        ).status_code == 201
        await report(station, "Uploaded", second_id)
        done = await wait_job(csms, second.id)

    assert done.state is JobState.SUCCEEDED, done.message
    assert (await wait_job(csms, first.id)).state is JobState.CANCELLED
    old = await request_of(csms, first_id)
    assert old.state is LogRequestState.CANCELLED and "replaced" in (old.reason or "")
    new = await request_of(csms, second_id)
    assert new.response_status == "AcceptedCanceled" and new.state is LogRequestState.UPLOADED
    steps = await csms.store.jobs.steps(second.id or -1)
    assert any("cancelled an upload" in (s.detail or "") for s in steps)


async def test_station_cancelling_its_upload_ends_the_fetch_without_an_alert(
    ca_csms: RunningCsms,
) -> None:
    csms, identity = ca_csms, "LOG-STATION-CANCEL"
    async with online(csms, identity, V201) as station:
        job, _ = await accepted(csms, station, identity, LogType.SECURITY)
        await report(station, "AcceptedCanceled", job.params["request_id"])
        done = await wait_job(csms, job.id)
    assert done.state is JobState.FAILED and "AcceptedCanceled" in (done.message or "")
    record = await request_of(csms, job.params["request_id"])
    assert record.state is LogRequestState.CANCELLED
    assert await csms.store.alerts.list(station_identity=identity) == []


async def test_status_for_another_stations_request_is_ignored_and_logged(
    ca_csms: RunningCsms, caplog: pytest.LogCaptureFixture
) -> None:
    csms = ca_csms
    caplog.set_level(logging.WARNING, logger="chargewarden.workflows.logs")
    async with online(csms, "LOG-VICTIM", V201) as victim:
        job, _ = await accepted(csms, victim, "LOG-VICTIM", LogType.SECURITY)
        request_id = job.params["request_id"]
        async with online(csms, "LOG-INTRUDER", V201) as intruder:
            await report(intruder, "UploadFailure", request_id)
            await report(intruder, "Uploaded", 999_999)
        record = await request_of(csms, request_id)
        assert record.station_status is None and len(record.history) == 1
        stored = await csms.store.jobs.get(job.id or -1)
        assert stored is not None and stored.state is JobState.WAITING
        assert "of another station" in caplog.text and "unknown request 999999" in caplog.text
        await csms.jobs.cancel(job.id or -1, actor="test")
        assert (await wait_job(csms, job.id)).state is JobState.CANCELLED


async def test_1_6_DiagnosticsStatusNotification_without_requestId_counts_for_the_open_fetch(
    ca_csms: RunningCsms,
) -> None:
    csms, identity = ca_csms, "LOG-NOID"
    async with online(csms, identity, V16) as station:
        job, _ = await accepted(csms, station, identity, LogType.DIAGNOSTICS)
        reply = await station.call("DiagnosticsStatusNotification", {"status": "UploadFailed"})
        assert reply[0] == 3
        done = await wait_job(csms, job.id)
    assert done.state is JobState.FAILED and "UploadFailed" in (done.message or "")


async def test_cancel_ends_the_request_and_its_link(ca_csms: RunningCsms) -> None:
    csms, identity = ca_csms, "LOG-CANCEL"
    async with online(csms, identity, V201) as station:
        job, payload = await accepted(csms, station, identity, LogType.SECURITY)
        await csms.jobs.cancel(job.id or -1, actor="alice")
        done = await wait_job(csms, job.id)
        assert done.state is JobState.CANCELLED and "link no longer works" in (done.message or "")
        response = await upload(csms, payload["log"]["remoteLocation"], SECURITY_LOG)
        assert response.status_code == 410
    record = await request_of(csms, job.params["request_id"])
    assert record.state is LogRequestState.CANCELLED and record.stored_path is None


@pytest.mark.parametrize("version", [V16, V201])
async def test_restart_before_the_answer_sends_GetLog_again_with_a_new_link(
    tmp_path: Path, pki_template: Path, version: OcppVersion
) -> None:
    settings = tls_settings(tmp_path / "csms", pki_template, jobs={"poll_seconds": 0.1})
    identity = f"LOG-RESTART-{version.value}"
    csms = await start_csms(settings, with_api=False)
    running = True
    try:
        assert csms.logs is not None
        await register_test_station(csms.store, identity, version, 1)
        async with connect(csms, identity, version) as ws:
            station = RawStation(ws)
            await boot(station, version)
            await until(lambda: csms.registry.get(identity) is not None)
            job = await csms.logs.fetch(identity, LogType.SECURITY, actor="alice")
            _, first = await station.expect_call("GetLog")  # never answered: the CSMS stops
            running = False
            await csms.stop()
    finally:
        if running:
            await csms.stop()

    csms = await start_csms(settings, with_api=False)
    try:
        async with connect(csms, identity, version) as ws:
            station = RawStation(ws)
            await boot(station, version)
            payload = await get_log_call(station)
            assert payload["requestId"] == first["requestId"] == job.params["request_id"]
            new_url, old_token = (
                payload["log"]["remoteLocation"],
                token_of(first["log"]["remoteLocation"]),
            )
            assert token_of(new_url) != old_token
            assert csms.files_url is not None
            stale = await upload(csms, f"{csms.files_url}/files/logs/{old_token}", b"stale")
            assert stale.status_code == 410
            await report(station, "Uploading", payload["requestId"])
            assert (await upload(csms, new_url, SECURITY_LOG)).status_code == 201
            await report(station, "Uploaded", payload["requestId"])
            done = await wait_job(csms, job.id)
        assert done.state is JobState.SUCCEEDED, done.message
        steps = await csms.store.jobs.steps(job.id or -1)
        assert any("restarted" in (s.detail or "") for s in steps)
    finally:
        await csms.stop()
