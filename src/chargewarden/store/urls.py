"""Database URLs: the forms operators write, the async-driver forms the engine needs.

Every URL that reaches a message or a log goes through ``mask_url`` first: the URL may carry the
database password and the store's errors are shown to operators.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from chargewarden.store.errors import StoreError

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"

_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", POSTGRES_DRIVER})
_SQLITE_SCHEMES = frozenset({"sqlite", SQLITE_DRIVER})
# Fallback for text make_url cannot parse: hide whatever sits between "user:" and "@".
_USERINFO_PASSWORD = re.compile(r"(://[^/@:]*:)[^@/]*@")


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite database file, always absolute so a later chdir cannot move it."""
    return f"{SQLITE_DRIVER}:///{Path(path).expanduser().resolve()}"


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``; safe for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _USERINFO_PASSWORD.sub(r"\1***@", url)


def normalize_database_url(url: str) -> str:
    """Return the async-driver form of a PostgreSQL or SQLite URL; StoreError for anything else.

    Accepted: ``postgresql://``, ``postgres://``, ``postgresql+asyncpg://``, ``sqlite:///path``,
    ``sqlite+aiosqlite:///path``. A relative SQLite path stays relative (resolved against the
    working directory when the store opens).
    """
    parsed = _parse(url)
    scheme = parsed.drivername.lower()
    if scheme in _POSTGRES_SCHEMES:
        return _render(_postgres(parsed))
    if scheme in _SQLITE_SCHEMES:
        if not parsed.database or parsed.database == ":memory:" or "mode=memory" in url:
            # A CSMS that forgets its stations, credentials and audit log on restart would
            # silently reopen admission; refuse rather than run without persistence.
            raise StoreError(
                "in-memory SQLite is not supported: give a database file, e.g. sqlite:///cw.db"
            )
        return _render(parsed.set(drivername=SQLITE_DRIVER))
    raise StoreError(
        f"unsupported database URL {mask_url(url)}: expected postgresql://user@host/db "
        "or sqlite:///path/to/file.db"
    )


def sqlite_path(url: str) -> Path | None:
    """The file of a (normalized) SQLite URL, or None for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database).expanduser()


def _parse(url: str) -> URL:
    if not isinstance(url, str) or not url.strip():
        raise StoreError("no database URL given: expected postgresql://... or sqlite:///path")
    try:
        return make_url(url.strip())
    except (ArgumentError, ValueError):
        raise StoreError(
            f"malformed database URL {mask_url(url)}: expected postgresql://user@host/db "
            "or sqlite:///path/to/file.db"
        ) from None


def _postgres(parsed: URL) -> URL:
    query = dict(parsed.query)
    # asyncpg takes TLS settings as ``ssl``; operators write libpq's ``sslmode``. Translating it
    # keeps sslmode=verify-full meaning what it says instead of failing at connect.
    if "sslmode" in query:
        query.setdefault("ssl", query.pop("sslmode"))
    return parsed.set(drivername=POSTGRES_DRIVER, query=query)


def _render(parsed: URL) -> str:
    return parsed.render_as_string(hide_password=False)
