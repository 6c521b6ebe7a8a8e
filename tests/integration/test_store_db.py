"""Opening the store: URLs, connection errors, migrations, the SQLite file (both backends)."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from chargewarden.rpc.versions import OcppVersion
from chargewarden.store import Store, StoreError, normalize_database_url, sqlite_url
from chargewarden.store.db import alembic_config
from chargewarden.store.models import Base
from chargewarden.store.records import StationRecord
from chargewarden.store.urls import mask_url

SECRET = "hunter2-s3cret"


async def _scalar(url: str, sql: str) -> object:
    engine = create_async_engine(normalize_database_url(url))
    try:
        async with engine.begin() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/cw", "postgresql+asyncpg://u:p@db:5432/cw"),
        ("postgres://u@db/cw", "postgresql+asyncpg://u@db/cw"),
        ("postgresql+asyncpg://u@db/cw", "postgresql+asyncpg://u@db/cw"),
        ("postgresql://db/cw?sslmode=verify-full", "postgresql+asyncpg://db/cw?ssl=verify-full"),
        ("sqlite:///var/cw.db", "sqlite+aiosqlite:///var/cw.db"),
        ("sqlite:////abs/cw.db", "sqlite+aiosqlite:////abs/cw.db"),
        ("sqlite+aiosqlite:////abs/cw.db", "sqlite+aiosqlite:////abs/cw.db"),
    ],
)
def test_normalize_database_url(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def test_sqlite_url_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_url(Path("cw.db")) == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'cw.db'}"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"mysql://root:{SECRET}@db/cw", "unsupported database URL mysql://root:***@db/cw"),
        (f"postgresql+psycopg2://u:{SECRET}@db/cw", "unsupported database URL"),
        (f"not a url at all://u:{SECRET}@x", "malformed database URL"),
        ("", "no database URL"),
        ("sqlite://", "in-memory SQLite is not supported"),
        ("sqlite:///:memory:", "in-memory SQLite is not supported"),
    ],
)
async def test_bad_url_is_refused_without_showing_the_password(url: str, message: str) -> None:
    with pytest.raises(StoreError) as caught:
        await Store.open(url)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("password", [SECRET, "p@ss/w:rd%"])
async def test_connection_failure_is_one_line_without_the_password(password: str) -> None:
    url = make_url("postgresql://postgres@127.0.0.1:1/cw").set(password=password)
    with pytest.raises(StoreError) as caught:
        await Store.open(url.render_as_string(hide_password=False))
    message = str(caught.value)
    assert message.startswith("cannot connect to database postgresql+asyncpg://postgres:***@")
    assert "\n" not in message and password not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_url_for_display_masks_the_password(database_url: str) -> None:
    async with await Store.open(database_url) as store:
        assert store.url_for_display == mask_url(normalize_database_url(database_url))
        password = make_url(database_url).password
        if password:
            assert password not in store.url_for_display and password not in repr(store)
        assert await store.stations.list() == []


# --- migrations ----------------------------------------------------------------------------


async def test_migrations_are_idempotent(database_url: str) -> None:
    async with await Store.open(database_url) as store:
        await store.stations.add(StationRecord("CP1", OcppVersion.V201, 2))
    async with await Store.open(database_url) as store:
        assert [s.identity for s in await store.stations.list()] == ["CP1"]
    async with await Store.open(database_url, migrate=False) as store:
        assert await store.stations.get("CP1") is not None
    assert await _scalar(database_url, "SELECT count(*) FROM alembic_version") == 1


async def test_simultaneous_opens_of_a_fresh_database_migrate_once(database_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(database_url) for _ in range(4)))
    for store in stores:
        await store.close()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await _scalar(database_url, "SELECT version_num FROM alembic_version") == head


async def test_open_without_migrate_refuses_an_old_schema(database_url: str) -> None:
    with pytest.raises(StoreError, match="without a ChargeWarden schema"):
        await Store.open(database_url, migrate=False)


async def test_schema_from_a_newer_release_is_refused(database_url: str) -> None:
    await (await Store.open(database_url)).close()
    await _scalar(database_url, "UPDATE alembic_version SET version_num = '9999' RETURNING 1")
    with pytest.raises(StoreError, match="newer ChargeWarden"):
        await Store.open(database_url)


async def test_models_match_the_migrations(database_url: str) -> None:
    """A model change without a migration (or the reverse) shows up here, on both backends."""
    await (await Store.open(database_url)).close()

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    engine = create_async_engine(normalize_database_url(database_url))
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


# --- the SQLite file -----------------------------------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable, to show the store does not rely on it."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("permissive_umask")
async def test_sqlite_file_is_created_private_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "cw.db"
    async with await Store.open(f"sqlite:///{path}") as store:
        await store.stations.add(StationRecord("CP1", OcppVersion.V16, 1))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        wal = path.with_name("cw.db-wal")
        assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_existing_group_readable_file_draws_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cw.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="chargewarden.store"):
        await (await Store.open(sqlite_url(path))).close()
    assert "accessible to other users" in caplog.text
