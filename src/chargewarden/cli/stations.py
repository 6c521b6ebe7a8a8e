"""`chargewarden station ...`: the operator's view of the fleet (`events` is in cli/events.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from chargewarden.cli import station_certs, station_hold, station_jobs
from chargewarden.cli.certs import station_cert
from chargewarden.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    print_table,
    quiet_logging,
    run,
    settings_from,
    with_store,
)
from chargewarden.rpc.versions import OcppVersion
from chargewarden.stations import NewStation, RegistrationError, register_station
from chargewarden.store import StationExists, Store
from chargewarden.store.records import AuditRecord, StationRecord

station_app = typer.Typer(help="Register and inspect charging stations.", no_args_is_help=True)
station_app.command("cert")(station_cert)

CLI_ACTOR = "cli"


def _version(value: str) -> OcppVersion:
    try:
        return OcppVersion.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@station_app.command("add")
def add(
    identity: Annotated[
        str, typer.Argument(help="Charging station identity (the last URL segment)")
    ],
    ocpp: Annotated[str, typer.Option("--ocpp", help="OCPP version: 1.6 or 2.0.1")],
    profile: Annotated[int, typer.Option("--profile", min=0, max=3, help="Security profile 0-3")],
    auth_key: Annotated[
        str | None,
        typer.Option(
            "--auth-key",
            envvar="CHARGEWARDEN_AUTH_KEY",
            show_envvar=True,
            help="1.6 AuthorizationKey as hex (16-20 bytes); prefer the environment variable",
        ),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            envvar="CHARGEWARDEN_PASSWORD",
            show_envvar=True,
            help="2.0.1 BasicAuthPassword (16-40 characters); prefer the environment variable",
        ),
    ] = None,
    generate_password: Annotated[
        bool, typer.Option("--generate-password", help="Generate a strong secret and print it once")
    ] = False,
    serial: Annotated[
        str | None, typer.Option("--serial", help="Serial number (certificate CN)")
    ] = None,
    cpo_name: Annotated[
        str | None, typer.Option("--cpo-name", help="CPO name (certificate O)")
    ] = None,
    strict_password: Annotated[
        bool,
        typer.Option(
            "--strict-password", help="1.6: accept only the raw key bytes, not 40-hex text"
        ),
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Register a station. A generated secret is printed once and never again."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)
    new = NewStation(
        identity=identity,
        ocpp_version=_version(ocpp),
        security_profile=profile,
        auth_key_hex=auth_key,
        password=password,
        generate_secret=generate_password,
        serial_number=serial,
        cpo_name=cpo_name,
        strict_password=strict_password,
    )

    async def action(store: Store) -> tuple[StationRecord, str | None]:
        try:
            return await register_station(store, new, actor=CLI_ACTOR)
        except StationExists:
            raise CliError(f"station {identity!r} already exists") from None
        except RegistrationError as exc:
            raise CliError(str(exc)) from None

    record, secret = run(with_store(settings, action))
    typer.echo(
        f"registered {record.identity}: OCPP {record.ocpp_version}, "
        f"security profile {record.security_profile}"
    )
    if secret is not None:
        label = "AuthorizationKey (hex)" if record.ocpp_version is OcppVersion.V16 else "password"
        typer.echo(f"{label}: {secret}")
        typer.echo(
            "This secret is shown once. Configure it on the station now; it cannot be shown again."
        )


@station_app.command("list")
def list_stations(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """List registered stations (never shows secrets)."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)
    stations = run(with_store(settings, lambda store: store.stations.list()))
    if not stations:
        typer.echo(
            "no stations registered (add one with: "
            "chargewarden station add ID --ocpp 1.6 --profile 1 --generate-password)"
        )
        return
    print_table(
        ["identity", "ocpp", "profile", "pending", "registration", "last boot", "last seen"],
        [
            [
                s.identity,
                s.ocpp_version,
                s.security_profile,
                s.pending_profile if s.pending_profile is not None else "-",
                s.registration_status,
                s.last_boot_status or "-",
                s.last_seen.isoformat(timespec="seconds") if s.last_seen else "never",
            ]
            for s in stations
        ],
    )


@station_app.command("show")
def show(
    identity: Annotated[str, typer.Argument()],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show one station (never shows secrets)."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action(store: Store) -> tuple[StationRecord, int, int]:
        station = await store.stations.get(identity)
        if station is None:
            raise CliError(f"no station {identity!r}")
        total = await store.events.count(station=identity)
        critical = await store.events.count(station=identity, critical=True)
        return station, total, critical

    s, total, critical = run(with_store(settings, action))
    rows = [
        ("identity", s.identity),
        ("OCPP version", s.ocpp_version),
        ("security profile", s.security_profile),
        ("pending profile", s.pending_profile if s.pending_profile is not None else "-"),
        ("credential", "set" if s.credential_hash else "none"),
        ("pending credential", "set" if s.pending_credential_hash else "none"),
        ("strict password", "yes" if s.strict_password else "no"),
        ("serial number", s.serial_number or f"- (certificate CN defaults to {s.identity})"),
        ("CPO name", s.cpo_name or "- (global)"),
        ("registration", s.registration_status),
        ("held for credential update", "yes" if s.needs_credential_update else "no"),
        ("last boot", s.last_boot_status or "never booted"),
        ("vendor / model", f"{s.vendor or '-'} / {s.model or '-'}"),
        ("firmware", s.firmware_version or "-"),
        ("last seen", s.last_seen.isoformat(timespec="seconds") if s.last_seen else "never"),
        ("security events", f"{total} ({critical} critical)"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        typer.echo(f"{key.ljust(width)}  {value}")


def profile_change_refusal(
    identity: str, current: int, target: int, *, downgrade: bool, reason: str | None
) -> str | None:
    """Why an operator may not move a station from ``current`` to ``target`` (None: allowed).

    Profiles only go up (WP A00.FR.004/005); the one way down is an explicit, reasoned,
    audited operator downgrade from 3 to 2 (UPG-03, OCPP 2.0.1 errata).
    """
    if target > current:
        if downgrade:
            return f"--downgrade was given, but {current} -> {target} raises the profile"
        return None
    if not downgrade:
        return (
            f"lowering station {identity} from security profile {current} to {target} needs "
            "--downgrade --reason TEXT (only 3 -> 2 is possible, UPG-03)"
        )
    if (current, target) != (3, 2):
        return (
            f"only a downgrade from profile 3 to 2 is allowed (OCPP 2.0.1 errata, UPG-03); "
            f"station {identity} would go from {current} to {target}"
        )
    if not reason or not reason.strip():
        return "--downgrade needs --reason TEXT; it is recorded in the audit log"
    return None


@station_app.command("set-profile")
def set_profile(
    identity: Annotated[str, typer.Argument(help="Station identity")],
    profile: Annotated[int, typer.Argument(min=0, max=3, help="New security profile 0-3")],
    downgrade: Annotated[
        bool, typer.Option("--downgrade", help="Lower the profile (3 -> 2 only; audited)")
    ] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (audit log)")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Raise a station's security profile; lowering it needs --downgrade --reason (3 -> 2)."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action(store: Store) -> tuple[StationRecord, StationRecord | None]:
        station = await store.stations.get(identity)
        if station is None:
            raise CliError(f"no station {identity!r}")
        current = station.security_profile
        if profile == current:
            return station, None
        refusal = profile_change_refusal(
            identity, current, profile, downgrade=downgrade, reason=reason
        )
        if refusal is not None:
            raise CliError(refusal)
        # A pending upgrade at or below the new profile has nothing left to do.
        pending = station.pending_profile
        updated = await store.stations.update(
            identity,
            security_profile=profile,
            pending_profile=pending if pending is not None and pending > profile else None,
        )
        action_name = "station.profile.downgrade" if profile < current else "station.profile.raise"
        details: dict[str, object] = {"from": current, "to": profile}
        if reason:
            details["reason"] = reason.strip()
        await store.audit.add(
            AuditRecord(actor=CLI_ACTOR, action=action_name, target=identity, details=details)
        )
        return station, updated

    before, after = run(with_store(settings, action))
    if after is None:
        typer.echo(f"station {identity} is already on security profile {profile}; nothing changed")
        return
    typer.echo(f"station {identity}: security profile {before.security_profile} -> {profile}")
    if after.security_profile in (1, 2) and after.credential_hash is None:
        typer.echo(
            f"warning: {identity} has no Basic-auth credential, which profile "
            f"{after.security_profile} needs; it cannot connect until it has one"
        )
    if after.security_profile == 3:
        typer.echo(
            f"note: on profile 3 {identity} needs a client certificate with CN="
            f"{after.expected_serial}: 'chargewarden station cert {identity} --out DIR'; to "
            f"move it over OCPP instead: 'chargewarden station upgrade {identity} --to 3'"
        )
    if after.security_profile > before.security_profile:
        typer.echo("note: from now on the lower profile is refused for this station (SEC-11)")


# Through the running server's API (cli/station_certs.py).
station_app.command("install-root")(station_certs.install_root)
station_app.command("certificates")(station_certs.certificates)
station_app.command("delete-cert")(station_certs.delete_cert)
station_app.command("cert-requests")(station_certs.cert_requests)
station_app.command("rotate-password")(station_jobs.rotate_password)
station_app.command("upgrade")(station_jobs.upgrade)
station_app.command("hold")(station_hold.hold)
