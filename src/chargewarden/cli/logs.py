"""`chargewarden logs fetch | list | get`: a station's security or diagnostics log (LOG-01),
through the running server's API. The fetch runs there as a job, whether or not anyone waits.

The upload link the station is given is never shown: its token is the station's one-time
credential, and the server keeps only its digest.
"""

from __future__ import annotations

import hashlib
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from chargewarden.cli.api_client import (
    NOT_RUNNING,
    ApiClient,
    ApiError,
    ApiUrlOption,
    api_client,
    segment,
)
from chargewarden.cli.common import CliError, ConfigOption, DataDirOption, fail, print_table
from chargewarden.cli.jobs import detail, finish, follow, follow_hint, interruptible, when
from chargewarden.workflows.logs import MAX_REQUEST_ID

logs_app = typer.Typer(
    help="Station logs (security, diagnostics): fetch over GetLog, list, download.",
    no_args_is_help=True,
)

TYPES = ("security", "diagnostics")
CHUNK = 64 * 1024
# Printed to a terminal only when it reads as text; anything else needs --out.
MAX_PRINT_BYTES = 10 * 1024 * 1024

IdentityArgument = Annotated[str, typer.Argument(help="Station identity", show_default=False)]
RequestArgument = Annotated[
    int, typer.Argument(help="Log request id (the OCPP requestId)", min=1, max=MAX_REQUEST_ID)
]


def parse_time(value: str | None, flag: str) -> str | None:
    """An ISO 8601 time with an offset, as the API takes it; one `error:` line otherwise."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{flag}: not an ISO 8601 time: {value!r} (e.g. 2025-01-31T12:00:00Z)")
    if parsed.utcoffset() is None:
        fail(f"{flag}: give a time zone, e.g. {value.strip()}Z or {value.strip()}+01:00")
    return parsed.isoformat()


def size_text(size: object) -> str:
    return "-" if size is None else f"{size} B"


@logs_app.command("fetch")
def fetch(
    identity: IdentityArgument,
    log_type: Annotated[
        str | None,
        typer.Option("--type", help="security (SecurityLog) or diagnostics (DiagnosticsLog)"),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Oldest entries, ISO 8601 with a zone")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Newest entries, ISO 8601 with a zone")
    ] = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Cancel the station's fetch under way and start this one"),
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the job and request ids and return")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Ask a station to upload its security or diagnostics log (GetLog).

    Waits until the file is stored: exit 0 then, 1 if the station refuses or the upload fails.
    """
    if log_type is None:
        fail("give the log type: --type security or --type diagnostics")
    if log_type not in TYPES:
        fail(f"--type must be security or diagnostics, not {log_type!r}")
    body: dict[str, Any] = {
        "type": log_type,
        "since": parse_time(since, "--since"),
        "until": parse_time(until, "--until"),
        "replace": replace,
    }
    with api_client(config, data_dir, api_url) as api:
        started = api.post(f"/api/stations/{segment(identity)}/logs", body)
        job, request_id = started["job"], started["request_id"]
        typer.echo(
            f"started job {job['id']}: fetch the {log_type} log of {identity} "
            f"(requestId {request_id})"
        )
        if no_wait:
            typer.echo(f"follow it with: {follow_hint(job['id'])}")
            typer.echo(f"then: chargewarden logs get {request_id} --out FILE")
            return
        with interruptible(job["id"]):
            typer.echo(f"waiting for job {job['id']} (Ctrl-C stops waiting, not the job)")
            final = follow(api, detail(api, job["id"]))
    finish(final)
    typer.echo(f"get it with: chargewarden logs get {request_id} --out FILE")


@logs_app.command("list")
def list_logs(
    station: Annotated[str | None, typer.Option("--station", help="Only this station")] = None,
    log_type: Annotated[
        str | None, typer.Option("--type", help="Only security or diagnostics logs")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Log requests, newest first."""
    if log_type is not None and log_type not in TYPES:
        fail(f"--type must be security or diagnostics, not {log_type!r}")
    with api_client(config, data_dir, api_url) as api:
        items = api.get("/api/logs", station=station, type=log_type, limit=limit)
    if not items:
        typer.echo("no log requests")
        return
    print_table(
        ["request", "station", "type", "state", "station status", "size", "asked (UTC)", "job"],
        [
            [
                r.get("request_id"),
                r.get("station"),
                r.get("type"),
                r.get("state"),
                r.get("station_status") or "-",
                size_text(r.get("size")),
                when(r.get("created_at")),
                r.get("job_id") or "-",
            ]
            for r in items
        ],
    )


@logs_app.command("get")
def get(
    request_id: RequestArgument,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", dir_okay=False, help="Write the file here (mode 0600)"),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Download a stored log: to --out FILE, or to stdout when it is text.

    Checks the download against the SHA-256 the server recorded when the station uploaded it.
    """
    with api_client(config, data_dir, api_url) as api:
        record = api.get(f"/api/logs/{request_id}")
        if not record.get("has_file"):
            reason = f": {record['reason']}" if record.get("reason") else ""
            state = record.get("state")
            raise CliError(f"log request {request_id} has no stored file; it is {state}{reason}")
        if out is not None:
            size = _download_to(api, request_id, out, record.get("sha256"))
            typer.echo(f"wrote {size} bytes to {out} (sha256 {record.get('sha256')})")
            return
        content = _download(api, request_id, record.get("sha256"))
    text = _as_text(content)
    if text is None:
        fail(f"log request {request_id} is binary ({len(content)} bytes); use --out FILE")
    sys.stdout.write(text)
    sys.stdout.flush()


# ------------------------------------------------------------------------------ downloads


def _path(request_id: int) -> str:
    return f"/api/logs/{request_id}/file"


def _stream(api: ApiClient, request_id: int) -> Any:
    return api.stream(_path(request_id))


def _refused(response: httpx.Response, request_id: int) -> ApiError:
    response.read()
    try:
        problem = response.json()
        detail = problem.get("detail") if isinstance(problem, dict) else None
    except ValueError:
        detail = None
    status = response.status_code
    if status == 403:
        return ApiError(403, f"not allowed: {detail or 'downloading logs needs the operator role'}")
    if status == 401:
        return ApiError(401, f"the API at {api_url_of(response)} refused the token")
    return ApiError(status, detail or f"download of log request {request_id}: HTTP {status}")


def api_url_of(response: httpx.Response) -> str:
    return f"{response.url.scheme}://{response.url.netloc.decode()}"


def _checked(digest: str, expected: object, request_id: int) -> None:
    if isinstance(expected, str) and digest != expected:
        raise CliError(
            f"the download of log request {request_id} does not match the recorded sha256 "
            f"({digest[:16]}… instead of {expected[:16]}…); try again"
        )


def _download(api: ApiClient, request_id: int, expected: object) -> bytes:
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    total = 0
    try:
        with _stream(api, request_id) as response:
            if not response.is_success:
                raise _refused(response, request_id)
            for chunk in response.iter_bytes(CHUNK):
                total += len(chunk)
                if total > MAX_PRINT_BYTES:
                    raise CliError(
                        f"log request {request_id} is over {MAX_PRINT_BYTES} bytes; use --out FILE"
                    )
                digest.update(chunk)
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise CliError(f"download failed ({type(exc).__name__}): {NOT_RUNNING}") from None
    _checked(digest.hexdigest(), expected, request_id)
    return b"".join(chunks)


def _download_to(api: ApiClient, request_id: int, out: Path, expected: object) -> int:
    """Stream to ``out.partial`` (0600: logs can hold personal data), check, then rename."""
    partial = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    size = 0
    try:
        with _stream(api, request_id) as response:
            if not response.is_success:
                raise _refused(response, request_id)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                for chunk in response.iter_bytes(CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
        _checked(digest.hexdigest(), expected, request_id)
        partial.replace(out)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
    except httpx.HTTPError as exc:
        raise CliError(f"download failed ({type(exc).__name__}): {NOT_RUNNING}") from None
    finally:
        partial.unlink(missing_ok=True)
    return size


def _as_text(content: bytes) -> str | None:
    if b"\x00" in content:
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None
