"""`chargewarden sim`: one simulated station, or a fleet of them, against any CSMS."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer

from chargewarden.cli.common import fail, run
from chargewarden.cli.sim_flags import (
    IDENTITY_PLACEHOLDER,
    TlsFlags,
    certificate_fields,
    change_fields,
    check_tls_url,
    check_url,
    firmware_fields,
    parse_version,
    secret_fields,
)
from chargewarden.cli.sim_options import (
    AuthKeyOption,
    CertOption,
    CpoNameOption,
    CsmsRootOption,
    CsrFaultOption,
    DurationOption,
    FirmwareFaultOption,
    FirmwareVersionOption,
    HashAlgorithmOption,
    HeartbeatOption,
    HexOption,
    KeyOption,
    KeyTypeOption,
    ManufacturerRootOption,
    NetworkSlotsOption,
    OcppOption,
    PasswordOption,
    ProfileOption,
    RefuseChangeOption,
    ServerNameOption,
    StateDirOption,
    TlsUrlOption,
    UrlOption,
)
from chargewarden.logs import configure_logging
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.connect import TlsMaterialError
from chargewarden.simulator.fleet import fleet_configs, fleet_report, run_fleet
from chargewarden.simulator.runner import StationRunner

sim_app = typer.Typer(
    help="Simulated charging stations (OCPP 1.6J and 2.0.1).",
    invoke_without_command=True,
)


def _stop_event(duration: float | None) -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    return stop


async def _run_one(config: StationConfig, duration: float | None, tls: TlsFlags) -> int:
    try:
        runner = StationRunner(config)  # builds the TLS context: bad PEM content fails here
    except TlsMaterialError as exc:
        raise tls.error(exc) from None
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
    csms_root: CsmsRootOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    tls_server_name: ServerNameOption = None,
    state_dir: StateDirOption = None,
    cpo_name: CpoNameOption = None,
    hash_algorithm: HashAlgorithmOption = "SHA256",
    csr_fault: CsrFaultOption = None,
    key_type: KeyTypeOption = "ec-p256",
    tls_url: TlsUrlOption = None,
    refuse_change: RefuseChangeOption = None,
    network_slots: NetworkSlotsOption = 3,
    manufacturer_root: ManufacturerRootOption = None,
    firmware_fault: FirmwareFaultOption = None,
    firmware_version: FirmwareVersionOption = None,
) -> None:
    """Run one simulated station until Ctrl-C (or --duration); `sim fleet` runs many."""
    if ctx.invoked_subcommand is not None:
        return
    if url is None or identity is None:
        fail("sim needs --url and --identity (or use: chargewarden sim fleet --help)")
    check_url(url)
    check_tls_url(tls_url)
    version = parse_version(ocpp)
    tls = TlsFlags(url, profile, csms_root, cert, key, tls_server_name, state_dir, tls_url)
    certificates = certificate_fields(cpo_name, hash_algorithm, csr_fault, key_type)
    changes = change_fields(refuse_change, network_slots)
    firmware = firmware_fields(manufacturer_root, firmware_fault, firmware_version)
    configure_logging("WARNING")
    config = StationConfig(
        identity=identity,
        ocpp_version=version,
        url=url,
        tls_url=tls_url,
        security_profile=profile,
        send_key_as_hex=send_key_as_hex,
        heartbeat_interval=heartbeat,
        **secret_fields(version, profile, auth_key, password),  # type: ignore[arg-type]
        **tls.fields(identity),
        **certificates,
        **changes,
        **firmware,
        state_dir=state_dir,
    )
    raise typer.Exit(run(_run_one(config, duration, tls)))


async def _run_many(
    configs: list[StationConfig], duration: float | None, concurrency: int, tls: TlsFlags
) -> int:
    try:
        return await _run_fleet(configs, duration, concurrency)
    except TlsMaterialError as exc:
        raise tls.error(exc) from None


async def _run_fleet(configs: list[StationConfig], duration: float | None, concurrency: int) -> int:
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
    csms_root: CsmsRootOption = None,
    cert: Annotated[
        Path | None,
        typer.Option(
            "--cert",
            metavar="FILE",
            help="Profile 3: certificate + chain (PEM); {identity} in the path: one per station",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="FILE",
            help="Profile 3: private key (PEM, unencrypted); {identity} as for --cert",
        ),
    ] = None,
    tls_server_name: ServerNameOption = None,
    state_dir: StateDirOption = None,
    cpo_name: CpoNameOption = None,
    hash_algorithm: HashAlgorithmOption = "SHA256",
    csr_fault: CsrFaultOption = None,
    key_type: KeyTypeOption = "ec-p256",
    tls_url: TlsUrlOption = None,
    refuse_change: RefuseChangeOption = None,
    network_slots: NetworkSlotsOption = 3,
    manufacturer_root: ManufacturerRootOption = None,
    firmware_fault: FirmwareFaultOption = None,
    firmware_version: FirmwareVersionOption = None,
) -> None:
    """Run COUNT stations in one process (all sharing the given secret), with progress."""
    if url is None:
        fail("sim fleet needs --url")
    check_url(url)
    check_tls_url(tls_url)
    version = parse_version(ocpp)
    tls = TlsFlags(url, profile, csms_root, cert, key, tls_server_name, state_dir, tls_url)
    certificates = certificate_fields(cpo_name, hash_algorithm, csr_fault, key_type)
    changes = change_fields(refuse_change, network_slots)
    firmware = firmware_fields(manufacturer_root, firmware_fault, firmware_version)
    if cert is not None and not tls.per_station and count > 1:
        typer.echo(
            f"warning: all {count} stations present the same certificate; a CSMS that binds "
            f"a certificate to one station admits at most one (use {IDENTITY_PLACEHOLDER} "
            "in --cert/--key for one file per station)",
            err=True,
        )
    configure_logging("WARNING")
    secrets = secret_fields(version, profile, auth_key, password)
    configs = fleet_configs(
        prefix,
        count,
        ocpp_version=version,
        url=url,
        tls_url=tls_url,
        security_profile=profile,
        heartbeat_interval=heartbeat,
        auth_key_for=(lambda _id: secrets["auth_key"]) if "auth_key" in secrets else None,  # type: ignore[arg-type,return-value]
        password_for=(lambda _id: secrets["password"]) if "password" in secrets else None,  # type: ignore[arg-type,return-value]
        client_chain_for=tls.chain_callback(),
        csms_root_pem=tls.root,
        tls_server_hostname=tls.server_name,
        state_root=state_dir,
        **certificates,
        **changes,
        **firmware,
    )
    raise typer.Exit(run(_run_many(configs, duration, concurrency, tls)))
