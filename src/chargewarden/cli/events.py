"""`chargewarden events`: the security events in the store, filtered, as a table or JSON lines.

Reads the store directly (like `station list`), so it works whether or not the server runs.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from chargewarden.api.models import SecurityEventOut
from chargewarden.cli.common import (
    ConfigOption,
    DataDirOption,
    fail,
    print_table,
    quiet_logging,
    run,
    settings_from,
    with_store,
)
from chargewarden.store.records import EventSource, SecurityEventRecord

_RELATIVE = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TIME_HELP = (
    "ISO 8601 (2025-01-31, 2025-01-31T12:00:00+01:00; no offset = UTC) "
    "or a time ago: 30m, 24h, 7d, 2w"
)


class TimeValueError(ValueError):
    pass


def parse_time(value: str, now: datetime) -> datetime:
    """An absolute ISO 8601 time, or ``now`` minus a relative span like ``24h``.

    A time without an offset is UTC: the CLI prints UTC, so that is what the operator copied.
    """
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise TimeValueError(
            f"{value!r} is neither an ISO 8601 time (2025-01-31T12:00:00Z) nor a time ago "
            "(30m, 24h, 7d, 2w)"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def time_range(
    since: str | None, until: str | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """Both bounds parsed; a one-line CLI error for a bad value or an empty range."""
    bounds: list[datetime | None] = []
    for flag, value in (("--since", since), ("--until", until)):
        try:
            bounds.append(parse_time(value, now) if value is not None else None)
        except TimeValueError as exc:
            fail(f"{flag}: {exc}")
    start, end = bounds
    if start is not None and end is not None and start >= end:
        fail(
            f"--since ({start.isoformat(timespec='seconds')}) must be before --until "
            f"({end.isoformat(timespec='seconds')})"
        )
    return start, end


def _when(event: SecurityEventRecord) -> str:
    moment = event.received_at or event.occurred_at
    return moment.isoformat(timespec="seconds") if moment else ""


def events(
    station: Annotated[str | None, typer.Option("--station", help="Only this station")] = None,
    event_type: Annotated[
        str | None,
        typer.Option("--type", help="Only this event type, e.g. TamperDetectionActivated"),
    ] = None,
    critical: Annotated[bool, typer.Option("--critical", help="Only critical events")] = False,
    source: Annotated[
        EventSource | None,
        typer.Option("--source", help="Only events the stations reported, or the CSMS's own"),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help=f"Received at or after: {TIME_HELP}")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help=f"Received before: {TIME_HELP}")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line (as the API's items)")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Security events, newest first: the stations' own and the CSMS's."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)
    start, end = time_range(since, until, datetime.now(UTC))
    items = run(
        with_store(
            settings,
            lambda store: store.events.list(
                station=station,
                type=event_type,
                critical=True if critical else None,
                source=source,
                since=start,
                until=end,
                limit=limit,
            ),
        )
    )
    if as_json:
        # Nothing at all when nothing matched: a consumer reads lines, not a message.
        for event in items:
            typer.echo(json.dumps(SecurityEventOut.of(event).model_dump(mode="json")))
        return
    if not items:
        typer.echo("no security events")
        return
    print_table(
        ["time (UTC)", "source", "station", "type", "critical", "peer", "info"],
        [
            [
                _when(e),
                e.source,
                e.station_identity or "-",
                e.type,
                "yes" if e.critical else "",
                e.peer_address or "",
                (e.tech_info or "")[:80],
            ]
            for e in items
        ],
    )
