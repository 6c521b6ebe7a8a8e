"""What every repository shares: one transaction per call, and dialect-specific INSERTs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargewarden.store.db import describe_error
from chargewarden.store.errors import StoreError


class Repository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], dialect: str) -> None:
        self._sessions = sessions
        self._dialect = dialect

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction committed on success; driver failures become StoreError.

        Every method makes its first statement its write (INSERT/UPDATE ... RETURNING), so on
        SQLite the write lock is taken at once and waits on busy_timeout, instead of a read
        transaction failing with "database is locked" when it later tries to write.
        """
        try:
            async with self._sessions.begin() as session:
                yield session
        except DBAPIError as exc:
            raise StoreError(f"database error: {describe_error(exc)}") from exc

    def _insert(self, entity: Any) -> postgresql.Insert | sqlite.Insert:
        """INSERT with ON CONFLICT support: conflicts are answered in the same statement, with
        no read-then-write race and no need to parse driver-specific IntegrityErrors."""
        if self._dialect == "postgresql":
            return postgresql.insert(entity)
        return sqlite.insert(entity)


def check_page(limit: int, offset: int) -> None:
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
