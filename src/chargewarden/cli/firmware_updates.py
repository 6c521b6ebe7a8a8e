"""`chargewarden firmware update | status` (attached to the `firmware` app in cli/firmware.py):
start signed firmware updates in the running server and follow them (FW-01, FW-03).

The server sends the update when the station is online, checks the release again first and
follows the station's status reports; this command only starts the job and watches it (Ctrl-C
stops the watching, never the job). The flags are checked here, before the server is asked, so
a mistake costs one `error:` line and never starts a job.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from chargewarden.cli.api_client import ApiClient, ApiUrlOption, api_client
from chargewarden.cli.common import CliError, ConfigOption, DataDirOption, fail, print_table
from chargewarden.cli.jobs import detail, finish, follow, follow_hint, interruptible, when
from chargewarden.cli.station_jobs import announce_fleet
from chargewarden.rpc.versions import OcppVersion
from chargewarden.workflows.firmware_service import MAX_RETRIES, MAX_RETRY_INTERVAL

UPDATES = "/api/firmware/updates"
# A retrieve time this far ahead means a long wait: say so, and that --no-wait exists.
LONG_WAIT = timedelta(minutes=5)
_RELATIVE = re.compile(r"^\+(\d{1,7})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TIME_HELP = "ISO 8601 (2025-01-31T22:00:00Z; no offset means UTC) or relative: +10m, +2h, +1d"


def parse_time(text: str, option: str, now: datetime | None = None) -> datetime:
    """An operator's time: ISO 8601 (UTC unless it has an offset), ``now``, or ``+N`` seconds,
    minutes, hours or days from now. CliError if it is neither."""
    now = now or datetime.now(UTC)
    value = text.strip()
    if value.lower() == "now":
        return now
    relative = _RELATIVE.match(value)
    if relative is not None:
        return now + timedelta(seconds=int(relative[1]) * _UNIT_SECONDS[relative[2]])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"{option}: expected an ISO 8601 time such as 2025-01-31T22:00:00Z, or +10m / +2h, "
            f"not {text!r}"
        ) from None
    # CLI output is all in UTC, so a time without an offset is read as UTC too.
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text, option)
    except CliError as exc:
        fail(str(exc))


def _selection(
    stations: list[str] | None,
    everyone: bool,
    profile: int | None,
    version: str | None,
    concurrency: int | None,
) -> dict[str, Any]:
    """The station part of the request body; one `error:` line if the flags do not fit."""
    if stations and everyone:
        fail("give --station or --all, not both")
    if not stations and not everyone:
        fail("give --station ID (repeat it for several), or --all for every station")
    if stations and (profile is not None or version is not None):
        fail("--profile and --version choose stations for --all; not with --station")
    if stations and len(stations) == 1:
        if concurrency is not None:
            fail("--concurrency is for several stations (--all, or --station repeated)")
        return {"station": stations[0]}
    if concurrency is not None and not 1 <= concurrency <= 1000:
        fail(f"--concurrency must be 1 to 1000, not {concurrency}")
    if stations:
        return {"stations": stations, "concurrency": concurrency}
    if profile is not None and not 0 <= profile <= 3:
        fail(f"--profile must be 0 to 3, not {profile}")
    parsed = None
    if version is not None:
        try:
            parsed = OcppVersion.parse(version).value
        except ValueError as exc:
            fail(f"--version: {exc}")
    return {"all": True, "profile": profile, "ocpp_version": parsed, "concurrency": concurrency}


def _start_fleet(api: ApiClient, answer: dict[str, Any], release: str) -> dict[str, Any]:
    return announce_fleet(api, answer, lambda _: f"firmware {release}")


def _outcome(update: dict[str, Any]) -> str:
    """'update 7 of CP-1: installed (last station status Installed)'."""
    line = (
        f"update {update['id']} of {update['station']}: {update['state']} (last station status "
        f"{update.get('station_status') or 'none'}"
    )
    if update.get("response_status"):
        line += f", answer {update['response_status']}"
    return line + ")" + (f": {update['reason']}" if update.get("reason") else "")


def update(
    release: Annotated[str | None, typer.Option("--release", help="Release name")] = None,
    station: Annotated[
        list[str] | None,
        typer.Option("--station", help="Station identity; repeat it for several"),
    ] = None,
    everyone: Annotated[
        bool, typer.Option("--all", help="Every station (narrow it with --profile and --version)")
    ] = False,
    profile: Annotated[
        int | None, typer.Option("--profile", help="With --all: only stations on this profile")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="With --all: only stations of this OCPP version")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help=f"When stations download it (default now): {TIME_HELP}"),
    ] = None,
    install_at: Annotated[
        str | None, typer.Option("--install-at", help=f"When stations install it: {TIME_HELP}")
    ] = None,
    retries: Annotated[
        int | None, typer.Option("--retries", help="Download retries the station may make")
    ] = None,
    retry_interval: Annotated[
        int | None, typer.Option("--retry-interval", help="Seconds between download retries")
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", help="Fleet: stations updated at once (default: the server's)"
        ),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the job id and return; the job runs on")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Send a registered release to a station (or a fleet) and follow it to Installed.

    The server checks the release again, then sends SignedUpdateFirmware / UpdateFirmware.

    Waits until the job ends: exit 0 once the station reports Installed, 1 otherwise.
    """
    if not release:
        fail("give the release: --release NAME (see `chargewarden firmware list`)")
    target = _selection(station, everyone, profile, version, concurrency)
    retrieve_at, install_time = _time(at, "--at"), _time(install_at, "--install-at")
    if retries is not None and not 0 <= retries <= MAX_RETRIES:
        fail(f"--retries must be 0 to {MAX_RETRIES}, not {retries}")
    if retry_interval is not None and not 0 <= retry_interval <= MAX_RETRY_INTERVAL:
        fail(f"--retry-interval must be 0 to {MAX_RETRY_INTERVAL} seconds, not {retry_interval}")
    if install_time is not None and install_time < (retrieve_at or datetime.now(UTC)):
        fail("--install-at must not be before the retrieve time (--at, default now)")
    body = {
        "release": release,
        **target,
        "at": retrieve_at.isoformat() if retrieve_at else None,
        "install_at": install_time.isoformat() if install_time else None,
        "retries": retries,
        "retry_interval": retry_interval,
    }
    with api_client(config, data_dir, api_url) as api:
        answer = api.post(UPDATES, {k: v for k, v in body.items() if v is not None})
        fleet = answer.get("update_id") is None
        if fleet:
            job = _start_fleet(api, answer, release)
        else:
            job = answer["job"]
            typer.echo(
                f"started job {job['id']}: firmware {release} on station {job['station']} "
                f"(update {answer['update_id']}, its OCPP requestId)"
            )
        if retrieve_at is not None:
            typer.echo(f"stations download it from {when(retrieve_at.isoformat())} UTC")
        if no_wait:
            typer.echo(f"follow it with: {follow_hint(job['id'])}")
            return
        with interruptible(job["id"]):
            if retrieve_at is not None and retrieve_at - datetime.now(UTC) > LONG_WAIT:
                typer.echo("this waits until then and beyond; --no-wait returns at once")
            typer.echo(f"waiting for job {job['id']} (Ctrl-C stops waiting, not the job)")
            final = follow(api, job if fleet else detail(api, job["id"]))
            if not fleet:
                typer.echo(_outcome(api.get(f"{UPDATES}/{answer['update_id']}")))
    finish(final)


def _print_update(item: dict[str, Any]) -> None:
    rows = [
        ("update", f"{item['id']} (OCPP requestId)"),
        ("station", item.get("station")),
        ("release", item.get("release") or f"#{item.get('release_id')} (deleted)"),
        ("state", item.get("state")),
        ("station status", item.get("station_status") or "-"),
        ("answer", item.get("response_status") or "-"),
        ("reason", item.get("reason") or "-"),
        ("job", item.get("job_id") or "-"),
        ("retrieve (UTC)", when(item.get("retrieve_at"))),
        ("install (UTC)", when(item.get("install_at"))),
        ("started by", item.get("actor")),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        typer.echo(f"{key.ljust(width)}  {value}")
    typer.echo("history (UTC):")
    for change in item.get("history") or []:
        typer.echo(f"  {when(change.get('at'))}  {change.get('kind')}: {change.get('status')}")


def status(
    update_id: Annotated[
        int | None, typer.Argument(help="One update (its id) with its history", min=1)
    ] = None,
    station: Annotated[str | None, typer.Option("--station", help="Only this station")] = None,
    release: Annotated[str | None, typer.Option("--release", help="Only this release")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Firmware updates, newest first, with their state and the station's last status."""
    with api_client(config, data_dir, api_url) as api:
        if update_id is not None:
            if station is not None or release is not None:
                fail("give an update id, or --station / --release to list; not both")
            _print_update(api.get(f"{UPDATES}/{update_id}"))
            return
        items = api.get(UPDATES, station=station, release=release, limit=limit)
    if not items:
        typer.echo("no firmware updates")
        return
    print_table(
        [
            "update",
            "station",
            "release",
            "state",
            "station status",
            "job",
            "updated (UTC)",
            "reason",
        ],
        [
            [
                u.get("id"),
                u.get("station"),
                u.get("release") or "-",
                u.get("state"),
                u.get("station_status") or "-",
                u.get("job_id") or "-",
                when(u.get("updated_at")),
                (u.get("reason") or "")[:100],
            ]
            for u in items
        ],
    )
