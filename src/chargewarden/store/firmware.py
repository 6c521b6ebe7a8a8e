"""Firmware releases (checked, signed images) and the updates sent to stations."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import func, select

from chargewarden.store.base import Repository, check_page
from chargewarden.store.errors import StoreError
from chargewarden.store.mapping import aware, utcnow
from chargewarden.store.models import FirmwareReleaseRow, FirmwareUpdateRow
from chargewarden.store.tracked import TrackedRepository, clip_reason
from chargewarden.store.transfer_records import (
    FirmwareReleaseRecord,
    FirmwareUpdateRecord,
    FirmwareUpdateState,
    history_from_json,
)


class ReleaseExists(StoreError):
    pass


def _release_record(row: FirmwareReleaseRow) -> FirmwareReleaseRecord:
    return FirmwareReleaseRecord(
        id=row.id,
        name=row.name,
        filename=row.filename,
        sha256=row.sha256,
        size=row.size,
        signature=row.signature,
        signing_certificate_pem=row.signing_certificate_pem,
        signer_subject=row.signer_subject,
        algorithm=row.algorithm,
        signer_not_after=row.signer_not_after,
        actor=row.actor,
        created_at=row.created_at,
    )


def _update_record(row: FirmwareUpdateRow) -> FirmwareUpdateRecord:
    return FirmwareUpdateRecord(
        id=row.id,
        station_identity=row.station_identity,
        release_id=row.release_id,
        state=FirmwareUpdateState(row.state),
        retrieve_at=row.retrieve_at,
        install_at=row.install_at,
        retries=row.retries,
        retry_interval=row.retry_interval,
        job_id=row.job_id,
        actor=row.actor,
        response_status=row.response_status,
        station_status=row.station_status,
        history=history_from_json(row.history),
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class FirmwareReleaseRepository(Repository):
    async def add(self, record: FirmwareReleaseRecord) -> FirmwareReleaseRecord:
        """ReleaseExists if the name is taken."""
        values = {
            "name": record.name,
            "filename": record.filename,
            "sha256": record.sha256,
            "size": record.size,
            "signature": record.signature,
            "signing_certificate_pem": record.signing_certificate_pem,
            "signer_subject": record.signer_subject,
            "algorithm": record.algorithm,
            "signer_not_after": aware(record.signer_not_after, "signer_not_after"),
            "actor": record.actor,
            "created_at": utcnow(),
        }
        stmt = (
            self._insert(FirmwareReleaseRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(FirmwareReleaseRow)
        )
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:
                raise ReleaseExists(f"a firmware release named {record.name!r} exists already")
            return _release_record(row)

    async def get(self, release_id: int) -> FirmwareReleaseRecord | None:
        async with self._transaction() as session:
            row = await session.get(FirmwareReleaseRow, release_id)
            return _release_record(row) if row is not None else None

    async def by_name(self, name: str) -> FirmwareReleaseRecord | None:
        stmt = select(FirmwareReleaseRow).where(FirmwareReleaseRow.name == name)
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            return _release_record(row) if row is not None else None

    async def list(
        self, *, limit: int = 100, offset: int = 0
    ) -> builtins.list[FirmwareReleaseRecord]:
        check_page(limit, offset)
        stmt = (
            select(FirmwareReleaseRow)
            .order_by(FirmwareReleaseRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._transaction() as session:
            return [_release_record(row) for row in await session.scalars(stmt)]

    async def count(self) -> int:
        async with self._transaction() as session:
            stmt = select(func.count()).select_from(FirmwareReleaseRow)
            return (await session.execute(stmt)).scalar_one()


class FirmwareUpdateRepository(TrackedRepository):
    row = FirmwareUpdateRow
    to_record = staticmethod(_update_record)
    changeable = frozenset(
        {"state", "job_id", "response_status", "station_status", "reason", "retrieve_at"}
    )

    async def add(self, record: FirmwareUpdateRecord) -> FirmwareUpdateRecord:
        now = utcnow()
        values: dict[str, Any] = {
            "station_identity": record.station_identity,
            "release_id": record.release_id,
            "state": FirmwareUpdateState(record.state).value,
            "retrieve_at": aware(record.retrieve_at, "retrieve_at"),
            "install_at": aware(record.install_at, "install_at") if record.install_at else None,
            "retries": record.retries,
            "retry_interval": record.retry_interval,
            "job_id": record.job_id,
            "actor": record.actor,
            "history": [change.as_json() for change in record.history],
            "reason": clip_reason(record.reason),
            "created_at": now,
            "updated_at": now,
        }
        stmt = self._insert(FirmwareUpdateRow).values(**values).returning(FirmwareUpdateRow)
        async with self._transaction() as session:
            return _update_record((await session.execute(stmt)).scalar_one())

    async def list(
        self,
        *,
        station: str | None = None,
        release_id: int | None = None,
        job_ids: builtins.list[int] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[FirmwareUpdateRecord]:
        """Newest first."""
        check_page(limit, offset)
        stmt = select(FirmwareUpdateRow)
        if station is not None:
            stmt = stmt.where(FirmwareUpdateRow.station_identity == station)
        if release_id is not None:
            stmt = stmt.where(FirmwareUpdateRow.release_id == release_id)
        if job_ids is not None:
            stmt = stmt.where(FirmwareUpdateRow.job_id.in_(job_ids))
        stmt = stmt.order_by(FirmwareUpdateRow.id.desc()).limit(limit).offset(offset)
        async with self._transaction() as session:
            return [_update_record(row) for row in await session.scalars(stmt)]

    async def open_for_station(self, identity: str) -> builtins.list[FirmwareUpdateRecord]:
        open_states = [s.value for s in FirmwareUpdateState if s.open]
        stmt = (
            select(FirmwareUpdateRow)
            .where(
                FirmwareUpdateRow.station_identity == identity,
                FirmwareUpdateRow.state.in_(open_states),
            )
            .order_by(FirmwareUpdateRow.id)
        )
        async with self._transaction() as session:
            return [_update_record(row) for row in await session.scalars(stmt)]
