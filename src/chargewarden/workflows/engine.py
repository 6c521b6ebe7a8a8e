"""The job engine: runs durable jobs step by step and resumes them after a restart.

Every unfinished job is held in memory (a fleet of thousands is a few MB) so that a station
connecting costs a dictionary lookup, not a query. The store is the truth: each step's outcome
is committed before the next step runs, and at start the engine reloads what was unfinished.

Scheduling: a job runs when it is new, when it was running at the last stop, when its station
connects, when its ``wake_at`` passes, or when it is cancelled. One driver task per job at a
time. Fleet children start only when their fleet job gives them a slot (see ``fleet``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime

from chargewarden.store.errors import StoreError
from chargewarden.store.job_records import JobKind, JobRecord, JobState
from chargewarden.workflows.steps import (
    Advance,
    Fail,
    Outcome,
    Succeed,
    Wait,
    Workflow,
    WorkflowDeps,
)

log = logging.getLogger(__name__)


class JobEngine:
    def __init__(self, deps: WorkflowDeps) -> None:
        self._deps = deps
        self._store = deps.store
        self._workflows: dict[JobKind, Workflow] = {}
        self._active: dict[int, JobRecord] = {}
        # identity → ids of its unfinished jobs: a connecting station costs one lookup.
        self._by_station: dict[str, set[int]] = {}
        self._due: set[int] = set()
        self._drivers: dict[int, asyncio.Task[None]] = {}
        self._wakeup = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def deps(self) -> WorkflowDeps:
        return self._deps

    def register(self, workflow: Workflow) -> None:
        self._workflows[workflow.kind] = workflow

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Reload unfinished jobs; those that were mid-step run again from that step."""
        for job in await self._store.jobs.active():
            assert job.id is not None
            self._remember(job)
            if job.state is JobState.RUNNING or (
                job.state is JobState.PENDING and job.parent_id is None
            ):
                self._due.add(job.id)
        if self._active:
            log.info("resuming %d unfinished job(s)", len(self._active))
        self._scheduler = asyncio.create_task(self._schedule_forever(), name="job-scheduler")

    async def stop(self) -> None:
        """Stop driving jobs. A step cut short is resumed at the next start, like a crash."""
        self._stopping = True
        tasks = [t for t in (self._scheduler, *self._drivers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._drivers.clear()

    # --- what the rest of the CSMS tells the engine ---------------------------------------

    async def submit(
        self, jobs: Sequence[JobRecord], *, detail: str | None = None
    ) -> list[JobRecord]:
        """Store new jobs (all or none) and schedule them."""
        stored = await self._store.jobs.add_many(jobs, detail=detail)
        for job in stored:
            assert job.id is not None
            self._remember(job)
            if job.parent_id is None:
                self._due.add(job.id)
        self._wakeup.set()
        return stored

    async def submit_fleet(
        self, parent: JobRecord, children: Sequence[JobRecord], *, detail: str | None = None
    ) -> JobRecord:
        """Store a fleet job with its children (one transaction) and schedule it."""
        stored, kids = await self._store.jobs.add_fleet(parent, children, detail=detail)
        for job in (stored, *kids):
            self._remember(job)
        assert stored.id is not None
        self._due.add(stored.id)
        self._wakeup.set()
        return stored

    def has_jobs_for(self, identity: str) -> bool:
        """Cheap check, so stations without jobs cost nothing when they connect."""
        return identity in self._by_station

    def station_connected(self, identity: str) -> None:
        """A station is back (its first message answered): look at its jobs again."""
        for job_id in self._by_station.get(identity, ()):
            job = self._active[job_id]
            if job.state is JobState.WAITING:
                self._due.add(job_id)
            elif job.state is JobState.PENDING and job.parent_id is not None:
                self._due.add(job.parent_id)  # its fleet job may start it now
        self._wakeup.set()

    async def cancel(self, job_id: int, actor: str) -> JobRecord | None:
        """Ask a job (and a fleet job's children) to stop; None if it is unknown or finished."""
        job = await self._store.jobs.request_cancel(job_id, actor)
        if job is None:
            return None
        self._remember(job)
        if job.kind is JobKind.FLEET:
            for child in [c for c in self._active.values() if c.parent_id == job_id]:
                assert child.id is not None
                marked = await self._store.jobs.request_cancel(child.id, actor)
                if marked is not None:
                    self._remember(marked)
                    self._due.add(child.id)
        self._due.add(job_id)
        self._wakeup.set()
        return job

    def poke(self, job_id: int) -> None:
        if job_id in self._active:
            self._due.add(job_id)
            self._wakeup.set()

    # --- fleet support ----------------------------------------------------------------------

    def active_children(self, parent_id: int) -> list[JobRecord]:
        return [job for job in self._active.values() if job.parent_id == parent_id]

    async def start_child(self, child: JobRecord) -> JobRecord:
        assert child.id is not None
        job = await self._store.jobs.save(
            child.id,
            state=JobState.RUNNING,
            trail=(child.step, "started", "slot given by its fleet job"),
        )
        self._remember(job)
        self._due.add(child.id)
        self._wakeup.set()
        return job

    # --- scheduling -------------------------------------------------------------------------

    def _remember(self, job: JobRecord) -> None:
        assert job.id is not None
        identity = job.station_identity
        if job.state.finished:
            self._active.pop(job.id, None)
            self._due.discard(job.id)
            if identity is not None:
                ids = self._by_station.get(identity, set())
                ids.discard(job.id)
                if not ids:
                    self._by_station.pop(identity, None)
        else:
            self._active[job.id] = job
            if identity is not None:
                self._by_station.setdefault(identity, set()).add(job.id)

    async def _schedule_forever(self) -> None:
        poll = self._deps.settings.poll_seconds
        while True:
            self._wakeup.clear()
            self._start_due(self._deps.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=poll)

    def _start_due(self, now: datetime) -> None:
        for job_id, job in list(self._active.items()):
            if job.wake_at is not None and job.wake_at <= now and job.state is JobState.WAITING:
                self._due.add(job_id)
            if job.cancel_requested:
                self._due.add(job_id)
        for job_id in list(self._due):
            if job_id in self._drivers:
                continue  # runs again when the current driver ends (see _drive)
            self._due.discard(job_id)
            job = self._active.get(job_id)
            if job is None:
                continue
            if (
                job.state is JobState.PENDING
                and job.parent_id is not None
                and not job.cancel_requested
            ):
                continue  # a fleet child waits for its slot
            self._drivers[job_id] = asyncio.create_task(self._drive(job_id), name=f"job-{job_id}")

    async def _drive(self, job_id: int) -> None:
        job = self._active[job_id]
        workflow = self._workflows.get(job.kind)
        if workflow is None:
            await self._orphaned(job)
            return
        try:
            while not self._stopping:
                if job.cancel_requested:
                    detail = await workflow.cancel(job)
                    job = await self._finish(job, JobState.CANCELLED, "cancelled", detail)
                    break
                if job.state is JobState.PENDING:
                    job = await self._store.jobs.save(
                        job_id, state=JobState.RUNNING, trail=(job.step, "started", None)
                    )
                    self._remember(job)
                outcome = await self._run_step(workflow, job)
                job = await self._apply(job, outcome)
                if job.state.finished or isinstance(outcome, Wait):
                    break
        except StoreError as exc:
            # The store is down or the job was finished elsewhere: leave the job as stored; it
            # is retried at the next wake-up or restart, never half-applied.
            log.warning("job %s: %s; will retry", job_id, exc)
            job = await self._reload(job)
        finally:
            self._drivers.pop(job_id, None)
            if job.state.finished:
                workflow.forget(job_id)
                if job.parent_id is not None:
                    self.poke(job.parent_id)
            if job_id in self._due or job.cancel_requested:
                self._wakeup.set()

    async def _orphaned(self, job: JobRecord) -> None:
        """A job of a kind this server does not run now (e.g. a firmware update after file
        transfer was turned off): failed with the reason, rather than left to hang."""
        try:
            await self._finish(
                job,
                JobState.FAILED,
                "failed",
                f"this server does not run {job.kind} jobs now (is file transfer turned off?)",
            )
        except StoreError as exc:
            log.warning("job %s: %s; will retry", job.id, exc)
        finally:
            self._drivers.pop(job.id or 0, None)

    async def _reload(self, job: JobRecord) -> JobRecord:
        assert job.id is not None
        try:
            stored = await self._store.jobs.get(job.id)
        except StoreError:
            return job  # still down: keep what we had, the next wake-up tries again
        if stored is None:
            self._active.pop(job.id, None)
            if job.station_identity is not None:
                self._by_station.get(job.station_identity, set()).discard(job.id)
            return job
        self._remember(stored)
        return stored

    async def _run_step(self, workflow: Workflow, job: JobRecord) -> Outcome:
        try:
            return await workflow.step(job)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in one step must not stop the engine
            log.exception("job %s: step %s failed unexpectedly", job.id, job.step)
            return Fail(f"internal error in step {job.step}: {type(exc).__name__}")

    async def _apply(self, job: JobRecord, outcome: Outcome) -> JobRecord:
        assert job.id is not None
        jobs = self._store.jobs
        if isinstance(outcome, Advance):
            saved = await jobs.save(
                job.id,
                state=JobState.RUNNING,
                step=outcome.step,
                context={**job.context, **outcome.context},
                message=outcome.detail or job.message,
                wake_at=None,
                trail=(job.step, "done", outcome.detail or None),
            )
        elif isinstance(outcome, Wait):
            # One trail line per distinct wait, not one per poll or progress update.
            repeated = job.state is JobState.WAITING and job.step == outcome.step
            saved = await jobs.save(
                job.id,
                state=JobState.WAITING,
                step=outcome.step,
                context={**job.context, **outcome.context},
                message=outcome.reason,
                wake_at=outcome.wake_at,
                deadline=outcome.deadline if outcome.deadline is not None else job.deadline,
                trail=None if repeated else (outcome.step, "waiting", outcome.reason),
            )
        elif isinstance(outcome, Succeed):
            saved = await self._finish(job, JobState.SUCCEEDED, "succeeded", outcome.detail)
        else:
            saved = await self._finish(job, JobState.FAILED, "failed", outcome.reason)
        self._remember(saved)
        return saved

    async def _finish(
        self, job: JobRecord, state: JobState, outcome: str, detail: str
    ) -> JobRecord:
        assert job.id is not None
        saved = await self._store.jobs.save(
            job.id,
            state=state,
            message=detail,
            wake_at=None,
            finished_at=self._deps.clock(),
            trail=(job.step, outcome, detail),
        )
        self._remember(saved)
        log.info(
            "job %s (%s %s) %s: %s", job.id, job.kind, job.station_identity or "", state, detail
        )
        return saved
