"""Fleet jobs: one child job per station, run with a concurrency limit, reported as progress.

A child starts only when its station is online and a slot is free, so offline stations do not
hold slots and the limit bounds how many stations are being changed (rebooting) at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from chargewarden.store.job_records import JobKind, JobRecord, JobState
from chargewarden.workflows.steps import Fail, Outcome, Succeed, Wait, WorkflowDeps

if TYPE_CHECKING:
    from chargewarden.workflows.engine import JobEngine


def progress_text(counts: dict[JobState, int]) -> str:
    total = sum(counts.values())
    finished = sum(n for state, n in counts.items() if state.finished)
    parts = [f"{finished}/{total} finished"]
    for state in JobState:
        if counts.get(state):
            parts.append(f"{counts[state]} {state}")
    return ", ".join(parts)


class FleetJob:
    kind = JobKind.FLEET

    def __init__(self, deps: WorkflowDeps, engine: JobEngine) -> None:
        self._deps = deps
        self._engine = engine

    def forget(self, job_id: int) -> None:
        return None

    async def step(self, job: JobRecord) -> Outcome:
        assert job.id is not None
        children = sorted(self._engine.active_children(job.id), key=lambda c: c.id or 0)
        busy = sum(1 for c in children if c.state in (JobState.RUNNING, JobState.WAITING))
        free = int(job.params.get("concurrency", 1)) - busy
        for child in children:
            if free <= 0:
                break
            if child.state is JobState.PENDING and child.station_identity is not None:
                if self._deps.registry.get(child.station_identity) is not None:
                    await self._engine.start_child(child)
                    free -= 1
        counts = await self._deps.store.jobs.children_by_state(job.id)
        text = progress_text(counts)
        if sum(counts.values()) == sum(n for state, n in counts.items() if state.finished):
            if counts.get(JobState.FAILED) or counts.get(JobState.CANCELLED):
                return Fail(text)
            return Succeed(text)
        offline = sum(
            1
            for c in children
            if c.state is JobState.PENDING
            and c.station_identity is not None
            and self._deps.registry.get(c.station_identity) is None
        )
        if offline:
            text += f" ({offline} waiting for their station to connect)"
        now = self._deps.clock()
        return Wait(
            "children", text, wake_at=now + timedelta(seconds=self._deps.settings.poll_seconds)
        )

    async def cancel(self, job: JobRecord) -> str:
        assert job.id is not None
        counts = await self._deps.store.jobs.children_by_state(job.id)
        return "cancelled; " + progress_text(counts)
