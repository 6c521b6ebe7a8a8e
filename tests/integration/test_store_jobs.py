"""The jobs repository and the conditional credential writes, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from chargewarden.rpc.versions import OcppVersion
from chargewarden.store import Store
from chargewarden.store.errors import StoreError
from chargewarden.store.job_records import JobKind, JobRecord, JobState
from chargewarden.store.records import StationRecord


def job(identity: str | None = "CP1", **fields: object) -> JobRecord:
    values: dict[str, object] = {
        "kind": JobKind.ROTATE_CREDENTIALS,
        "state": JobState.PENDING,
        "step": "prepare",
        "actor": "alice",
        "station_identity": identity,
    }
    values.update(fields)
    return JobRecord(**values)  # type: ignore[arg-type]


async def test_job_round_trip_save_and_trail(store: Store) -> None:
    stored = await store.jobs.add(job(params={"to": 3}), detail="started by alice")
    assert stored.id is not None and stored.params == {"to": 3} and stored.created_at
    saved = await store.jobs.save(
        stored.id,
        state=JobState.RUNNING,
        step="send",
        context={"credential_ref": "abc"},
        trail=("prepare", "done", "generated"),
    )
    assert (saved.state, saved.step, saved.context) == (
        JobState.RUNNING,
        "send",
        {"credential_ref": "abc"},
    )
    finished = await store.jobs.save(
        stored.id,
        state=JobState.SUCCEEDED,
        finished_at=saved.updated_at,
        trail=("send", "succeeded", "ok"),
    )
    assert finished.state.finished
    steps = await store.jobs.steps(stored.id)
    assert [(s.step, s.outcome) for s in steps] == [
        ("prepare", "created"),
        ("prepare", "done"),
        ("send", "succeeded"),
    ]
    # A finished job is never changed again (a late step must not revive it).
    with pytest.raises(StoreError):
        await store.jobs.save(stored.id, state=JobState.RUNNING)
    assert await store.jobs.request_cancel(stored.id, "bob") is None


async def test_active_listing_cancel_and_one_active_job_per_station(store: Store) -> None:
    first = await store.jobs.add(job("A"))
    await store.jobs.add(job("B", state=JobState.SUCCEEDED))
    assert [j.station_identity for j in await store.jobs.active()] == ["A"]
    assert (await store.jobs.active_for_station("A")) == first
    assert await store.jobs.active_for_station("B") is None
    assert first.id is not None
    marked = await store.jobs.request_cancel(first.id, "bob")
    assert marked is not None and marked.cancel_requested
    assert (await store.jobs.steps(first.id))[-1].outcome == "cancel-requested"
    assert [j.station_identity for j in await store.jobs.list(state=JobState.PENDING)] == ["A"]
    with pytest.raises(TypeError):
        await store.jobs.save(first.id, actor="mallory")


async def test_fleet_with_children_in_one_transaction(store: Store) -> None:
    parent, children = await store.jobs.add_fleet(
        job(None, kind=JobKind.FLEET, step="children", params={"concurrency": 2}),
        [job("A"), job("B"), job("C")],
    )
    assert parent.id is not None and all(c.parent_id == parent.id for c in children)
    assert await store.jobs.children_by_state(parent.id) == {JobState.PENDING: 3}
    assert [j.id for j in await store.jobs.list(top_level=True)] == [parent.id]
    assert len(await store.jobs.list(parent_id=parent.id)) == 3


async def test_pending_credential_promoted_or_dropped_exactly_once(store: Store) -> None:
    await store.stations.add(
        StationRecord(
            "CP1", OcppVersion.V16, 1, credential_hash="old", pending_credential_hash="new"
        )
    )
    await store.stations.update("CP1", needs_credential_update=True)
    # The gateway and the rotation may both try, concurrently: one wins, nothing breaks.
    results = await asyncio.gather(
        store.stations.promote_pending_credential("CP1", "new"),
        store.stations.promote_pending_credential("CP1", "new"),
    )
    assert sorted(results) == [False, True]
    record = await store.stations.get("CP1")
    assert record is not None
    assert (record.credential_hash, record.pending_credential_hash) == ("new", None)
    assert not record.needs_credential_update
    # Dropping or promoting a pending credential that was replaced meanwhile does nothing.
    await store.stations.update("CP1", pending_credential_hash="newer")
    assert not await store.stations.drop_pending_credential("CP1", "stale")
    assert not await store.stations.promote_pending_credential("CP1", "stale")
    assert await store.stations.drop_pending_credential("CP1", "newer")
    record = await store.stations.get("CP1")
    assert record is not None and (record.credential_hash, record.pending_credential_hash) == (
        "new",
        None,
    )
