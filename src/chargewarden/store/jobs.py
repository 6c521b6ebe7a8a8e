"""Durable jobs and their audit trail (the workflow engine's persistence)."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chargewarden.store.base import Repository, check_page
from chargewarden.store.errors import StoreError
from chargewarden.store.job_records import (
    ACTIVE_STATES,
    JobKind,
    JobRecord,
    JobState,
    JobStepRecord,
)
from chargewarden.store.mapping import utcnow
from chargewarden.store.models import JobRow, JobStepRow

_MESSAGE_CHARS = 500
_DETAIL_CHARS = 1000
_CHANGEABLE = {
    "state",
    "step",
    "context",
    "message",
    "attempts",
    "wake_at",
    "deadline",
    "finished_at",
}


def _job_record(row: JobRow) -> JobRecord:
    return JobRecord(
        id=row.id,
        kind=JobKind(row.kind),
        state=JobState(row.state),
        step=row.step,
        actor=row.actor,
        station_identity=row.station_identity,
        parent_id=row.parent_id,
        params=dict(row.params or {}),
        context=dict(row.context or {}),
        message=row.message,
        attempts=row.attempts,
        cancel_requested=row.cancel_requested,
        wake_at=row.wake_at,
        deadline=row.deadline,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )


def _step_record(row: JobStepRow) -> JobStepRecord:
    return JobStepRecord(
        id=row.id,
        job_id=row.job_id,
        at=row.at,
        step=row.step,
        outcome=row.outcome,
        detail=row.detail,
    )


def _clip(text: str | None, limit: int) -> str | None:
    return text[:limit] if text else text


def _job_values(record: JobRecord, now: datetime) -> dict[str, Any]:
    return {
        "kind": JobKind(record.kind).value,
        "state": JobState(record.state).value,
        "step": record.step,
        "actor": record.actor,
        "station_identity": record.station_identity,
        "parent_id": record.parent_id,
        "params": dict(record.params),
        "context": dict(record.context),
        "message": _clip(record.message, _MESSAGE_CHARS),
        "attempts": record.attempts,
        "cancel_requested": record.cancel_requested,
        "wake_at": record.wake_at,
        "deadline": record.deadline,
        "created_at": now,
        "updated_at": now,
        "finished_at": record.finished_at,
    }


async def _insert(
    session: AsyncSession, record: JobRecord, now: datetime, detail: str | None
) -> JobRecord:
    """One job and the first line of its trail."""
    stmt = insert(JobRow).values(**_job_values(record, now)).returning(JobRow)
    row = (await session.execute(stmt)).scalar_one()
    session.add(
        JobStepRow(
            job_id=row.id,
            at=now,
            step=row.step,
            outcome="created",
            detail=_clip(detail, _DETAIL_CHARS),
        )
    )
    return _job_record(row)


class JobRepository(Repository):
    async def add(self, record: JobRecord, *, detail: str | None = None) -> JobRecord:
        """Store a new job and the first line of its trail."""
        return (await self.add_many([record], detail=detail))[0]

    async def add_many(
        self, records: Sequence[JobRecord], *, detail: str | None = None
    ) -> builtins.list[JobRecord]:
        """Several jobs in one transaction: all or none."""
        now = utcnow()
        async with self._transaction() as session:
            return [await _insert(session, record, now, detail) for record in records]

    async def add_fleet(
        self, parent: JobRecord, children: Sequence[JobRecord], *, detail: str | None = None
    ) -> tuple[JobRecord, builtins.list[JobRecord]]:
        """A fleet job and its children in one transaction, children pointing at the parent."""
        now = utcnow()
        async with self._transaction() as session:
            fleet = await _insert(session, parent, now, detail)
            kids = [
                await _insert(
                    session,
                    replace(child, parent_id=fleet.id),
                    now,
                    f"part of fleet job {fleet.id}",
                )
                for child in children
            ]
            return fleet, kids

    async def get(self, job_id: int) -> JobRecord | None:
        async with self._transaction() as session:
            row = await session.get(JobRow, job_id)
            return _job_record(row) if row is not None else None

    async def save(
        self,
        job_id: int,
        *,
        trail: tuple[str, str, str | None] | None = None,
        **changes: Any,
    ) -> JobRecord:
        """Change a job and append ``(step, outcome, detail)`` to its trail, atomically.

        A finished job is never changed again: StoreError if it is (a cancelled job whose
        last step was still running must not come back to life).
        """
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise TypeError(f"not changeable on a job: {', '.join(sorted(unknown))}")
        values = dict(changes)
        if "state" in values:
            values["state"] = JobState(values["state"]).value
        if "message" in values:
            values["message"] = _clip(values["message"], _MESSAGE_CHARS)
        now = utcnow()
        stmt = (
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state.in_([s.value for s in ACTIVE_STATES]))
            .values(**values, updated_at=now)
            .returning(JobRow)
        )
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:
                raise StoreError(f"job {job_id} does not exist or has already finished")
            if trail is not None:
                step, outcome, detail = trail
                session.add(
                    JobStepRow(
                        job_id=job_id,
                        at=now,
                        step=step,
                        outcome=outcome,
                        detail=_clip(detail, _DETAIL_CHARS),
                    )
                )
            return _job_record(row)

    async def request_cancel(self, job_id: int, actor: str) -> JobRecord | None:
        """Flag an unfinished job for cancellation; None if it does not exist or is finished."""
        now = utcnow()
        stmt = (
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state.in_([s.value for s in ACTIVE_STATES]))
            .values(cancel_requested=True, updated_at=now)
            .returning(JobRow)
        )
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:
                return None
            session.add(
                JobStepRow(
                    job_id=job_id,
                    at=now,
                    step=row.step,
                    outcome="cancel-requested",
                    detail=f"by {actor}"[:_DETAIL_CHARS],
                )
            )
            return _job_record(row)

    async def active(self) -> builtins.list[JobRecord]:
        """Every unfinished job, oldest first: what the engine resumes at start."""
        stmt = (
            select(JobRow)
            .where(JobRow.state.in_([s.value for s in ACTIVE_STATES]))
            .order_by(JobRow.id)
        )
        async with self._transaction() as session:
            return [_job_record(row) for row in await session.scalars(stmt)]

    async def active_for_station(
        self, identity: str, *, exclude: Collection[JobKind] = ()
    ) -> JobRecord | None:
        """The station's oldest unfinished job, leaving out jobs of the ``exclude`` kinds (log
        fetches run beside rotations and upgrades, so they neither block nor are blocked)."""
        conditions = [
            JobRow.station_identity == identity,
            JobRow.state.in_([s.value for s in ACTIVE_STATES]),
        ]
        if exclude:
            conditions.append(JobRow.kind.not_in([JobKind(k).value for k in exclude]))
        stmt = select(JobRow).where(*conditions).order_by(JobRow.id).limit(1)
        async with self._transaction() as session:
            row = (await session.scalars(stmt)).first()
            return _job_record(row) if row is not None else None

    async def list(
        self,
        *,
        state: JobState | None = None,
        kind: JobKind | None = None,
        station_identity: str | None = None,
        parent_id: int | None = None,
        top_level: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[JobRecord]:
        """Newest first. ``top_level`` leaves out the children of fleet jobs."""
        check_page(limit, offset)
        stmt = select(JobRow)
        if state is not None:
            stmt = stmt.where(JobRow.state == JobState(state).value)
        if kind is not None:
            stmt = stmt.where(JobRow.kind == JobKind(kind).value)
        if station_identity is not None:
            stmt = stmt.where(JobRow.station_identity == station_identity)
        if parent_id is not None:
            stmt = stmt.where(JobRow.parent_id == parent_id)
        elif top_level:
            stmt = stmt.where(JobRow.parent_id.is_(None))
        stmt = stmt.order_by(JobRow.id.desc()).limit(limit).offset(offset)
        async with self._transaction() as session:
            return [_job_record(row) for row in await session.scalars(stmt)]

    async def steps(self, job_id: int) -> builtins.list[JobStepRecord]:
        stmt = select(JobStepRow).where(JobStepRow.job_id == job_id).order_by(JobStepRow.id)
        async with self._transaction() as session:
            return [_step_record(row) for row in await session.scalars(stmt)]

    async def count_by_kind_and_state(self) -> dict[tuple[str, str], int]:
        """Jobs per (kind, state), finished ones included: one GROUP BY, for the metrics scrape."""
        stmt = select(JobRow.kind, JobRow.state, func.count()).group_by(JobRow.kind, JobRow.state)
        async with self._transaction() as session:
            rows = (await session.execute(stmt)).all()
        return {(str(kind), str(state)): int(count) for kind, state, count in rows}

    async def children_by_state(self, parent_id: int) -> dict[JobState, int]:
        stmt = (
            select(JobRow.state, func.count())
            .where(JobRow.parent_id == parent_id)
            .group_by(JobRow.state)
        )
        async with self._transaction() as session:
            rows = (await session.execute(stmt)).all()
        return {JobState(state): int(count) for state, count in rows}
