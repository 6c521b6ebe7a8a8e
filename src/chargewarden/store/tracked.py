"""What firmware updates and log requests share: a state, the station's statuses in order,
and conditional changes so two reports racing cannot both move a request on."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from chargewarden.store.base import Repository
from chargewarden.store.mapping import aware, utcnow

Row = TypeVar("Row", bound=Any)
Rec = TypeVar("Rec")

REASON_CHARS = 500
HISTORY_LIMIT = 100  # a station stuck in a status loop must not grow a row without bound


def clip_reason(reason: object) -> str | None:
    return str(reason)[:REASON_CHARS] if reason else None


class TrackedRepository(Repository):
    """Base for repositories of rows with ``state``, ``station_status`` and ``history``."""

    row: Any
    to_record: Callable[[Any], Any]
    changeable: frozenset[str]

    def _values(self, changes: dict[str, Any]) -> dict[str, Any]:
        unknown = set(changes) - self.changeable
        if unknown:
            raise TypeError(f"not changeable on {self.row.__tablename__}: {sorted(unknown)}")
        values = dict(changes)
        if "state" in values:
            values["state"] = str(values["state"])
        if "reason" in values:
            values["reason"] = clip_reason(values["reason"])
        return values

    async def get(self, record_id: int) -> Any:
        async with self._transaction() as session:
            row = await session.get(self.row, record_id)
            return type(self).to_record(row) if row is not None else None

    async def update(
        self, record_id: int, *, only_if: Collection[str] | None = None, **changes: Any
    ) -> Any:
        """Change a row; with ``only_if``, only while its state is one of those (None if not)."""
        conditions = [self.row.id == record_id]
        if only_if is not None:
            conditions.append(self.row.state.in_([str(s) for s in only_if]))
        stmt = (
            update(self.row)
            .where(*conditions)
            .values(**self._values(changes), updated_at=utcnow())
            .returning(self.row)
        )
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            return type(self).to_record(row) if row is not None else None

    async def record_status(
        self,
        record_id: int,
        status: str,
        at: datetime,
        *,
        station_status: bool = True,
        only_if: Collection[str] | None = None,
        **changes: Any,
    ) -> Any:
        """Append ``status`` to the history (and make it the station's latest status unless
        ``station_status`` is False, for answers), with other changes, in one transaction.
        None if the row does not exist or is no longer in ``only_if``."""
        async with self._transaction() as session:
            row = await self._locked(session, record_id)
            if row is None or (only_if is not None and row.state not in {str(s) for s in only_if}):
                return None
            entry = {"status": status[:64], "at": aware(at, "at").isoformat()}
            row.history = [*(row.history or [])[-(HISTORY_LIMIT - 1) :], entry]
            if station_status:
                row.station_status = status[:64]
            for key, value in self._values(changes).items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            await session.flush()
            return type(self).to_record(row)

    async def _locked(self, session: AsyncSession, record_id: int) -> Any:
        """The row, write-locked: the first statement is the write (see Repository), so SQLite
        takes its lock at once and PostgreSQL locks the row until commit."""
        stmt = (
            update(self.row)
            .where(self.row.id == record_id)
            .values(updated_at=utcnow())
            .returning(self.row)
        )
        return (await session.execute(stmt)).scalar_one_or_none()
