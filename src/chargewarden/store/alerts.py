"""Operator alerts: stored first, then logged and sent to the webhook (security/alerts.py).

Rows are only changed to count webhook delivery attempts, and deleted only by retention.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from chargewarden.store.base import Repository, check_page
from chargewarden.store.mapping import aware, utcnow
from chargewarden.store.models import AlertRow
from chargewarden.store.records import AlertRecord, AlertSeverity


class AlertRepository(Repository):
    async def add(self, alert: AlertRecord) -> AlertRecord:
        stmt = (
            self._insert(AlertRow)
            .values(
                at=aware(alert.at, "at") if alert.at else utcnow(),
                severity=AlertSeverity(alert.severity).value,
                kind=alert.kind,
                station_identity=alert.station_identity,
                message=alert.message[:1000],
                details=dict(alert.details),
                delivered_at=None,
                delivery_attempts=0,
            )
            .returning(AlertRow)
        )
        async with self._transaction() as session:
            return _alert((await session.execute(stmt)).scalar_one())

    async def get(self, alert_id: int) -> AlertRecord | None:
        async with self._transaction() as session:
            row = await session.get(AlertRow, alert_id)
            return _alert(row) if row is not None else None

    async def delivery_attempted(self, alert_id: int, *, delivered: bool) -> None:
        values: dict[str, Any] = {"delivery_attempts": AlertRow.delivery_attempts + 1}
        if delivered:
            values["delivered_at"] = utcnow()
        async with self._transaction() as session:
            await session.execute(update(AlertRow).where(AlertRow.id == alert_id).values(values))

    async def list(
        self, *, station_identity: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[AlertRecord]:
        check_page(limit, offset)
        stmt = select(AlertRow)
        if station_identity is not None:
            stmt = stmt.where(AlertRow.station_identity == station_identity)
        stmt = stmt.order_by(AlertRow.id.desc()).limit(limit).offset(offset)
        async with self._transaction() as session:
            return [_alert(row) for row in await session.scalars(stmt)]

    async def undelivered(
        self,
        *,
        max_attempts: int,
        since: datetime | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> builtins.list[AlertRecord]:
        """Alerts the webhook has not accepted yet and that have attempts left, oldest first.

        Paged by id (``after_id``) rather than offset: deliveries under way change the set.
        """
        check_page(limit, 0)
        conditions = [
            AlertRow.delivered_at.is_(None),
            AlertRow.delivery_attempts < max_attempts,
            AlertRow.id > after_id,
        ]
        if since is not None:
            conditions.append(AlertRow.at >= aware(since, "since"))
        stmt = select(AlertRow).where(*conditions).order_by(AlertRow.id).limit(limit)
        async with self._transaction() as session:
            return [_alert(row) for row in await session.scalars(stmt)]

    async def purge_older_than(self, cutoff: datetime, *, batch: int = 1000) -> int:
        """Delete at most ``batch`` alerts raised before ``cutoff``; returns how many.

        One bounded batch per transaction, so retention never holds a long lock (SQLite has a
        single writer; the gateway stores events meanwhile). Callers loop until it returns less
        than ``batch``.
        """
        check_page(batch, 0)
        victims = (
            select(AlertRow.id).where(AlertRow.at < aware(cutoff, "cutoff")).limit(batch)
        ).scalar_subquery()
        async with self._transaction() as session:
            result = await session.execute(delete(AlertRow).where(AlertRow.id.in_(victims)))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _alert(row: AlertRow) -> AlertRecord:
    return AlertRecord(
        id=row.id,
        at=row.at,
        severity=AlertSeverity(row.severity),
        kind=row.kind,
        station_identity=row.station_identity,
        message=row.message,
        details=dict(row.details or {}),
        delivered_at=row.delivered_at,
        delivery_attempts=row.delivery_attempts,
    )
