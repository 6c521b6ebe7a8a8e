"""Engine creation, SQLite setup and Alembic migrations: everything that happens at open.

Connection and migration failures become one-line ``StoreError`` messages with the password
masked, because they end up in operator-facing output and logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from chargewarden.store.errors import StoreError
from chargewarden.store.urls import mask_url, sqlite_path

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
CONNECT_TIMEOUT_SECONDS = 10.0
SQLITE_BUSY_TIMEOUT_MS = 5000
_FIRST_CONNECT_ATTEMPTS = 5
# Serialises migrations of CSMS nodes sharing one PostgreSQL database (any fixed 64-bit key).
_PG_MIGRATION_LOCK = 0x4357_4D49_4752_4154
# Execution option asking the SQLite "begin" hook for BEGIN IMMEDIATE.
_BEGIN_IMMEDIATE = "chargewarden_begin_immediate"
_MAX_REASON = 300


def build_engine(url: str) -> AsyncEngine:
    """An engine for a normalized URL; a SQLite file (and its directory) is created first."""
    parsed = make_url(url)
    path = sqlite_path(url)
    if path is not None:
        path = _prepare_sqlite_file(path)
        # SQLite serialises writers anyway; each pooled aiosqlite connection is a thread, and
        # fifteen of them fighting the event loop for the GIL made a reconnect storm's reads
        # several times slower (bench/tls.py). Two: a writer never blocks every reader.
        engine = create_async_engine(
            parsed.set(database=str(path)), pool_size=2, max_overflow=0, pool_timeout=60
        )
        _install_sqlite_hooks(engine)
        return engine
    query = dict(parsed.query)
    # asyncpg's own default is 60 s; an unreachable server should be reported sooner. The
    # value is taken out of the URL because the dialect would pass it on as a string.
    timeouts = (query.pop("connect_timeout", None), query.pop("timeout", None))
    timeout = timeouts[0] if timeouts[0] is not None else timeouts[1]
    return create_async_engine(
        parsed.set(query=query),
        # A PostgreSQL restart or failover leaves dead pooled connections behind.
        pool_pre_ping=True,
        connect_args={"timeout": _seconds(timeout, url)},
    )


def _seconds(value: str | tuple[str, ...] | None, url: str) -> float:
    if value is None:
        return CONNECT_TIMEOUT_SECONDS
    try:
        seconds = float(value if isinstance(value, str) else value[-1])
    except (IndexError, ValueError):
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise StoreError(f"connect_timeout in {mask_url(url)} must be a number of seconds")
    return seconds


async def open_engine(url: str, *, migrate: bool) -> AsyncEngine:
    """Create the engine, prove the database answers, then migrate or check the schema."""
    try:
        engine = build_engine(url)
    except OSError as exc:
        raise StoreError(f"cannot create database {mask_url(url)}: {_reason(exc)}") from None
    try:
        async with _connection(engine, url) as conn:
            if migrate:
                await _upgrade(conn, url)
            else:
                await _check_revision(conn, url)
    except BaseException:
        await engine.dispose()
        raise
    return engine


def alembic_config() -> Config:
    """Alembic settings without an ini file: the migrations ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def describe_error(exc: BaseException, url: str | None = None) -> str:
    """One line naming what went wrong, with the URL's password (if any) blanked out."""
    inner: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        inner = exc.orig
    # SQLAlchemy's asyncpg adapter wraps the driver's exception; its own text is noisier.
    if inner.__cause__ is not None and type(inner).__module__.startswith("sqlalchemy"):
        inner = inner.__cause__
    return _reason(inner, make_url(url).password if url else None)


# --- SQLite -------------------------------------------------------------------------------


def _prepare_sqlite_file(path: Path) -> Path:
    path = path.expanduser().resolve()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        # Created here rather than by SQLite so it is never readable by others, not even for an
        # instant: it holds credential hashes and operator token hashes.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("database file %s is accessible to other users; chmod 600 it", path)
    else:
        os.close(fd)
    return path


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The sqlite3 module skips BEGIN before SELECT and DDL, which makes reads unrepeatable
        # and migrations non-atomic; SQLAlchemy emits BEGIN itself instead (hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # busy_timeout first: switching to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # WAL lets the API read while the gateway writes. synchronous stays FULL: whatever the
        # CSMS has promised a station must survive a power cut (DESIGN, durable before the wire).
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_BEGIN_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# --- connecting and migrating --------------------------------------------------------------


async def _first_connection(engine: AsyncEngine) -> AsyncConnection:
    # Switching a fresh SQLite file to WAL takes an exclusive lock, and SQLite answers "database
    # is locked" at once (without its busy handler) when several processes race for it at first
    # start. Waiting a moment and trying again is all it takes.
    for attempt in range(_FIRST_CONNECT_ATTEMPTS):
        conn = None
        try:
            conn = await engine.connect()
            await conn.execute(text("SELECT 1"))
            # End the implicit transaction so migration can begin its own (BEGIN IMMEDIATE).
            await conn.rollback()
            return conn
        except OperationalError as exc:
            if conn is not None:
                await conn.close()
            locked = "database is locked" in str(exc)
            if not locked or attempt + 1 == _FIRST_CONNECT_ATTEMPTS:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


@asynccontextmanager
async def _connection(engine: AsyncEngine, url: str) -> AsyncIterator[AsyncConnection]:
    try:
        conn = await _first_connection(engine)
    except Exception as exc:
        # "from None": the driver's exception chain is not ours to vet for secrets.
        raise StoreError(
            f"cannot connect to database {mask_url(url)}: {describe_error(exc, url)}"
        ) from None
    try:
        yield conn
    finally:
        await conn.close()


async def _upgrade(conn: AsyncConnection, url: str) -> None:
    # Migrations are serialised by a database lock taken before Alembic reads the current
    # revision: several processes or nodes may open a fresh database at once, and even within
    # one process two upgrades must not interleave, because Alembic keeps the running migration
    # in module globals (alembic.context, alembic.op) and would send one upgrade's DDL down the
    # other's connection.
    config = alembic_config()
    if conn.dialect.name == "sqlite":
        conn = await conn.execution_options(**{_BEGIN_IMMEDIATE: True})
    try:
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                # Transaction-scoped: released at commit or rollback, even if we crash.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            await conn.run_sync(_run_upgrade, config)
    except CommandError as exc:
        raise StoreError(
            f"cannot migrate database {mask_url(url)}: {_reason(exc)} "
            "(was it created by a newer ChargeWarden?)"
        ) from None
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(
            f"cannot migrate database {mask_url(url)}: {describe_error(exc, url)}"
        ) from exc


def _run_upgrade(connection: Connection, config: Config) -> None:
    # env.py picks this up instead of building an engine of its own; being inside our
    # transaction, all pending migrations apply atomically.
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def _check_revision(conn: AsyncConnection, url: str) -> None:
    current, head = await conn.run_sync(_revisions, alembic_config())
    if current != head:
        found = f"at revision {current}" if current else "without a ChargeWarden schema"
        raise StoreError(
            f"database {mask_url(url)} is {found}; this version needs revision {head}: "
            "open it with migrations enabled"
        )


def _revisions(connection: Connection, config: Config) -> tuple[str | None, str | None]:
    current = MigrationContext.configure(connection).get_current_revision()
    return current, ScriptDirectory.from_config(config).get_current_head()


def _reason(exc: BaseException, secret: str | None = None) -> str:
    detail = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.strerror and not detail:
        detail = exc.strerror
    if secret:
        for form in {secret, quote(secret, safe="")}:
            detail = detail.replace(form, "***")
    reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 3] + "..."
