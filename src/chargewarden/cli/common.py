"""What every command shares: --config/--data-dir, settings, the store, one-line errors."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from chargewarden.config import ConfigError, Settings, load_settings
from chargewarden.logs import configure_logging
from chargewarden.pki import PkiError
from chargewarden.store import Store, StoreError

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="TOML configuration file", envvar="CHARGEWARDEN_CONFIG", show_envvar=False
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Directory for the SQLite file, CA and other state (default ./var)"
    ),
]


class CliError(Exception):
    """An error worded for the person at the terminal."""


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings_from(config: Path | None, data_dir: Path | None, **flags: Any) -> Settings:
    try:
        return load_settings(config, data_dir=data_dir, **flags)
    except ConfigError as exc:
        fail(str(exc))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; expected failures become one line, never a traceback."""
    try:
        return asyncio.run(coro)
    except CliError as exc:
        fail(str(exc))
    except (StoreError, ConfigError, PkiError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))


async def with_store(settings: Settings, action: Callable[[Store], Awaitable[T]]) -> T:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # bare "File exists: PATH" would not say what is wrong with PATH
        exists = settings.data_dir.exists()
        problem = "exists and is not a directory" if exists else (exc.strerror or str(exc))
        raise CliError(f"cannot use data directory {settings.data_dir}: {problem}") from None
    store = await Store.open(settings.effective_database_url)
    try:
        return await action(store)
    finally:
        await store.close()


def quiet_logging(settings: Settings) -> None:
    """Commands print their own results; only warnings from the machinery below."""
    configure_logging("WARNING", settings.log_format)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[("" if value is None else str(value)) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], len(value))
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    typer.echo(line.rstrip())
    typer.echo("  ".join("-" * w for w in widths))
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def debug_enabled() -> bool:
    return os.environ.get("CHARGEWARDEN_DEBUG", "") not in ("", "0", "false")


def guarded_main(app: typer.Typer, argv: Sequence[str] | None = None) -> None:
    """Entry point: unexpected exceptions print one line (the traceback only with DEBUG)."""
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the last line of defence: never a traceback to a user
        if debug_enabled():
            raise
        typer.echo(
            f"error: internal error ({type(exc).__name__}); "
            "rerun with CHARGEWARDEN_DEBUG=1 for details",
            err=True,
        )
        sys.exit(70)
