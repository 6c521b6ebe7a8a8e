"""`chargewarden ca ...`: create, inspect and extend the certificate authority."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from chargewarden.cli.api_client import ApiUrlOption, api_client
from chargewarden.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    fail,
    print_table,
    quiet_logging,
    run,
    settings_from,
    with_store,
)
from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.certinfo import certificate_facts
from chargewarden.pki.hierarchy import Pki, load_certificates
from chargewarden.pki.importer import (
    ROOT_IMPORT_REFUSAL,
    ImportResult,
    import_crl,
    import_server_certificate,
    import_station_ca,
)
from chargewarden.pki.keys import describe_key
from chargewarden.pki.layout import CPO_ROOT, Layout
from chargewarden.pki.material import imported_warnings
from chargewarden.pki.passphrase import load_passphrase, passphrase_source
from chargewarden.pki.recording import record_certificate, record_for, record_hierarchy
from chargewarden.pki.rollover import (
    INSTALLED_OUTCOMES,
    PreparedRollover,
    RolloverAlreadyPrepared,
    RolloverPaths,
    RolloverStatus,
    SwitchResult,
    prepare_rollover,
    read_install_log,
    rollover_status,
    switch_root,
)
from chargewarden.store import Store
from chargewarden.store.records import AuditRecord, CertificateRole

T = TypeVar("T")
CLI_ACTOR = "cli"

ca_app = typer.Typer(
    help="The certificate authority: create it, inspect it, import your own material.",
    no_args_is_help=True,
)


async def guarded(awaitable: Awaitable[T]) -> T:
    """PKI and input errors become one-line CLI errors (run() knows only CliError & co.)."""
    try:
        return await awaitable
    except PkiError as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:  # the store's checks of a value the user typed (a serial, ...)
        raise CliError(str(exc)) from None


def open_pki(settings: Settings) -> Pki:
    """The existing CA, opened with its passphrase (PkiError if there is none)."""
    if not Pki.exists(settings):
        raise PkiError(
            f"no CA in {settings.effective_ca_dir}; create one with 'chargewarden ca init'"
        )
    return Pki.load(settings, load_passphrase(settings))


def _days_left(certificate: x509.Certificate, now: datetime) -> str:
    left = certificate.not_valid_after_utc - now
    return "expired" if left.total_seconds() < 0 else str(left.days)


def _row(label: str, certificate: x509.Certificate, now: datetime) -> list[object]:
    return [
        label,
        certificate_facts(certificate).subject_cn or certificate.subject.rfc4514_string(),
        describe_key(certificate.public_key()),
        f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M}",
        _days_left(certificate, now),
        certificate.fingerprint(hashes.SHA256()).hex(),
    ]


def print_hierarchy(pki: Pki, now: datetime) -> None:
    rows = [_row(name, entry.certificate, now) for name, entry in pki.entries.items()]
    replaced = " (replaced by imported)" if pki.imported_servers else ""
    for kind, entry in pki.servers.items():
        rows.append(_row(f"server/{kind}{replaced}", entry.certificate, now))
    for kind, entry in pki.imported_servers.items():
        rows.append(_row(f"server/imported/{kind}", entry.certificate, now))
    layout = Layout(pki.ca_dir)
    for path in layout.imported_station_cas():
        for certificate in _certificates(path):
            rows.append(_row(f"imported station CA {path.stem}", certificate, now))
    for path in layout.imported_server_roots():
        for certificate in _certificates(path):
            rows.append(_row(f"imported server root {path.stem}", certificate, now))
    print_table(["name", "subject CN", "key", "not after (UTC)", "days left", "SHA-256"], rows)


def _certificates(path: Path) -> list[x509.Certificate]:
    try:
        return load_certificates(path)
    except PkiError:
        return []  # check() reports it


@ca_app.command("init")
def init(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Create the CPO hierarchy, the development Manufacturer hierarchy and the server
    certificates. Refuses to touch an existing CA."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action(store: Store) -> Pki:
        if Pki.exists(settings):
            raise PkiError(f"a CA already exists in {settings.effective_ca_dir}; use 'ca show'")
        pki = Pki.init(settings, load_passphrase(settings))
        await record_hierarchy(store, pki)
        await store.audit.add(
            AuditRecord(
                actor=CLI_ACTOR,
                action="ca.init",
                target=str(pki.ca_dir),
                details={"root_sha256": pki.root.certificate.fingerprint(hashes.SHA256()).hex()},
            )
        )
        return pki

    pki = run(with_store(settings, lambda store: guarded(action(store))))
    typer.echo(f"created the CA in {pki.ca_dir}")
    print_hierarchy(pki, datetime.now(UTC))
    typer.echo(
        f"private keys: encrypted PKCS#8 (mode 0600), passphrase from {passphrase_source(settings)}"
    )
    typer.echo(
        f"stations must trust {pki.root.cert_path} (also served at "
        f"http://{settings.public_hostname}:{settings.api_port}/pki/csms-root.pem)"
    )


@ca_app.command("show")
def show(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """The hierarchy with fingerprints and expiry, and anything wrong with it."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action() -> Pki:
        return open_pki(settings)

    pki = run(guarded(action()))
    now = datetime.now(UTC)
    typer.echo(f"CA directory: {pki.ca_dir}")
    typer.echo(f"passphrase: {passphrase_source(settings)}")
    print_hierarchy(pki, now)
    problems = pki.check(now)
    for warning in pki.warnings(now) + imported_warnings(settings, now):
        typer.echo(f"warning: {warning}")
    rollover = rollover_status(settings)
    if rollover.state != "idle":
        typer.echo(f"root rollover: {rollover.state}; see 'chargewarden ca rollover status'")
    for problem in problems:
        typer.echo(f"problem: {problem}")
    if problems:
        fail(f"the CA has {len(problems)} problem(s), listed above")
    typer.echo("check: OK")


def _read_secret_file(path: Path) -> bytes:
    try:
        return path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise PkiError(f"cannot read key passphrase file {path}: {exc.strerror or exc}") from None


async def _record_import(store: Store, result: ImportResult, kind: str) -> None:
    for record in result.records:
        await record_certificate(store, record)
    await store.audit.add(
        AuditRecord(
            actor=CLI_ACTOR,
            action="ca.import",
            target=kind,
            details={
                "files": [str(p) for p in result.written],
                "certificates": [
                    {"serial": r.serial, "subject_cn": r.subject_cn, "sha256": r.fingerprint_sha256}
                    for r in result.records
                ],
            },
        )
    )


@ca_app.command("import")
def import_(
    server_cert: Annotated[
        Path | None,
        typer.Option("--server-cert", help="PEM server certificate (may be followed by its chain)"),
    ] = None,
    server_key: Annotated[
        Path | None, typer.Option("--server-key", help="PEM private key of --server-cert")
    ] = None,
    key_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--key-passphrase-file", help="File holding the passphrase of an encrypted --server-key"
        ),
    ] = None,
    server_chain: Annotated[
        Path | None,
        typer.Option(
            "--server-chain", help="PEM intermediates (and root) of --server-cert, leaf side first"
        ),
    ] = None,
    station_ca: Annotated[
        Path | None,
        typer.Option("--station-ca", help="PEM CA whose station certificates are to be accepted"),
    ] = None,
    crl: Annotated[
        Path | None,
        typer.Option(
            "--crl", help="CRL (PEM or DER) of --station-ca, or alone: a new CRL of an imported CA"
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Name for an imported station CA (default: from its CN)"),
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option("--root", help="Not supported: replacing the CPO root (explains why)"),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Import your own server certificate, an extra station CA, or a CRL of an imported CA."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)
    if root is not None:
        fail(ROOT_IMPORT_REFUSAL)
    server = server_cert is not None or server_key is not None
    if server and station_ca is not None:
        fail("import a server certificate and a station CA in two separate commands")
    if server and (server_cert is None or server_key is None):
        fail("--server-cert and --server-key go together")
    if not server and station_ca is None and crl is None:
        fail("nothing to import: give --server-cert and --server-key, --station-ca, or --crl")
    if not server and (server_chain is not None or key_passphrase_file is not None):
        fail("--server-chain and --key-passphrase-file belong to --server-cert/--server-key")
    if server and crl is not None:
        fail("--crl belongs to --station-ca (or stands alone), not to a server certificate")

    async def action(store: Store) -> ImportResult:
        pki = open_pki(settings)  # a CA must exist, and its passphrase must open it
        if server_cert is not None and server_key is not None:
            secret = _read_secret_file(key_passphrase_file) if key_passphrase_file else None
            result = import_server_certificate(
                settings,
                pki.passphrase,
                cert_path=server_cert,
                key_path=server_key,
                key_passphrase=secret,
                chain_path=server_chain,
            )
            kind = "server-certificate"
        elif station_ca is not None:
            result = import_station_ca(settings, ca_path=station_ca, crl_path=crl, name=name)
            kind = "station-ca"
        else:
            assert crl is not None
            result = import_crl(settings, crl)
            kind = "crl"
        await _record_import(store, result, kind)
        return result

    result = run(with_store(settings, lambda store: guarded(action(store))))
    for path in result.written:
        typer.echo(f"wrote {path}")
    for note in result.notes:
        typer.echo(f"note: {note}")


# ---------------------------------------------------------------------------- root rollover

rollover_app = typer.Typer(
    help="CSMS root rollover (CRT-08): prepare a new root, install it on stations, switch.",
    no_args_is_help=True,
)
ca_app.add_typer(rollover_app, name="rollover")

ROLLOVER_API = "/api/ca/rollover"


def _fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def _describe(label: str, certificate: x509.Certificate) -> None:
    typer.echo(f"{label}: {certificate.subject.rfc4514_string()}")
    typer.echo(f"  SHA-256 {_fingerprint(certificate)}")
    typer.echo(
        f"  valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
        f"{certificate.not_valid_after_utc:%Y-%m-%d}"
    )


def print_rollover_status(status: RolloverStatus) -> None:
    typer.echo(f"rollover: {status.state}")
    if status.current_root is not None:
        _describe("current CPO root", status.current_root)
    if status.prepared is not None:
        _describe("new root", status.prepared.new_root)
        _describe("cross certificate (new root signed by the current one)", status.prepared.cross)
    if status.switch_started_at is not None:
        typer.echo(
            f"a switch started {status.switch_started_at:%Y-%m-%d %H:%M} UTC and did not "
            "finish: run 'chargewarden ca rollover switch' again to complete it"
        )
    install = status.install
    if status.pending and status.switch_started_at is None:
        if install is None or not install.runs:
            typer.echo("install: not run yet ('chargewarden ca rollover install')")
        else:
            last = install.last_run
            counts = ", ".join(f"{n} {outcome}" for outcome, n in install.counts().items())
            typer.echo(
                f"install: {len(install.runs)} run(s), last {last:%Y-%m-%d %H:%M} UTC; "
                f"{len(install.installed)} station(s) have the new root ({counts})"
                if last
                else "install: no runs"
            )
            for identity, entry in install.not_installed.items():
                typer.echo(
                    f"  {identity}: {entry.get('outcome')}"
                    + (
                        f" ({entry.get('status') or entry.get('detail')})"
                        if entry.get("status") or entry.get("detail")
                        else ""
                    )
                )
    if status.last_switch is not None:
        typer.echo(
            f"last switch: {status.last_switch.finished_at:%Y-%m-%d %H:%M} UTC, old root "
            f"archived in {status.last_switch.archive}"
        )
    for problem in status.problems:
        typer.echo(f"problem: {problem}")


@rollover_app.command("status")
def rollover_status_command(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Where the root rollover stands: prepared, installed on which stations, switched."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action() -> RolloverStatus:
        return rollover_status(settings)

    print_rollover_status(run(guarded(action())))


@rollover_app.command("prepare")
def rollover_prepare(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Step 1: create a new CPO root and its cross certificate (offline).

    The cross certificate is the new root's name and key, signed by the current root. Nothing
    the CSMS uses changes yet.
    """
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action(store: Store) -> PreparedRollover:
        pki = open_pki(settings)
        try:
            prepared = prepare_rollover(settings, pki.passphrase)
        except RolloverAlreadyPrepared as exc:
            print_rollover_status(exc.status)
            raise CliError(
                f"{exc}; finish it ('ca rollover install', then 'ca rollover switch') first"
            ) from None
        await record_certificate(
            store, record_for(prepared.new_root, issuer_ca=CPO_ROOT, role=CertificateRole.ROOT)
        )
        await record_certificate(
            store, record_for(prepared.cross, issuer_ca=CPO_ROOT, role=CertificateRole.CA)
        )
        await store.audit.add(
            AuditRecord(
                actor=CLI_ACTOR,
                action="ca.rollover.prepare",
                target=str(pki.ca_dir),
                details={
                    "new_root_sha256": prepared.new_root_sha256,
                    "cross_sha256": _fingerprint(prepared.cross),
                    "current_root_sha256": _fingerprint(pki.root.certificate),
                },
            )
        )
        return prepared

    prepared = run(with_store(settings, lambda store: guarded(action(store))))
    _describe("prepared a new root", prepared.new_root)
    _describe("and its cross certificate (signed by the current root)", prepared.cross)
    typer.echo(f"files in {RolloverPaths(settings.effective_ca_dir).directory}")
    typer.echo(
        "next: with the CSMS running, 'chargewarden ca rollover install' gives every connected "
        "station the new root; then 'chargewarden ca rollover switch'"
    )


def _outcome_row(outcome: dict[str, Any]) -> list[object]:
    check = outcome.get("additional_root_check")
    return [
        outcome.get("identity"),
        outcome.get("outcome"),
        "-" if check is None else ("yes" if check else "no"),
        outcome.get("certificate") or "-",
        outcome.get("status") or "",
        (outcome.get("detail") or "")[:120],
    ]


@rollover_app.command("install")
def rollover_install(
    station: Annotated[
        list[str] | None,
        typer.Option(
            "--station", help="Only this station (repeatable); default: every connected station"
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=100, help="Stations handled at the same time")
    ] = 10,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Step 2: install the new root on stations, through the running CSMS.

    Stations that check AdditionalRootCertificateCheck get the cross certificate, the others
    the new root itself.
    """
    with api_client(config, data_dir, api_url) as api:
        status = api.get(ROLLOVER_API)
        if status.get("state") != "prepared":
            fail(
                "no root rollover is prepared; run 'chargewarden ca rollover prepare' first"
                if status.get("state") == "idle"
                else "a switch to the new root is under way; complete it with "
                "'chargewarden ca rollover switch'"
            )
        identities = (
            list(dict.fromkeys(station))
            if station
            else [str(c["identity"]) for c in api.get("/api/connections")]
        )
        if not identities:
            typer.echo("no station is connected; nothing to install")
            return
        outcomes: list[dict[str, Any]] = []
        notes: set[str] = set()
        progress: Any = (
            typer.progressbar(
                length=len(identities), label="installing the new root", file=sys.stderr
            )
            if sys.stderr.isatty()
            else contextlib.nullcontext(None)
        )
        # One request per batch: the server handles a batch's stations concurrently, and the
        # bar moves as each batch completes.
        with progress as bar:
            for start in range(0, len(identities), concurrency):
                batch = identities[start : start + concurrency]
                answer = api.post(
                    f"{ROLLOVER_API}/install", {"stations": batch, "concurrency": concurrency}
                )
                outcomes += answer.get("outcomes") or []
                if answer.get("note"):
                    notes.add(str(answer["note"]))
                if bar is not None:
                    bar.update(len(batch))
    print_table(
        ["station", "outcome", "checks", "given", "status", "detail"],
        [_outcome_row(o) for o in outcomes],
    )
    for note in sorted(notes):
        typer.echo(f"note: {note}")
    missing = [o for o in outcomes if o.get("outcome") not in INSTALLED_OUTCOMES]
    have = len(outcomes) - len(missing)
    if missing:
        fail(
            f"{len(missing)} of {len(outcomes)} station(s) did not get the new root (listed "
            "above); they fail TLS after the switch: rerun install for them once reachable"
        )
    typer.echo(f"all {have} station(s) have the new root; next: 'chargewarden ca rollover switch'")


@rollover_app.command("switch")
def rollover_switch(
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Switch even if install has not run (stations without the new root then fail TLS)",
        ),
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Step 3: make the new root the CPO root (offline; a running CSMS follows).

    The old root is archived, the server, station and V2G CAs are re-certified under the new
    root with their keys unchanged, and the server certificates are re-issued. A running CSMS
    picks it all up without a restart.
    """
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action(store: Store) -> SwitchResult:
        pki = open_pki(settings)
        log = read_install_log(settings) if rollover_status(settings).state == "prepared" else None
        attempted = set(log.stations) if log is not None else set()
        never = [
            s.identity
            for s in await store.stations.list()
            if s.security_profile >= 2 and s.identity not in attempted
        ]
        result = switch_root(settings, pki.passphrase, force=force)
        if never and (log is not None or force):
            typer.echo(
                f"warning: {len(never)} registered TLS station(s) were never given the new root "
                f"and will fail TLS: {', '.join(never[:20])}" + (" ..." if len(never) > 20 else ""),
                err=True,
            )
        await record_hierarchy(store, result.pki)
        await store.audit.add(
            AuditRecord(
                actor=CLI_ACTOR,
                action="ca.rollover.switch",
                target=str(pki.ca_dir),
                details={
                    "new_root_sha256": _fingerprint(result.new_root),
                    "retired_root_sha256": _fingerprint(result.retired_root),
                    "archive": str(result.archive),
                    "forced": force,
                    "recertified": list(result.recertified),
                    "resumed": result.resumed,
                },
            )
        )
        return result

    result = run(with_store(settings, lambda store: guarded(action(store))))
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if result.resumed:
        typer.echo("completed the switch that had been interrupted")
    _describe("the CPO root is now", result.new_root)
    typer.echo(f"the old root is archived in {result.archive}")
    if result.recertified:
        typer.echo(f"re-certified under the new root (same keys): {', '.join(result.recertified)}")
    if result.reissued_servers:
        typer.echo(f"re-issued server certificates: {', '.join(result.reissued_servers)}")
    typer.echo(
        f"a running CSMS uses the new chain within {settings.pki_watch_seconds:g} s; stations "
        f"are offered the new root at http://{settings.public_hostname}:{settings.api_port}"
        "/pki/csms-root.pem"
    )
