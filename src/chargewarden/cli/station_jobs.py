"""`chargewarden station rotate-password | upgrade` (attached to the `station` app in
cli/stations.py): start a durable job in the running server, for one station or, with --all, a
fleet, then follow it until it ends (or return at once with --no-wait).

The flags are checked here, before the server is asked, so a mistake costs one `error:` line
and never starts a job; which station may take a job is the server's decision (JobService).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from chargewarden.cli.api_client import ApiClient, ApiUrlOption, api_client, segment
from chargewarden.cli.common import ConfigOption, DataDirOption, fail
from chargewarden.cli.jobs import (
    describe,
    detail,
    finish,
    follow,
    follow_hint,
    interruptible,
    operation,
)
from chargewarden.rpc.versions import OcppVersion
from chargewarden.workflows.service import MAX_SLOT, UPGRADE_TARGETS

# Left-out stations listed when a fleet starts; the rest are counted.
MAX_SKIPPED_LINES = 20

IdentityArgument = Annotated[
    str | None, typer.Argument(help="Station identity (or --all for a fleet)", show_default=False)
]
AllOption = Annotated[
    bool,
    typer.Option("--all", help="Every eligible station (narrow it with --profile and --version)"),
]
ProfileOption = Annotated[
    int | None, typer.Option("--profile", help="With --all: only stations on this profile")
]
VersionOption = Annotated[
    str | None, typer.Option("--version", help="With --all: only stations of this OCPP version")
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        help="With --all: stations changed at once (default: the server's fleet_concurrency)",
    ),
]
NoWaitOption = Annotated[
    bool, typer.Option("--no-wait", help="Print the job id and return; the job runs on")
]


@dataclass(frozen=True)
class Fleet:
    """The fleet part of a request body."""

    profile: int | None
    version: OcppVersion | None
    concurrency: int | None

    def body(self) -> dict[str, Any]:
        return {
            "all": True,
            "profile": self.profile,
            "ocpp_version": self.version.value if self.version else None,
            "concurrency": self.concurrency,
        }


def _target(
    identity: str | None,
    everyone: bool,
    profile: int | None,
    version: str | None,
    concurrency: int | None,
) -> Fleet | None:
    """The fleet selection for --all, None for one station; one `error:` line if the flags do
    not fit together."""
    if identity is not None and everyone:
        fail("give a station ID or --all, not both")
    if identity is None and not everyone:
        fail("give a station ID, or --all for every eligible station")
    if identity is not None:
        if profile is not None or version is not None or concurrency is not None:
            fail("--profile, --version and --concurrency choose stations for --all; not with an ID")
        return None
    if profile is not None and not 0 <= profile <= 3:
        fail(f"--profile must be 0 to 3, not {profile}")
    if concurrency is not None and not 1 <= concurrency <= 1000:
        fail(f"--concurrency must be 1 to 1000, not {concurrency}")
    parsed = None
    if version is not None:
        try:
            parsed = OcppVersion.parse(version)
        except ValueError as exc:
            fail(f"--version: {exc}")
    return Fleet(profile, parsed, concurrency)


def _start_fleet(api: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = api.post("/api/jobs", body)
    return announce_fleet(api, answer, operation)


def announce_fleet(
    api: ApiClient, answer: dict[str, Any], what: Callable[[dict[str, Any]], str]
) -> dict[str, Any]:
    """Say what a just-started fleet job covers and who was left out; returns the job."""
    job = detail(api, answer["job"]["id"])
    stations = sum((job.get("children") or {}).values())
    concurrency = (job.get("params") or {}).get("concurrency")
    typer.echo(
        f"started fleet job {job['id']}: {what(job)} on {stations} station(s), at most "
        f"{concurrency} at once"
    )
    skipped: list[str] = answer.get("skipped") or []
    for reason in skipped[:MAX_SKIPPED_LINES]:
        typer.echo(f"  left out: {reason}")
    if len(skipped) > MAX_SKIPPED_LINES:
        typer.echo(f"  ... and {len(skipped) - MAX_SKIPPED_LINES} more left out")
    return job


def _run(api: ApiClient, job: dict[str, Any], no_wait: bool) -> dict[str, Any] | None:
    """After the start: --no-wait says how to follow, else follow to the end."""
    if job.get("kind") != "fleet":
        typer.echo(f"started job {job['id']}: {describe(job)}")
    if no_wait:
        typer.echo(f"follow it with: {follow_hint(job['id'])}")
        return None
    # From here on the job exists: an interrupt anywhere must say how to find it again.
    with interruptible(job["id"]):
        typer.echo(f"waiting for job {job['id']} (Ctrl-C stops waiting, not the job)")
        return follow(api, job if job.get("kind") == "fleet" else detail(api, job["id"]))


def rotate_password(
    identity: IdentityArgument = None,
    everyone: AllOption = False,
    profile: ProfileOption = None,
    version: VersionOption = None,
    concurrency: ConcurrencyOption = None,
    no_wait: NoWaitOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Give a station a new random password (PWD-01/02), or every eligible station with --all.

    The old password stays valid until the station has taken the new one; nobody sees either.

    Waits until the job ends: exit 0 on success, 1 on failure or cancel.
    """
    fleet = _target(identity, everyone, profile, version, concurrency)
    with api_client(config, data_dir, api_url) as api:
        if fleet is not None:
            job = _start_fleet(api, {"operation": "rotate-password", **fleet.body()})
        else:
            assert identity is not None
            job = api.post(f"/api/stations/{segment(identity)}/rotate-password")
        final = _run(api, job, no_wait)
    if final is not None:
        finish(final)


def upgrade(
    identity: IdentityArgument = None,
    to: Annotated[int | None, typer.Option("--to", help="Target security profile: 2 or 3")] = None,
    slot: Annotated[
        int | None,
        typer.Option(
            "--slot",
            help="OCPP 2.0.1, one station: network slot for the new profile (default: first free)",
        ),
    ] = None,
    everyone: AllOption = False,
    profile: ProfileOption = None,
    version: VersionOption = None,
    concurrency: ConcurrencyOption = None,
    no_wait: NoWaitOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Raise a station's security profile to 2 or 3 over OCPP (UPG-01/02), or with --all.

    The station's first connection on the new profile commits it; lower ones are refused then.

    Waits until the job ends: exit 0 on success, 1 on failure or cancel.
    """
    if to is None:
        fail("give the target profile: --to 2 or --to 3")
    if to not in UPGRADE_TARGETS:
        fail(f"--to must be 2 or 3, not {to} (profiles are raised to 2 or 3, never lowered)")
    if slot is not None:
        if everyone:
            fail("--slot is for one station; with --all each station gets its first free slot")
        if not 0 <= slot <= MAX_SLOT:
            fail(f"--slot must be 0 to {MAX_SLOT}, not {slot}")
    fleet = _target(identity, everyone, profile, version, concurrency)
    with api_client(config, data_dir, api_url) as api:
        if fleet is not None:
            job = _start_fleet(api, {"operation": "upgrade-profile", "to": to, **fleet.body()})
        else:
            assert identity is not None
            job = api.post(f"/api/stations/{segment(identity)}/upgrade", {"to": to, "slot": slot})
        final = _run(api, job, no_wait)
    if final is not None:
        finish(final)
