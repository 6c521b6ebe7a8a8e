"""Security events (station notifications and the CSMS's own) and the operator audit log.

Both are append-only: there is deliberately no update. Security events are deleted only by
retention (``purge_older_than``, run by security/retention.py); the audit log never is.
"""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select

from chargewarden.store.base import Repository, check_page
from chargewarden.store.mapping import (
    audit_record,
    audit_values,
    aware,
    event_record,
    event_values,
    utcnow,
)
from chargewarden.store.models import AuditRow, SecurityEventRow
from chargewarden.store.records import AuditRecord, EventSource, SecurityEventRecord


class SecurityEventRepository(Repository):
    async def add(self, event: SecurityEventRecord) -> SecurityEventRecord:
        """Store an event; returns it with id and (unless given) received_at filled in."""
        stmt = (
            self._insert(SecurityEventRow)
            .values(**event_values(event, utcnow()))
            .returning(SecurityEventRow)
        )
        async with self._transaction() as session:
            return event_record((await session.execute(stmt)).scalar_one())

    async def list(
        self,
        *,
        station: str | None = None,
        critical: bool | None = None,
        source: EventSource | None = None,
        type: str | None = None,  # the field is called type (API, CLI)
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[SecurityEventRecord]:
        """Matching events, newest received first.

        ``since`` is inclusive and ``until`` exclusive, both on ``received_at`` (the CSMS's
        clock: a station's own timestamp may be wrong, and that is sometimes the event).
        """
        check_page(limit, offset)
        stmt = (
            select(SecurityEventRow)
            .where(*_filters(station, critical, source, type, since, until))
            # id breaks ties between events received within the same clock tick.
            .order_by(SecurityEventRow.received_at.desc(), SecurityEventRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._transaction() as session:
            return [event_record(row) for row in await session.scalars(stmt)]

    async def count(
        self,
        *,
        station: str | None = None,
        critical: bool | None = None,
        source: EventSource | None = None,
        type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        stmt = (
            select(func.count())
            .select_from(SecurityEventRow)
            .where(*_filters(station, critical, source, type, since, until))
        )
        async with self._transaction() as session:
            return (await session.execute(stmt)).scalar_one()

    async def purge_older_than(self, cutoff: datetime, *, batch: int = 1000) -> int:
        """Delete at most ``batch`` events received before ``cutoff``; returns how many.

        The only way events leave the store (retention). One bounded batch per transaction,
        so a large backlog never holds the single SQLite writer lock for long; callers loop
        until fewer than ``batch`` come back.
        """
        check_page(batch, 0)
        victims = (
            select(SecurityEventRow.id)
            .where(SecurityEventRow.received_at < aware(cutoff, "cutoff"))
            .limit(batch)
        ).scalar_subquery()
        stmt = delete(SecurityEventRow).where(SecurityEventRow.id.in_(victims))
        async with self._transaction() as session:
            result = await session.execute(stmt)
            return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _filters(
    station: str | None,
    critical: bool | None,
    source: EventSource | None,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
) -> builtins.list[ColumnElement[bool]]:
    conditions: builtins.list[ColumnElement[bool]] = []
    if station is not None:
        conditions.append(SecurityEventRow.station_identity == station)
    if critical is not None:
        conditions.append(SecurityEventRow.critical.is_(bool(critical)))
    if source is not None:
        conditions.append(SecurityEventRow.source == EventSource(source).value)
    if event_type is not None:
        conditions.append(SecurityEventRow.type == event_type)
    # Both bounds use the received_at index (ix_security_events_received_at, or the
    # (station_identity, received_at) one when a station is given as well).
    if since is not None:
        conditions.append(SecurityEventRow.received_at >= aware(since, "since"))
    if until is not None:
        conditions.append(SecurityEventRow.received_at < aware(until, "until"))
    return conditions


class AuditRepository(Repository):
    async def add(self, record: AuditRecord) -> AuditRecord:
        """Append an entry; returns it with id and (unless given) ``at`` filled in.

        ``details`` is stored as JSON. Callers must leave secrets out: the log is meant to be
        read and exported.
        """
        stmt = self._insert(AuditRow).values(**audit_values(record, utcnow())).returning(AuditRow)
        async with self._transaction() as session:
            return audit_record((await session.execute(stmt)).scalar_one())

    async def list(
        self, *, limit: int = 100, offset: int = 0, target: str | None = None
    ) -> builtins.list[AuditRecord]:
        """Entries, newest first, optionally only those about ``target``."""
        check_page(limit, offset)
        stmt = select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc())
        if target is not None:
            stmt = stmt.where(AuditRow.target == target)
        async with self._transaction() as session:
            rows = await session.scalars(stmt.limit(limit).offset(offset))
            return [audit_record(row) for row in rows]
