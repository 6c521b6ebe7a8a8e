"""`chargewarden ca ...`: create, inspect and extend the certificate authority."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes

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
from chargewarden.pki.layout import Layout
from chargewarden.pki.material import imported_warnings
from chargewarden.pki.passphrase import load_passphrase, passphrase_source
from chargewarden.pki.recording import record_certificate, record_hierarchy
from chargewarden.store import Store
from chargewarden.store.records import AuditRecord

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
        await store.audit.add(AuditRecord(
            actor=CLI_ACTOR, action="ca.init", target=str(pki.ca_dir),
            details={"root_sha256": pki.root.certificate.fingerprint(hashes.SHA256()).hex()},
        ))
        return pki

    pki = run(with_store(settings, lambda store: guarded(action(store))))
    typer.echo(f"created the CA in {pki.ca_dir}")
    print_hierarchy(pki, datetime.now(UTC))
    typer.echo(f"private keys: encrypted PKCS#8 (mode 0600), passphrase from "
               f"{passphrase_source(settings)}")
    typer.echo(f"stations must trust {pki.root.cert_path} (also served at "
               f"http://{settings.public_hostname}:{settings.api_port}/pki/csms-root.pem)")


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
    await store.audit.add(AuditRecord(
        actor=CLI_ACTOR, action="ca.import", target=kind,
        details={
            "files": [str(p) for p in result.written],
            "certificates": [
                {"serial": r.serial, "subject_cn": r.subject_cn, "sha256": r.fingerprint_sha256}
                for r in result.records
            ],
        },
    ))


@ca_app.command("import")
def import_(
    server_cert: Annotated[Path | None, typer.Option(
        "--server-cert", help="PEM server certificate (may be followed by its chain)")] = None,
    server_key: Annotated[Path | None, typer.Option(
        "--server-key", help="PEM private key of --server-cert")] = None,
    key_passphrase_file: Annotated[Path | None, typer.Option(
        "--key-passphrase-file", help="File holding the passphrase of an encrypted --server-key"
    )] = None,
    server_chain: Annotated[Path | None, typer.Option(
        "--server-chain", help="PEM intermediates (and root) of --server-cert, leaf side first"
    )] = None,
    station_ca: Annotated[Path | None, typer.Option(
        "--station-ca", help="PEM CA whose station certificates are to be accepted")] = None,
    crl: Annotated[Path | None, typer.Option(
        "--crl", help="CRL (PEM or DER) of --station-ca, or alone: a new CRL of an imported CA"
    )] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="Name for an imported station CA (default: from its CN)")] = None,
    root: Annotated[Path | None, typer.Option(
        "--root", help="Not supported: replacing the CPO root (explains why)")] = None,
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
                settings, pki.passphrase, cert_path=server_cert, key_path=server_key,
                key_passphrase=secret, chain_path=server_chain,
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
