"""Single-row lookups on the connection-admission path, in as few driver round trips as possible.

Every station connection reads its station row and, on profile 3, its certificate row. Through
an ORM session on aiosqlite one such read is about nine hops between the event loop and the
driver's thread (begin, execute, fetch, close cursor, commit, reset on return...), and in a
reconnect storm each hop waits a whole loop iteration behind hundreds of TLS handshakes: the
reads, not the handshakes, set the storm's pace (bench/tls.py). So:

- SQLite: the lookup runs start to finish on one dedicated thread with a synchronous connection
  of its own, one hop per lookup. The connection is read-only (``query_only``) and reads in
  autocommit, which under WAL always sees the latest committed state: a revocation committed
  by another process is seen by the very next lookup.
- PostgreSQL: one Core statement on a pooled connection, without ORM session bookkeeping.

Nothing is cached: every admission decision is made on what is committed at that moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, create_engine, event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from chargewarden.store.db import SQLITE_BUSY_TIMEOUT_MS, describe_error
from chargewarden.store.errors import StoreError
from chargewarden.store.mapping import certificate_record, fingerprint, station_record
from chargewarden.store.models import CertificateRow, StationRow
from chargewarden.store.records import CertificateRecord, StationRecord
from chargewarden.store.urls import sqlite_path

T = TypeVar("T")
_stations = StationRow.__table__
_certificates = CertificateRow.__table__


class PointReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite: _SqliteLane | None = None
        if engine.dialect.name == "sqlite":
            path = sqlite_path(str(engine.url))
            if path is not None:
                self._sqlite = _SqliteLane(path)

    async def station(self, identity: str) -> StationRecord | None:
        row = await self._first(select(_stations).where(_stations.c.identity == identity))
        return station_record(row) if row is not None else None

    async def certificate(self, sha256_hex: str) -> CertificateRecord | None:
        stmt = select(_certificates).where(
            _certificates.c.fingerprint_sha256 == fingerprint(sha256_hex)
        )
        row = await self._first(stmt)
        return certificate_record(row) if row is not None else None

    async def _first(self, stmt: Select[Any]) -> Any:
        try:
            if self._sqlite is not None:
                return await self._sqlite.run(lambda conn: conn.execute(stmt).first())
            async with self._engine.connect() as conn:
                # Autocommit: no BEGIN before and no ROLLBACK after, two round trips fewer.
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return (await conn.execute(stmt)).first()
        except DBAPIError as exc:
            raise StoreError(f"database error: {describe_error(exc)}") from exc

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()


class _SqliteLane:
    """One thread owning one synchronous read-only connection to the database file."""

    def __init__(self, path: Path) -> None:
        self._engine: Engine = create_engine(
            f"sqlite:///{path}", pool_size=1, max_overflow=0, pool_pre_ping=False
        )
        event.listen(self._engine, "connect", _read_only_autocommit)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cw-point-reads")

    async def run(self, query: Callable[[Any], T]) -> T:
        def work() -> T:
            with self._engine.connect() as conn:
                return query(conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._engine.dispose()


def _read_only_autocommit(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # isolation_level None: no BEGIN, so a lookup never holds a read snapshot open between
    # statements and always sees the newest commit.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()
