"""Password rotation as a durable job (PWD-01, PWD-02; TC_073, TC_A_09, TC_A_10), both versions.

Real CSMS on loopback, our simulator or a raw station under the test's control, real store.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest
from jobkit import admission_status, old_secret, secret_text, wait_job
from rawstation import (
    AUTH_KEY,
    BOOT,
    PASSWORD,
    V16,
    V201,
    RawStation,
    boot,
    connect,
    register_test_station,
)
from test_certificate_lifecycle import Running, until

from chargewarden.app import RunningCsms
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.store.job_records import JobState
from chargewarden.workflows.rotation import credential_ref
from chargewarden.workflows.service import JobError, JobErrorKind


def sim_config(csms: RunningCsms, identity: str, version: OcppVersion) -> StationConfig:
    return StationConfig(
        identity=identity,
        ocpp_version=version,
        url=csms.ws_url,
        security_profile=1,
        auth_key=bytes.fromhex(AUTH_KEY) if version is V16 else None,
        password=PASSWORD if version is V201 else None,
        reconnect_backoff_initial=0.2,
        reconnect_backoff_max=1.0,
    )


def rotation_answer(version: OcppVersion, status: str) -> dict[str, object]:
    if version is V16:
        return {"status": status}
    return {
        "setVariableResult": [
            {
                "attributeStatus": status,
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }
        ]
    }


ROTATION_CALL = {V16: "ChangeConfiguration", V201: "SetVariables"}


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_073_TC_A_09_rotation_accepted_only_new_secret_admitted_and_no_secret_anywhere(
    csms: RunningCsms, version: OcppVersion, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    identity = f"ROT-{version.value}"
    await register_test_station(csms.store, identity, version, 1)
    before = await csms.store.stations.get(identity)
    assert before is not None
    async with Running(sim_config(csms, identity, version)) as runner:
        job = await csms.jobs.rotate(identity, actor="alice")
        done = await wait_job(csms, job.id)
        assert done.state is JobState.SUCCEEDED, done.message
        new_secret = runner.core.auth_key if version is V16 else runner.core.password
        assert new_secret not in (None, bytes.fromhex(AUTH_KEY), PASSWORD)
        # The simulator reconnects with its new secret and is let in with it.
        await until(lambda: csms.registry.get(identity) is not None)

    station = await csms.store.stations.get(identity)
    assert station is not None and station.pending_credential_hash is None
    assert station.credential_hash != before.credential_hash
    assert not station.needs_credential_update
    assert await admission_status(csms, identity, version, old_secret(version)) == 401
    wire = new_secret if version is V16 else new_secret.encode()  # type: ignore[union-attr]
    assert await admission_status(csms, identity, version, wire) == 101  # type: ignore[arg-type]

    # The secret is nowhere: not in logs (message traces included), not in the job's records.
    steps = await csms.store.jobs.steps(done.id or -1)
    assert [s.outcome for s in steps][0] == "created" and steps[-1].outcome == "succeeded"
    recorded = repr(done) + repr(steps)
    for text in secret_text(new_secret):
        assert text not in caplog.text
        assert text not in recorded
    assert "alice" in recorded or done.actor == "alice"
    assert done.context["credential_ref"] == credential_ref(station.credential_hash)


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_A_10_rotation_rejected_old_secret_stays_and_job_fails_with_reason(
    csms: RunningCsms, version: OcppVersion
) -> None:
    identity = f"ROT-REJ-{version.value}"
    await register_test_station(csms.store, identity, version, 1)
    async with connect(csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        job = await csms.jobs.rotate(identity, actor="test")
        unique_id, payload = await station.expect_call(ROTATION_CALL[version])
        await station.answer(unique_id, rotation_answer(version, "Rejected"))
        done = await wait_job(csms, job.id)
    assert done.state is JobState.FAILED
    assert "Rejected" in (done.message or "") and "old credential" in (done.message or "")
    record = await csms.store.stations.get(identity)
    assert record is not None and record.pending_credential_hash is None
    assert await admission_status(csms, identity, version, old_secret(version)) == 101


async def test_PWD_01_not_supported_keeps_old_key(csms: RunningCsms) -> None:
    identity = "ROT-NS"
    await register_test_station(csms.store, identity, V16, 1)
    async with connect(csms, identity, V16) as ws:
        station = RawStation(ws)
        await boot(station, V16)
        job = await csms.jobs.rotate(identity, actor="test")
        unique_id, payload = await station.expect_call("ChangeConfiguration")
        assert payload["key"] == "AuthorizationKey" and len(payload["value"]) == 40
        await station.answer(unique_id, {"status": "NotSupported"})
        done = await wait_job(csms, job.id)
    assert done.state is JobState.FAILED and "NotSupported" in (done.message or "")
    assert await admission_status(csms, identity, V16, old_secret(V16)) == 101


@pytest.mark.parametrize("version", [V16, V201])
async def test_PWD_unanswered_change_then_station_back_with_new_secret_succeeds(
    csms: RunningCsms, version: OcppVersion
) -> None:
    """The answer is lost (the station drops the connection after applying the change): both
    secrets stay valid, and the station's reconnect with the new one completes the job."""
    identity = f"ROT-LOST-{version.value}"
    await register_test_station(csms.store, identity, version, 1)
    async with connect(csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        job = await csms.jobs.rotate(identity, actor="test")
        _, payload = await station.expect_call(ROTATION_CALL[version])
    new = (
        bytes.fromhex(payload["value"])
        if version is V16
        else payload["setVariableData"][0]["attributeValue"].encode()
    )
    waiting = await wait_job(csms, job.id, JobState.WAITING)
    assert waiting.step == "confirm"
    # Until the station shows which one it holds, neither secret locks it out.
    record = await csms.store.stations.get(identity)
    assert record is not None and record.pending_credential_hash is not None
    assert await admission_status(csms, identity, version, new) == 101
    done = await wait_job(csms, job.id)
    assert done.state is JobState.SUCCEEDED, done.message
    assert await admission_status(csms, identity, version, old_secret(version)) == 401


async def test_PWD_unanswered_change_then_station_back_with_old_secret_fails(
    csms: RunningCsms,
) -> None:
    identity = "ROT-LOST-OLD"
    await register_test_station(csms.store, identity, V201, 1)
    async with connect(csms, identity, V201) as ws:
        station = RawStation(ws)
        await boot(station, V201)
        job = await csms.jobs.rotate(identity, actor="test")
        await station.expect_call("SetVariables")
    await wait_job(csms, job.id, JobState.WAITING)
    async with connect(csms, identity, V201) as ws:
        await boot(RawStation(ws), V201)
        done = await wait_job(csms, job.id)
    assert done.state is JobState.FAILED
    assert "still uses its old credential" in (done.message or "")
    record = await csms.store.stations.get(identity)
    assert record is not None and record.pending_credential_hash is None
    assert await admission_status(csms, identity, V201, old_secret(V201)) == 101


async def test_rotation_of_offline_station_waits_and_runs_when_it_connects(
    csms: RunningCsms,
) -> None:
    identity = "ROT-OFFLINE"
    await register_test_station(csms.store, identity, V16, 1)
    job = await csms.jobs.rotate(identity, actor="test")
    waiting = await wait_job(csms, job.id, JobState.WAITING)
    assert "offline" in (waiting.message or "")
    async with Running(sim_config(csms, identity, V16)):
        done = await wait_job(csms, job.id)
    assert done.state is JobState.SUCCEEDED, done.message


async def test_rotation_refusals(csms: RunningCsms) -> None:
    with pytest.raises(JobError) as missing:
        await csms.jobs.rotate("NOPE", actor="test")
    assert missing.value.kind is JobErrorKind.NOT_FOUND
    await register_test_station(csms.store, "ROT-P0", V16, 0)
    with pytest.raises(JobError) as profile0:
        await csms.jobs.rotate("ROT-P0", actor="test")
    assert profile0.value.kind is JobErrorKind.CONFLICT and "profile 0" in str(profile0.value)
    await register_test_station(csms.store, "ROT-TWICE", V16, 1)
    first = await csms.jobs.rotate("ROT-TWICE", actor="test")
    with pytest.raises(JobError) as twice:
        await csms.jobs.rotate("ROT-TWICE", actor="test")
    assert twice.value.kind is JobErrorKind.CONFLICT and str(first.id) in str(twice.value)


async def test_cancel_before_anything_was_sent_discards_the_pending_credential(
    csms: RunningCsms,
) -> None:
    identity = "ROT-CANCEL"
    await register_test_station(csms.store, identity, V16, 1)
    job = await csms.jobs.rotate(identity, actor="test")
    await wait_job(csms, job.id, JobState.WAITING)
    cancelled = await csms.jobs.cancel(job.id or -1, actor="bob")
    assert cancelled.cancel_requested
    done = await wait_job(csms, job.id)
    assert done.state is JobState.CANCELLED
    record = await csms.store.stations.get(identity)
    assert record is not None and record.pending_credential_hash is None
    with pytest.raises(JobError) as again:
        await csms.jobs.cancel(job.id or -1, actor="bob")
    assert again.value.kind is JobErrorKind.CONFLICT


async def test_PWD_03_held_station_is_rotated_on_boot_then_accepted(csms: RunningCsms) -> None:
    identity = "ROT-HELD"
    await register_test_station(csms.store, identity, V16, 1)
    await csms.store.stations.update(identity, needs_credential_update=True)
    config = replace(sim_config(csms, identity, V16), boot_retry_interval=0.5)
    runner_ctx = Running(config)
    task_runner = runner_ctx.runner
    stop = asyncio.Event()
    task = asyncio.create_task(task_runner.run(stop))
    try:

        async def rotated() -> bool:
            record = await csms.store.stations.get(identity)
            return record is not None and not record.needs_credential_update

        await until(rotated)
        jobs = await csms.store.jobs.list(station_identity=identity)
        assert len(jobs) == 1 and jobs[0].actor == "system"
        await until(lambda: task_runner.core.registration == "Accepted")
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_PWD_02_reboot_required_keeps_both_until_the_station_uses_the_new_one(
    csms: RunningCsms,
) -> None:
    identity = "ROT-REBOOT"
    await register_test_station(csms.store, identity, V201, 1)
    async with connect(csms, identity, V201) as ws:
        station = RawStation(ws)
        await boot(station, V201)
        job = await csms.jobs.rotate(identity, actor="test")
        unique_id, payload = await station.expect_call("SetVariables")
        new = payload["setVariableData"][0]["attributeValue"].encode()
        await station.answer(unique_id, rotation_answer(V201, "RebootRequired"))
        unique_id, reset = await station.expect_call("Reset")
        assert reset == {"type": "OnIdle"}
        await station.answer(unique_id, {"status": "Scheduled"})
        waiting = await wait_job(csms, job.id, JobState.WAITING)
        assert waiting.step == "confirm-reboot"
    # Until it has rebooted, its old password must still let it in.
    assert await admission_status(csms, identity, V201, old_secret(V201)) == 101
    assert await admission_status(csms, identity, V201, new) == 101
    done = await wait_job(csms, job.id)
    assert done.state is JobState.SUCCEEDED, done.message
    assert await admission_status(csms, identity, V201, old_secret(V201)) == 401


@pytest.fixture
def csms_settings(csms_settings: dict[str, object]) -> dict[str, object]:
    # Short waits, so the "no answer" paths finish within a test.
    return csms_settings | {
        "call_timeout": 0.5,
        "jobs": {"poll_seconds": 0.1, "answer_wait_seconds": 1.0},
    }


async def test_PWD_no_answer_on_a_live_connection_fails_after_the_wait_and_keeps_the_old(
    csms: RunningCsms,
) -> None:
    identity = "ROT-SILENT"
    await register_test_station(csms.store, identity, V16, 1)
    async with connect(csms, identity, V16) as ws:
        station = RawStation(ws)
        await boot(station, V16)
        job = await csms.jobs.rotate(identity, actor="test")
        await station.expect_call("ChangeConfiguration")  # and never answered
        done = await wait_job(csms, job.id)
        assert done.state is JobState.FAILED
        assert "still uses its old credential" in (done.message or "")
    record = await csms.store.stations.get(identity)
    assert record is not None and record.pending_credential_hash is None
    assert await admission_status(csms, identity, V16, old_secret(V16)) == 101


async def test_fleet_rotation_with_concurrency_and_an_offline_station(csms: RunningCsms) -> None:
    from chargewarden.store.job_records import JobKind
    from chargewarden.workflows.service import FleetSelection

    for name in ("FL-1", "FL-2", "FL-3"):
        await register_test_station(csms.store, f"{name}", V16, 1)
    await register_test_station(csms.store, "FL-P3", V16, 3)
    fleet, skipped = await csms.jobs.fleet(
        JobKind.ROTATE_CREDENTIALS,
        FleetSelection(identities=("FL-1", "FL-2", "FL-3", "FL-P3")),
        actor="test",
        concurrency=1,
    )
    assert len(skipped) == 1 and "FL-P3" in skipped[0]
    async with Running(sim_config(csms, "FL-1", V16)), Running(sim_config(csms, "FL-2", V16)):

        async def two_done() -> bool:
            counts = await csms.store.jobs.children_by_state(fleet.id or -1)
            return counts.get(JobState.SUCCEEDED, 0) == 2

        await until(two_done)
        parent = await csms.store.jobs.get(fleet.id or -1)
        assert parent is not None and parent.state is JobState.WAITING
        assert "waiting for their station" in (parent.message or "")
        async with Running(sim_config(csms, "FL-3", V16)):
            done = await wait_job(csms, fleet.id)
    assert done.state is JobState.SUCCEEDED and "3/3 finished" in (done.message or "")
    # Concurrency 1: no two children were ever running at once.
    children = await csms.store.jobs.list(parent_id=fleet.id)
    assert all(c.state is JobState.SUCCEEDED for c in children)
    spans = []
    for child in children:
        steps = await csms.store.jobs.steps(child.id or -1)
        started = next(s.at for s in steps if s.outcome == "started")
        spans.append((started, child.finished_at))
    spans.sort()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans


async def test_cancelling_a_fleet_cancels_its_children(csms: RunningCsms) -> None:
    from chargewarden.store.job_records import JobKind
    from chargewarden.workflows.service import FleetSelection

    for name in ("FC-1", "FC-2"):
        await register_test_station(csms.store, name, V201, 1)
    fleet, _ = await csms.jobs.fleet(
        JobKind.ROTATE_CREDENTIALS, FleetSelection(version=V201), actor="test"
    )
    await csms.jobs.cancel(fleet.id or -1, actor="bob")
    done = await wait_job(csms, fleet.id)
    assert done.state is JobState.CANCELLED
    # Each child stops at its own next step boundary.
    children = await csms.store.jobs.list(parent_id=fleet.id)
    finished = [await wait_job(csms, child.id) for child in children]
    assert {c.state for c in finished} == {JobState.CANCELLED}


async def test_PWD_03_held_station_that_refuses_is_not_rotated_again_at_every_boot(
    csms: RunningCsms,
) -> None:
    identity = "ROT-HELD-NO"
    await register_test_station(csms.store, identity, V16, 1)
    await csms.store.stations.update(identity, needs_credential_update=True)
    async with connect(csms, identity, V16) as ws:
        station = RawStation(ws)
        reply = await station.call("BootNotification", BOOT[V16])
        assert reply[2]["status"] == "Pending"
        unique_id, _ = await station.expect_call("ChangeConfiguration")
        await station.answer(unique_id, {"status": "Rejected"})
        (job,) = await csms.store.jobs.list(station_identity=identity)
        assert (await wait_job(csms, job.id)).state is JobState.FAILED
        # The station retries its boot: still held, but no new rotation within the retry wait.
        reply = await station.call("BootNotification", BOOT[V16])
        assert reply[2]["status"] == "Pending"
        await station.nothing_for(0.5)
    assert len(await csms.store.jobs.list(station_identity=identity)) == 1
