"""Stations and the status of their connectors."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargewarden.store.base import Repository
from chargewarden.store.errors import StationExists, StationNotFound
from chargewarden.store.mapping import (
    aware,
    connector_record,
    connector_values,
    station_changes,
    station_record,
    station_values,
    utcnow,
)
from chargewarden.store.models import ConnectorStatusRow, StationRow
from chargewarden.store.point_reads import PointReads
from chargewarden.store.records import ConnectorStatusRecord, StationRecord


class StationRepository(Repository):
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], dialect: str, point_reads: PointReads
    ) -> None:
        super().__init__(sessions, dialect)
        self._point_reads = point_reads

    async def add(self, record: StationRecord) -> StationRecord:
        """Register a station; StationExists if the identity is taken."""
        stmt = (
            self._insert(StationRow)
            .values(**station_values(record, utcnow()))
            .on_conflict_do_nothing(index_elements=[StationRow.identity])
            .returning(StationRow)
        )
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:
                raise StationExists(f"station {record.identity!r} already exists")
            return station_record(row)

    async def get(self, identity: str) -> StationRecord | None:
        return await self._point_reads.station(identity)

    async def list(self) -> builtins.list[StationRecord]:
        async with self._transaction() as session:
            rows = await session.scalars(select(StationRow).order_by(StationRow.identity))
            return [station_record(row) for row in rows]

    async def update(self, identity: str, **changes: Any) -> StationRecord:
        """Change fields of a station and return it as stored.

        TypeError for a field that is not a StationRecord field or is identity/created_at;
        StationNotFound if there is no such station.
        """
        values = station_changes(changes)
        values["updated_at"] = utcnow()
        stmt = (
            update(StationRow)
            .where(StationRow.identity == identity)
            .values(**values)
            .returning(StationRow)
        )
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:
                raise StationNotFound(f"no station {identity!r}")
            return station_record(row)

    async def promote_pending_credential(self, identity: str, pending_hash: str) -> bool:
        """Make the pending credential the only one, if it is still ``pending_hash``.

        Conditional so the gateway (the station proved it holds the new secret) and a rotation
        (the station answered Accepted) can both do it, in either order, exactly once.
        """
        stmt = (
            update(StationRow)
            .where(
                StationRow.identity == identity,
                StationRow.pending_credential_hash == pending_hash,
            )
            .values(
                credential_hash=StationRow.pending_credential_hash,
                pending_credential_hash=None,
                needs_credential_update=False,
                updated_at=utcnow(),
            )
            .returning(StationRow.id)
        )
        async with self._transaction() as session:
            return (await session.execute(stmt)).scalar_one_or_none() is not None

    async def drop_pending_credential(self, identity: str, pending_hash: str) -> bool:
        """Forget the pending credential, if it is still ``pending_hash`` (change refused)."""
        stmt = (
            update(StationRow)
            .where(
                StationRow.identity == identity,
                StationRow.pending_credential_hash == pending_hash,
            )
            .values(pending_credential_hash=None, updated_at=utcnow())
            .returning(StationRow.id)
        )
        async with self._transaction() as session:
            return (await session.execute(stmt)).scalar_one_or_none() is not None

    async def touch(self, identity: str, at: datetime) -> None:
        """Record that the station was heard from at ``at``; no-op for an unknown identity.

        Called for every message, so it is one UPDATE and leaves updated_at alone (that tracks
        changes to the station's configuration, not its traffic).
        """
        stmt = (
            update(StationRow)
            .where(StationRow.identity == identity)
            .values(last_seen=aware(at, "at"))
            .execution_options(synchronize_session=False)
        )
        async with self._transaction() as session:
            await session.execute(stmt)

    async def touch_many(self, seen: Mapping[str, datetime]) -> None:
        """Several stations' last_seen in one transaction (write-behind presence)."""
        if not seen:
            return
        async with self._transaction() as session:
            for identity, at in seen.items():
                await session.execute(
                    update(StationRow)
                    .where(StationRow.identity == identity)
                    .values(last_seen=aware(at, "at"))
                    .execution_options(synchronize_session=False)
                )


class ConnectorStatusRepository(Repository):
    async def upsert(self, record: ConnectorStatusRecord) -> None:
        """Store the latest status of one connector; StationNotFound for an unknown station."""
        insert = self._insert(ConnectorStatusRow).values(**connector_values(record, utcnow()))
        stmt = insert.on_conflict_do_update(
            index_elements=[
                ConnectorStatusRow.station_identity,
                ConnectorStatusRow.evse_id,
                ConnectorStatusRow.connector_id,
            ],
            set_={
                "status": insert.excluded.status,
                "error_code": insert.excluded.error_code,
                "updated_at": insert.excluded.updated_at,
            },
        )
        async with self._transaction() as session:
            try:
                await session.execute(stmt)
            except IntegrityError:
                # The only constraint an upsert can break is the foreign key to stations.
                raise StationNotFound(f"no station {record.station_identity!r}") from None

    async def list(self, station_identity: str) -> builtins.list[ConnectorStatusRecord]:
        stmt = (
            select(ConnectorStatusRow)
            .where(ConnectorStatusRow.station_identity == station_identity)
            .order_by(ConnectorStatusRow.evse_id, ConnectorStatusRow.connector_id)
        )
        async with self._transaction() as session:
            return [connector_record(row) for row in await session.scalars(stmt)]
