"""Log requests (GetLog) and the per-request tokens of file-transfer URLs."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from chargewarden.store.base import Repository, check_page
from chargewarden.store.mapping import aware, utcnow
from chargewarden.store.models import FileTokenRow, LogRequestRow
from chargewarden.store.tracked import TrackedRepository, clip_reason
from chargewarden.store.transfer_records import (
    FileTokenRecord,
    LogRequestRecord,
    LogRequestState,
    LogType,
    TransferPurpose,
    history_from_json,
)


def _log_record(row: LogRequestRow) -> LogRequestRecord:
    return LogRequestRecord(
        id=row.id,
        station_identity=row.station_identity,
        log_type=LogType(row.log_type),
        state=LogRequestState(row.state),
        actor=row.actor,
        since=row.since,
        until=row.until,
        job_id=row.job_id,
        response_status=row.response_status,
        station_filename=row.station_filename,
        station_status=row.station_status,
        history=history_from_json(row.history),
        stored_path=row.stored_path,
        size=row.size,
        sha256=row.sha256,
        uploaded_at=row.uploaded_at,
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _token_record(row: FileTokenRow) -> FileTokenRecord:
    return FileTokenRecord(
        id=row.id,
        token_sha256=row.token_sha256,
        purpose=TransferPurpose(row.purpose),
        station_identity=row.station_identity,
        ref_id=row.ref_id,
        expires_at=row.expires_at,
        used_at=row.used_at,
        uses=row.uses,
        created_at=row.created_at,
    )


class LogRequestRepository(TrackedRepository):
    row = LogRequestRow
    to_record = staticmethod(_log_record)
    changeable = frozenset(
        {
            "state",
            "job_id",
            "response_status",
            "station_filename",
            "station_status",
            "stored_path",
            "size",
            "sha256",
            "uploaded_at",
            "reason",
        }
    )

    async def add(self, record: LogRequestRecord) -> LogRequestRecord:
        now = utcnow()
        values: dict[str, Any] = {
            "station_identity": record.station_identity,
            "log_type": LogType(record.log_type).value,
            "state": LogRequestState(record.state).value,
            "since": aware(record.since, "since") if record.since else None,
            "until": aware(record.until, "until") if record.until else None,
            "job_id": record.job_id,
            "actor": record.actor,
            "history": [],
            "reason": clip_reason(record.reason),
            "created_at": now,
            "updated_at": now,
        }
        stmt = self._insert(LogRequestRow).values(**values).returning(LogRequestRow)
        async with self._transaction() as session:
            return _log_record((await session.execute(stmt)).scalar_one())

    async def list(
        self,
        *,
        station: str | None = None,
        log_type: LogType | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[LogRequestRecord]:
        """Newest first."""
        check_page(limit, offset)
        stmt = select(LogRequestRow)
        if station is not None:
            stmt = stmt.where(LogRequestRow.station_identity == station)
        if log_type is not None:
            stmt = stmt.where(LogRequestRow.log_type == LogType(log_type).value)
        stmt = stmt.order_by(LogRequestRow.id.desc()).limit(limit).offset(offset)
        async with self._transaction() as session:
            return [_log_record(row) for row in await session.scalars(stmt)]


class FileTokenRepository(Repository):
    async def add(self, record: FileTokenRecord) -> FileTokenRecord:
        values = {
            "token_sha256": record.token_sha256,
            "purpose": TransferPurpose(record.purpose).value,
            "station_identity": record.station_identity,
            "ref_id": record.ref_id,
            "expires_at": aware(record.expires_at, "expires_at"),
            "used_at": None,
            "uses": 0,
            "created_at": utcnow(),
        }
        stmt = self._insert(FileTokenRow).values(**values).returning(FileTokenRow)
        async with self._transaction() as session:
            return _token_record((await session.execute(stmt)).scalar_one())

    async def find(self, token_sha256: str) -> FileTokenRecord | None:
        stmt = select(FileTokenRow).where(FileTokenRow.token_sha256 == token_sha256)
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            return _token_record(row) if row is not None else None

    async def for_ref(self, purpose: TransferPurpose, ref_id: int) -> FileTokenRecord | None:
        """The newest token of a request."""
        stmt = (
            select(FileTokenRow)
            .where(FileTokenRow.purpose == purpose.value, FileTokenRow.ref_id == ref_id)
            .order_by(FileTokenRow.id.desc())
            .limit(1)
        )
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            return _token_record(row) if row is not None else None

    async def count_use(self, token_id: int) -> None:
        stmt = (
            update(FileTokenRow)
            .where(FileTokenRow.id == token_id)
            .values(uses=FileTokenRow.uses + 1)
        )
        async with self._transaction() as session:
            await session.execute(stmt)

    async def claim(self, token_id: int, at: datetime) -> bool:
        """Mark a single-use token used; False if it was used already (the first claim wins)."""
        stmt = (
            update(FileTokenRow)
            .where(FileTokenRow.id == token_id, FileTokenRow.used_at.is_(None))
            .values(used_at=aware(at, "at"), uses=FileTokenRow.uses + 1)
            .returning(FileTokenRow.id)
        )
        async with self._transaction() as session:
            return (await session.execute(stmt)).scalar_one_or_none() is not None

    async def expire(self, purpose: TransferPurpose, ref_id: int, at: datetime) -> None:
        """End every token of a request now (a finished or cancelled request)."""
        stmt = (
            update(FileTokenRow)
            .where(
                FileTokenRow.purpose == purpose.value,
                FileTokenRow.ref_id == ref_id,
                FileTokenRow.expires_at > aware(at, "at"),
            )
            .values(expires_at=aware(at, "at"))
        )
        async with self._transaction() as session:
            await session.execute(stmt)

    async def purge_expired(self, before: datetime) -> int:
        stmt = delete(FileTokenRow).where(FileTokenRow.expires_at < aware(before, "before"))
        async with self._transaction() as session:
            result = await session.execute(stmt)
            return int(getattr(result, "rowcount", 0) or 0)
