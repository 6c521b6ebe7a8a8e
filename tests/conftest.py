"""Fixtures shared by all suites: every database test runs on SQLite and on PostgreSQL.

``database_url`` (and ``store``, built on it) is parametrized as ``sqlite`` / ``postgres``:

- sqlite: a file in the test's tmp_path.
- postgres: a fresh database ``cw_test_<hex>`` created on the server named by the admin URL in
  CHARGEWARDEN_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres) and
  dropped after the test. Random names let parallel runs share one server.

Under CI=true a PostgreSQL server that does not answer fails those tests; elsewhere they are
skipped with the reason. Select one backend with ``-m postgres`` / ``-m "not postgres"``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # ships no type information
import pytest
from sqlalchemy.engine import make_url

from chargewarden.store import Store, sqlite_url
from chargewarden.store.urls import mask_url

POSTGRES_ADMIN_URL_ENV = "CHARGEWARDEN_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PROBE_TIMEOUT_SECONDS = 5.0

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@dataclass(frozen=True)
class PostgresServer:
    """A reachable server on which tests may create and drop databases."""

    admin_url: str  # libpq form, as asyncpg takes it

    def url_for(self, database: str) -> str:
        """The SQLAlchemy async URL of ``database`` on this server (password kept)."""
        url = make_url(self.admin_url).set(drivername="postgresql+asyncpg", database=database)
        return url.render_as_string(hide_password=False)

    async def create_database(self) -> str:
        name = f"cw_test_{secrets.token_hex(8)}"
        conn = await asyncpg.connect(self.admin_url, timeout=PROBE_TIMEOUT_SECONDS)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        conn = await asyncpg.connect(self.admin_url, timeout=PROBE_TIMEOUT_SECONDS)
        try:
            # A test that forgot to close a store must not leave the database behind.
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await conn.close()


def _admin_url() -> str:
    url = make_url(os.environ.get(POSTGRES_ADMIN_URL_ENV) or DEFAULT_POSTGRES_ADMIN_URL)
    # asyncpg wants plain libpq URLs; accept the SQLAlchemy spellings too.
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _probe(admin_url: str) -> str | None:
    try:
        conn = await asyncpg.connect(admin_url, timeout=PROBE_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The PostgreSQL server for this run, checked once; skip (or fail under CI) without one."""
    admin_url = _admin_url()
    # A thread of its own: asyncio.run must not disturb the event loop pytest-asyncio manages.
    with ThreadPoolExecutor(max_workers=1) as pool:
        problem = pool.submit(asyncio.run, _probe(admin_url)).result()
    if problem is not None:
        where = mask_url(admin_url)
        if running_in_ci():
            pytest.fail(
                f"CI=true requires PostgreSQL, but {where} does not answer: {problem}",
                pytrace=False,
            )
        pytest.skip(f"no PostgreSQL at {where} ({problem}); set {POSTGRES_ADMIN_URL_ENV}")
    return PostgresServer(admin_url)


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "db" / "chargewarden.db")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = await server.create_database()
    try:
        yield server.url_for(name)
    finally:
        await server.drop_database(name)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """An open, migrated store on each backend."""
    opened = await Store.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()
