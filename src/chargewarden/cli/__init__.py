"""The `chargewarden` command line."""

from __future__ import annotations

from collections.abc import Sequence

import typer

from chargewarden import __version__
from chargewarden.cli.ca import ca_app
from chargewarden.cli.certs import cert_app
from chargewarden.cli.common import guarded_main
from chargewarden.cli.demo import demo
from chargewarden.cli.events import events
from chargewarden.cli.firmware import firmware_app
from chargewarden.cli.jobs import jobs_app
from chargewarden.cli.logs import logs_app
from chargewarden.cli.operators import operator_app
from chargewarden.cli.serve import serve
from chargewarden.cli.sim import sim_app
from chargewarden.cli.station_certs import alerts
from chargewarden.cli.stations import station_app

app = typer.Typer(
    name="chargewarden",
    help="ChargeWarden: a security-first OCPP 1.6J / 2.0.1 Central System.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(serve)
app.command("events")(events)
app.command("alerts")(alerts)
app.command("demo")(demo)
app.add_typer(station_app, name="station")
app.add_typer(operator_app, name="operator")
app.add_typer(sim_app, name="sim")
app.add_typer(ca_app, name="ca")
app.add_typer(cert_app, name="cert")
app.add_typer(firmware_app, name="firmware")
app.add_typer(jobs_app, name="jobs")
app.add_typer(logs_app, name="logs")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"chargewarden {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version"
    ),
) -> None:
    """ChargeWarden: a security-first OCPP 1.6J / 2.0.1 Central System."""


def main(argv: Sequence[str] | None = None) -> None:
    guarded_main(app, argv)
