"""`chargewarden sim`: one simulated station, or a fleet of them, against any CSMS."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from chargewarden.cli.common import fail, run
from chargewarden.logs import configure_logging
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.fleet import fleet_configs, fleet_report, run_fleet
from chargewarden.simulator.runner import StationRunner

sim_app = typer.Typer(
    help="Simulated charging stations (OCPP 1.6J and 2.0.1).",
    invoke_without_command=True,
)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", help="CSMS base URL; the identity is appended, e.g. ws://127.0.0.1:9000/ocpp"
    ),
]
OcppOption = Annotated[str | None, typer.Option("--ocpp", help="1.6 or 2.0.1")]
ProfileOption = Annotated[int, typer.Option("--profile", min=0, max=3, help="Security profile")]
AuthKeyOption = Annotated[
    str | None,
    typer.Option("--auth-key", envvar="CHARGEWARDEN_AUTH_KEY", help="1.6 AuthorizationKey as hex"),
]
PasswordOption = Annotated[
    str | None,
    typer.Option("--password", envvar="CHARGEWARDEN_PASSWORD", help="2.0.1 BasicAuthPassword"),
]
HexOption = Annotated[
    bool,
    typer.Option("--send-key-as-hex", help="1.6: send the 40-hex text instead of the key bytes"),
]
DurationOption = Annotated[
    float | None,
    typer.Option("--duration", min=0.1, help="Stop after this many seconds (default: Ctrl-C)"),
]
HeartbeatOption = Annotated[
    float | None,
    typer.Option("--heartbeat", min=0.1, help="Heartbeat interval override in seconds"),
]


def _check_url(url: str) -> str:
    # Checked here: the simulator would only meet a bad URL inside the connect, as an internal
    # error. The URL is not repeated in the message: it may carry a user name and password.
    try:
        parse_uri(url)
    except (InvalidURI, ValueError):
        fail("--url must be a ws:// or wss:// URL with a host, e.g. ws://127.0.0.1:9000/ocpp")
    return url


def _version(value: str | None) -> OcppVersion:
    if value is None:
        fail("--ocpp is required (1.6 or 2.0.1)")
    try:
        return OcppVersion.parse(value)
    except ValueError as exc:
        fail(str(exc))


def _secrets(
    version: OcppVersion, profile: int, auth_key: str | None, password: str | None
) -> dict[str, object]:
    if profile not in (1, 2):
        return {}
    if version is OcppVersion.V16:
        if auth_key is None:
            fail("profile 1/2 on OCPP 1.6 needs --auth-key HEX (or CHARGEWARDEN_AUTH_KEY)")
        try:
            return {"auth_key": bytes.fromhex(auth_key.strip())}
        except ValueError:
            fail("--auth-key must be hexadecimal")
    if password is None:
        fail("profile 1/2 on OCPP 2.0.1 needs --password (or CHARGEWARDEN_PASSWORD)")
    return {"password": password}


def _stop_event(duration: float | None) -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    return stop


async def _run_one(config: StationConfig, duration: float | None) -> int:
    runner = StationRunner(config)
    stop = _stop_event(duration)
    task = asyncio.create_task(runner.run(stop))
    told_outcome = told_boot = False
    while not task.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 0.5)
        outcome = runner.state.first_outcome
        if outcome is not None and not told_outcome:
            told_outcome = True
            if outcome.admitted:
                typer.echo(f"{config.identity}: admitted ({outcome.subprotocol})")
            else:
                what = (
                    f"refused (HTTP {outcome.http_status})"
                    if outcome.http_status is not None
                    else "could not connect"
                )
                typer.echo(f"{config.identity}: {what}: {outcome.reason}")
                stop.set()
        if runner.state.boot_status is not None and not told_boot:
            told_boot = True
            typer.echo(f"{config.identity}: BootNotification {runner.state.boot_status}")
    await task
    typer.echo(f"{config.identity}: stopped after {runner.state.sent} calls sent")
    return 0 if runner.state.admitted_connections else 1


@sim_app.callback()
def sim(
    ctx: typer.Context,
    url: UrlOption = None,
    identity: Annotated[str | None, typer.Option("--identity", help="Station identity")] = None,
    ocpp: OcppOption = None,
    profile: ProfileOption = 1,
    auth_key: AuthKeyOption = None,
    password: PasswordOption = None,
    send_key_as_hex: HexOption = False,
    duration: DurationOption = None,
    heartbeat: HeartbeatOption = None,
) -> None:
    """Run one simulated station until Ctrl-C (or --duration); `sim fleet` runs many."""
    if ctx.invoked_subcommand is not None:
        return
    if url is None or identity is None:
        fail("sim needs --url and --identity (or use: chargewarden sim fleet --help)")
    _check_url(url)
    version = _version(ocpp)
    configure_logging("WARNING")
    config = StationConfig(
        identity=identity,
        ocpp_version=version,
        url=url,
        security_profile=profile,
        send_key_as_hex=send_key_as_hex,
        heartbeat_interval=heartbeat,
        **_secrets(version, profile, auth_key, password),  # type: ignore[arg-type]
    )
    raise typer.Exit(run(_run_one(config, duration)))


async def _run_many(configs: list[StationConfig], duration: float | None, concurrency: int) -> int:
    stop = _stop_event(duration)
    runners: list[StationRunner] = []
    fleet = asyncio.create_task(
        run_fleet(configs, stop, concurrency_of_connects=concurrency, on_started=runners.extend)
    )
    while not fleet.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(fleet), 2.0)
        if runners and not fleet.done():
            snap = fleet_report(runners)
            typer.echo(
                f"stations {snap.total}: admitted {snap.admitted}, "
                f"booted {snap.booted}, refused {snap.refused}"
            )
    report = await fleet
    typer.echo(f"fleet of {report.total}: admitted {report.admitted}, refused {report.refused}")
    for reason, count in report.refusal_reasons().most_common(5):
        typer.echo(f"  refused {count}x: {reason}")
    return 0 if report.refused == 0 else 1


@sim_app.command("fleet")
def fleet(
    count: Annotated[int, typer.Option("--count", min=1, max=100_000, help="Number of stations")],
    url: UrlOption = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Identities are PREFIX00001 ...")
    ] = "SIM-",
    ocpp: OcppOption = None,
    profile: ProfileOption = 1,
    auth_key: AuthKeyOption = None,
    password: PasswordOption = None,
    duration: DurationOption = None,
    heartbeat: HeartbeatOption = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Handshakes at once")
    ] = 50,
) -> None:
    """Run COUNT stations in one process (all sharing the given secret), with progress."""
    if url is None:
        fail("sim fleet needs --url")
    _check_url(url)
    version = _version(ocpp)
    configure_logging("WARNING")
    secrets = _secrets(version, profile, auth_key, password)
    configs = fleet_configs(
        prefix,
        count,
        ocpp_version=version,
        url=url,
        security_profile=profile,
        heartbeat_interval=heartbeat,
        auth_key_for=(lambda _id: secrets["auth_key"]) if "auth_key" in secrets else None,  # type: ignore[arg-type,return-value]
        password_for=(lambda _id: secrets["password"]) if "password" in secrets else None,  # type: ignore[arg-type,return-value]
    )
    raise typer.Exit(run(_run_many(configs, duration, concurrency)))
