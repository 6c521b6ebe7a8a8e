"""What log retrieval asks of the store, on SQLite and PostgreSQL: fetch-log jobs left out of
a station's "one job at a time" check, and a log request's answer and statuses kept in order."""

from __future__ import annotations

from datetime import UTC, datetime

from chargewarden.store import Store
from chargewarden.store.job_records import JobKind, JobRecord, JobState
from chargewarden.store.transfer_records import LogRequestRecord, LogRequestState, LogType
from chargewarden.workflows.service import BESIDE_OTHER_JOBS


def job(identity: str, kind: JobKind, state: JobState = JobState.PENDING) -> JobRecord:
    return JobRecord(kind=kind, state=state, step="send", actor="alice", station_identity=identity)


async def test_LOG_01_active_for_station_can_leave_out_log_fetches(store: Store) -> None:
    fetch = await store.jobs.add(job("CP1", JobKind.FETCH_LOG))
    # Without the exclusion a log fetch counts like any job (the default is unchanged).
    assert await store.jobs.active_for_station("CP1") == fetch
    assert await store.jobs.active_for_station("CP1", exclude=BESIDE_OTHER_JOBS) is None
    rotation = await store.jobs.add(job("CP1", JobKind.ROTATE_CREDENTIALS))
    assert await store.jobs.active_for_station("CP1", exclude=BESIDE_OTHER_JOBS) == rotation
    # Finished jobs never count, excluded or not.
    await store.jobs.add(job("CP2", JobKind.UPGRADE_PROFILE, JobState.SUCCEEDED))
    assert await store.jobs.active_for_station("CP2", exclude=BESIDE_OTHER_JOBS) is None


async def test_LOG_01_log_request_answer_statuses_and_conditional_state(store: Store) -> None:
    request = await store.log_requests.add(
        LogRequestRecord(
            station_identity="CP1",
            log_type=LogType.SECURITY,
            state=LogRequestState.PENDING,
            actor="alice",
            since=datetime(2025, 1, 1, tzinfo=UTC),
        )
    )
    assert request.id is not None
    now = datetime.now(UTC)
    sent = await store.log_requests.update(
        request.id, only_if=(LogRequestState.PENDING,), state=LogRequestState.SENT, job_id=7
    )
    assert sent is not None and sent.state is LogRequestState.SENT and sent.job_id == 7
    answered = await store.log_requests.record_status(
        request.id,
        "GetLog Accepted",
        now,
        station_status=False,
        only_if=(LogRequestState.SENT,),
        state=LogRequestState.ACCEPTED,
        response_status="Accepted",
        station_filename="security.log",
    )
    assert answered is not None and answered.station_status is None
    uploading = await store.log_requests.record_status(request.id, "Uploading", now)
    assert uploading is not None and uploading.station_status == "Uploading"
    assert [h.status for h in uploading.history] == ["GetLog Accepted", "Uploading"]
    # A second answer (a replayed or late one) cannot move the request back.
    late = await store.log_requests.record_status(
        request.id, "GetLog Rejected", now, only_if=(LogRequestState.SENT,)
    )
    assert late is None
    listed = await store.log_requests.list(station="CP1", log_type=LogType.SECURITY)
    assert [r.id for r in listed] == [request.id] and listed[0].state.open
    assert await store.log_requests.list(log_type=LogType.DIAGNOSTICS) == []
