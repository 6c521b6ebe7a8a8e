"""`chargewarden sim`: one simulated station, or a fleet of them, against any CSMS."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from chargewarden.cli.common import CliError, fail, run
from chargewarden.logs import configure_logging
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import (
    CSR_FAULTS,
    KEY_TYPES,
    REFUSABLE_CHANGES,
    StationConfig,
)
from chargewarden.simulator.connect import TlsMaterialError
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
CsmsRootOption = Annotated[
    Path | None,
    typer.Option(
        "--csms-root",
        metavar="FILE",
        help="PEM file with the CA certificate(s) trusted for the CSMS (default: system store)",
    ),
]
CertOption = Annotated[
    Path | None,
    typer.Option("--cert", metavar="FILE", help="Profile 3: station certificate + chain (PEM)"),
]
KeyOption = Annotated[
    Path | None,
    typer.Option("--key", metavar="FILE", help="Profile 3: station private key (PEM, unencrypted)"),
]
ServerNameOption = Annotated[
    str | None,
    typer.Option(
        "--tls-server-name",
        metavar="NAME",
        help="Name the CSMS certificate must carry (default: the URL's host)",
    ),
]
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        metavar="DIR",
        help="Keep the station's keys, certificates, installed roots, rotated secret, security "
        "profile and network slots here across restarts (sim fleet: one subdirectory per "
        "station)",
    ),
]
CpoNameOption = Annotated[
    str | None,
    typer.Option("--cpo-name", help="CpoName / OrganizationName: the O of the station's CSRs"),
]
HashAlgorithmOption = Annotated[
    str,
    typer.Option(
        "--hash-algorithm", help="GetInstalledCertificateIds hash: SHA256, SHA384 or SHA512"
    ),
]
CsrFaultOption = Annotated[
    str | None,
    typer.Option(
        "--csr-fault", help=f"Send a defective CSR (testing a CSMS): {', '.join(CSR_FAULTS)}"
    ),
]
KeyTypeOption = Annotated[
    str,
    typer.Option("--key-type", help=f"Key pair generated for a CSR: {', '.join(KEY_TYPES)}"),
]
TlsUrlOption = Annotated[
    str | None,
    typer.Option(
        "--tls-url",
        help="wss:// base URL used from security profile 2 on (a 1.6 station raised to 2/3 "
        "moves there; a 2.0.1 station is told its new URL by SetNetworkProfile)",
    ),
]
RefuseChangeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--refuse-change",
        metavar="NAME",
        help="Answer this change Rejected, to test a CSMS's failure paths (repeatable): "
        f"{', '.join(REFUSABLE_CHANGES)}",
    ),
]
NetworkSlotsOption = Annotated[
    int,
    typer.Option(
        "--network-slots",
        min=1,
        max=99,
        help="2.0.1: network connection profile slots (SetNetworkProfile configurationSlot)",
    ),
]
IDENTITY_PLACEHOLDER = "{identity}"
_FLAG_OF_FIELD = {
    "csms_root_pem": "--csms-root",
    "client_cert_pem": "--cert",
    "client_key_pem": "--key",
    "state_dir": "--state-dir",
}


def _check_url(url: str) -> str:
    # Checked here: the simulator would only meet a bad URL inside the connect, as an internal
    # error. The URL is not repeated in the message: it may carry a user name and password.
    try:
        parse_uri(url)
    except (InvalidURI, ValueError):
        fail("--url must be a ws:// or wss:// URL with a host, e.g. ws://127.0.0.1:9000/ocpp")
    return url


def _check_tls_url(tls_url: str | None) -> str | None:
    if tls_url is None:
        return None
    try:
        secure = parse_uri(tls_url).secure
    except (InvalidURI, ValueError):
        secure = False
    if not secure:
        fail("--tls-url must be a wss:// URL with a host, e.g. wss://csms.example:9443/ocpp")
    return tls_url


def _change_options(refuse: list[str] | None, network_slots: int) -> dict[str, Any]:
    """StationConfig fields of the SIM-04 flags, checked."""
    unknown = sorted(set(refuse or ()) - set(REFUSABLE_CHANGES))
    if unknown:
        fail(
            f"--refuse-change {', '.join(unknown)}: unknown; choose from "
            f"{', '.join(REFUSABLE_CHANGES)}"
        )
    return {"refuse_changes": frozenset(refuse or ()), "network_slots": network_slots}


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


def _certificate_options(
    cpo_name: str | None, hash_algorithm: str, csr_fault: str | None, key_type: str
) -> dict[str, Any]:
    """StationConfig fields of the certificate flags, checked (SIM-02/03)."""
    if hash_algorithm.upper() not in ("SHA256", "SHA384", "SHA512"):
        fail("--hash-algorithm must be SHA256, SHA384 or SHA512")
    if csr_fault is not None and csr_fault not in CSR_FAULTS:
        fail(f"--csr-fault must be one of {', '.join(CSR_FAULTS)}")
    if key_type not in KEY_TYPES:
        fail(f"--key-type must be one of {', '.join(KEY_TYPES)}")
    fields: dict[str, Any] = {
        "hash_algorithm": hash_algorithm.upper(),
        "csr_fault": csr_fault,
        "key_type": key_type,
    }
    if cpo_name is not None:
        if not cpo_name.strip() or len(cpo_name) > 64 or not cpo_name.isprintable():
            fail("--cpo-name must be 1-64 printable characters")
        fields["cpo_name"] = cpo_name
    return fields


def _read(flag: str, path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {flag} {path}: {exc.strerror or exc}")
    if not data.strip():
        fail(f"{flag} {path} is empty")
    return data


class _Tls:
    """The TLS flags, checked against the URL and profile; files read once."""

    def __init__(
        self,
        url: str,
        profile: int,
        csms_root: Path | None,
        cert: Path | None,
        key: Path | None,
        server_name: str | None,
        state_dir: Path | None = None,
        tls_url: str | None = None,
    ) -> None:
        # --tls-url is wss:// (checked): TLS flags serve it even when --url is plain.
        secure = url[:6].lower() == "wss://" or tls_url is not None
        if profile >= 2 and not secure:
            # The URL is not repeated: it may carry a user name and password.
            fail(f"profile {profile} runs over TLS only: --url must be a wss:// URL")
        given = [
            f
            for f, v in (
                ("--csms-root", csms_root),
                ("--cert", cert),
                ("--key", key),
                ("--tls-server-name", server_name),
            )
            if v is not None
        ]
        if given and not secure:
            fail(f"{', '.join(given)}: only for a wss:// URL (TLS; --url or --tls-url)")
        if (cert is None) != (key is None):
            fail("--cert and --key go together")
        if profile == 3 and cert is None and state_dir is None:
            fail(
                "profile 3 authenticates with a client certificate: give --cert FILE and "
                "--key FILE (or a --state-dir holding one)"
            )
        if profile != 3 and cert is not None:
            fail("--cert and --key are for profile 3 (profiles 1 and 2 use Basic auth)")
        if server_name is not None and not server_name.strip():
            fail("--tls-server-name must not be empty")
        self.paths = {
            "--csms-root": csms_root,
            "--cert": cert,
            "--key": key,
            "--state-dir": state_dir,
        }
        self.root = _read("--csms-root", csms_root) if csms_root is not None else None
        self.cert, self.key = cert, key
        self.server_name = server_name

    @property
    def per_station(self) -> bool:
        return any(p is not None and IDENTITY_PLACEHOLDER in str(p) for p in (self.cert, self.key))

    def chain_for(self, identity: str) -> tuple[bytes, bytes]:
        assert self.cert is not None and self.key is not None
        return (
            _read("--cert", Path(str(self.cert).replace(IDENTITY_PLACEHOLDER, identity))),
            _read("--key", Path(str(self.key).replace(IDENTITY_PLACEHOLDER, identity))),
        )

    def fields(self, identity: str | None = None) -> dict[str, Any]:
        """StationConfig fields; with `identity`, this station's own certificate and key."""
        fields: dict[str, Any] = {
            "csms_root_pem": self.root,
            "tls_server_hostname": self.server_name,
        }
        if self.cert is not None:
            cert, key = self.chain_for(identity or "")
            fields.update(client_cert_pem=cert, client_key_pem=key)
        return fields

    def chain_callback(self) -> Callable[[str], tuple[bytes, bytes]] | None:
        if self.cert is None:
            return None
        if self.per_station:
            return self.chain_for
        shared = self.chain_for("")
        return lambda _identity: shared

    def error(self, exc: TlsMaterialError) -> CliError:
        flag = _FLAG_OF_FIELD.get(exc.field, exc.field)
        path = self.paths.get(flag)
        return CliError(f"{flag} {path}: {exc.problem}" if path else f"{flag}: {exc.problem}")


def _stop_event(duration: float | None) -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    return stop


async def _run_one(config: StationConfig, duration: float | None, tls: _Tls) -> int:
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
) -> None:
    """Run one simulated station until Ctrl-C (or --duration); `sim fleet` runs many."""
    if ctx.invoked_subcommand is not None:
        return
    if url is None or identity is None:
        fail("sim needs --url and --identity (or use: chargewarden sim fleet --help)")
    _check_url(url)
    _check_tls_url(tls_url)
    version = _version(ocpp)
    tls = _Tls(url, profile, csms_root, cert, key, tls_server_name, state_dir, tls_url)
    certificates = _certificate_options(cpo_name, hash_algorithm, csr_fault, key_type)
    changes = _change_options(refuse_change, network_slots)
    configure_logging("WARNING")
    config = StationConfig(
        identity=identity,
        ocpp_version=version,
        url=url,
        tls_url=tls_url,
        security_profile=profile,
        send_key_as_hex=send_key_as_hex,
        heartbeat_interval=heartbeat,
        **_secrets(version, profile, auth_key, password),  # type: ignore[arg-type]
        **tls.fields(identity),
        **certificates,
        **changes,
        state_dir=state_dir,
    )
    raise typer.Exit(run(_run_one(config, duration, tls)))


async def _run_many(
    configs: list[StationConfig], duration: float | None, concurrency: int, tls: _Tls
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
) -> None:
    """Run COUNT stations in one process (all sharing the given secret), with progress."""
    if url is None:
        fail("sim fleet needs --url")
    _check_url(url)
    _check_tls_url(tls_url)
    version = _version(ocpp)
    tls = _Tls(url, profile, csms_root, cert, key, tls_server_name, state_dir, tls_url)
    certificates = _certificate_options(cpo_name, hash_algorithm, csr_fault, key_type)
    changes = _change_options(refuse_change, network_slots)
    if cert is not None and not tls.per_station and count > 1:
        typer.echo(
            f"warning: all {count} stations present the same certificate; a CSMS that binds "
            f"a certificate to one station admits at most one (use {IDENTITY_PLACEHOLDER} "
            "in --cert/--key for one file per station)",
            err=True,
        )
    configure_logging("WARNING")
    secrets = _secrets(version, profile, auth_key, password)
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
    )
    raise typer.Exit(run(_run_many(configs, duration, concurrency, tls)))
