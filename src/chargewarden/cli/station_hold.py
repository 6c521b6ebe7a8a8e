"""`chargewarden station hold`: keep a station in BootNotification Pending until its
credentials are rotated (PWD-03, whitepaper A01.FR.05) — for stations that still carry a
factory-default or leaked password."""

from __future__ import annotations

from typing import Annotated

import typer

from chargewarden.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    quiet_logging,
    run,
    settings_from,
    with_store,
)
from chargewarden.store import Store
from chargewarden.store.records import AuditRecord, StationRecord

CLI_ACTOR = "cli"


def hold(
    identity: Annotated[str, typer.Argument(help="Station identity")],
    release: Annotated[
        bool, typer.Option("--release", help="Stop holding it (without a rotation)")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Hold a station in Pending until its credentials are rotated; --release lets it go."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action(store: Store) -> StationRecord:
        station = await store.stations.get(identity)
        if station is None:
            raise CliError(f"no station {identity!r}")
        if not release and station.security_profile not in (1, 2):
            raise CliError(
                f"station {identity} is on security profile {station.security_profile}, which "
                "has no password to rotate"
            )
        updated = await store.stations.update(identity, needs_credential_update=not release)
        await store.audit.add(
            AuditRecord(
                actor=CLI_ACTOR,
                action="station.release" if release else "station.hold",
                target=identity,
            )
        )
        return updated

    run(with_store(settings, action))
    if release:
        typer.echo(f"station {identity} is no longer held; its next boot is answered Accepted")
        return
    typer.echo(f"station {identity} is held: its boots are answered Pending until its credentials")
    if settings.jobs.auto_rotate_held:
        typer.echo(
            "are rotated, which the CSMS starts by itself when it boots ([jobs] auto_rotate_held)"
        )
    else:
        typer.echo(f"are rotated: chargewarden station rotate-password {identity}")
