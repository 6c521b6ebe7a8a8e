"""`chargewarden firmware ...` (FW-01..03).

`sign` and `verify` work on files: sign an image as a manufacturer would, and check an image,
signature and signing certificate the way the CSMS does before a station gets them (whitepaper
A00.FR.706). `add`, `list` and `show` work offline on the store and the data directory, like
`station add`: registering a release needs the image file on this host, and must not depend on
a running server. `update` and `status` go through the running server (cli/firmware_updates.py),
which sends the updates and follows the stations' reports."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chargewarden.cli import firmware_updates
from chargewarden.cli.ca import open_pki
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
from chargewarden.firmware.releases import FirmwareReleases, ReleaseError
from chargewarden.firmware.trust import load_trust
from chargewarden.pki import PkiError
from chargewarden.pki.firmware import FirmwareRefused, digest_file, sign_digest, verify_firmware
from chargewarden.pki.keys import load_private_key_pem
from chargewarden.security.alerts import AlertConfigError, Alerts
from chargewarden.security.recorder import SecurityRecorder
from chargewarden.store import Store
from chargewarden.store.transfer_records import FirmwareReleaseRecord, FirmwareUpdateRecord
from chargewarden.transfer.storage import TransferStorage

KEY_PASSPHRASE_ENV = "CHARGEWARDEN_FIRMWARE_KEY_PASSPHRASE"  # noqa: S105 - a variable name
CLI_ACTOR = "cli"
# `firmware show` lists this many of the release's latest updates.
SHOW_UPDATES = 20

firmware_app = typer.Typer(help="Signed firmware (FW-01/02/03).", no_args_is_help=True)

ImageArgument = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Firmware image")
]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror}")


def _certificates(path: Path, what: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(_read(path, what))
    except ValueError:
        fail(f"{what} {path} holds no PEM certificate")


def _signing_key(path: Path) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    passphrase = os.environ.get(KEY_PASSPHRASE_ENV)
    try:
        key = load_private_key_pem(
            _read(path, "key"), passphrase.encode() if passphrase else None, f"key {path}"
        )
    except PkiError as exc:
        hint = f" (an encrypted key's passphrase is read from {KEY_PASSPHRASE_ENV})"
        fail(f"{exc}{hint if not passphrase else ''}")
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        fail("firmware is signed with an EC or RSA key")
    return key


@firmware_app.command("sign")
def sign(
    image: ImageArgument,
    key: Annotated[Path | None, typer.Option("--key", help="Signer's private key (PEM)")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", help="Signer's certificate (PEM)")] = None,
    dev_signer: Annotated[
        bool,
        typer.Option(
            "--dev-signer", help="Use the built-in development firmware signer (demo, tests)"
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the base64 signature here (default: stdout)")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Sign IMAGE: ECDSA or RSA-PSS over SHA-256, base64, as OCPP carries it."""
    if dev_signer == (key is not None):
        fail("give --key and --cert, or --dev-signer")
    if dev_signer:
        try:
            signer = open_pki(settings_from(config, data_dir)).firmware_signer
        except PkiError as exc:
            fail(str(exc))
        private_key, certificate = signer.key, signer.certificate
        assert isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    else:
        if cert is None or key is None:
            fail("--key needs --cert (the certificate the stations will check)")
        private_key = _signing_key(key)
        certificate = _certificates(cert, "certificate")[0]
        if certificate.public_key().public_numbers() != private_key.public_key().public_numbers():
            fail(f"the key {key} does not belong to the certificate {cert}")
    digest, size = digest_file(image)
    signature = sign_digest(digest, private_key)
    if out is None:
        typer.echo(signature)
        return
    out.write_text(signature + "\n")
    typer.echo(f"signed {image} ({size} bytes, SHA-256 {digest.hex()}); signature in {out}")


@firmware_app.command("verify")
def verify(
    image: ImageArgument,
    signature: Annotated[Path, typer.Option("--signature", help="File with the base64 signature")],
    cert: Annotated[
        Path, typer.Option("--cert", help="Signing certificate, intermediates after it (PEM)")
    ],
    root: Annotated[
        list[Path] | None,
        typer.Option("--root", help="Manufacturer root (PEM); default: the CSMS's own"),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Check IMAGE as the CSMS does before sending it: chain, validity, then the signature."""
    if root:
        roots = [c for path in root for c in _certificates(path, "root")]
    else:
        try:
            roots = [open_pki(settings_from(config, data_dir)).ca("manufacturer-root").certificate]
        except PkiError as exc:
            fail(f"{exc}; or give --root")
    chain = _certificates(cert, "certificate")
    try:
        result = verify_firmware(
            image, _read(signature, "signature").decode("ascii", "replace"), chain, roots,
            datetime.now(UTC),
        )  # fmt: skip
    except FirmwareRefused as exc:
        fail(f"refused: {exc}")
    subject = result.signer.subject.rfc4514_string()
    typer.echo(
        f"ok: {image} ({result.size} bytes, SHA-256 {result.sha256_hex}) signed by {subject} "
        f"({result.algorithm})"
    )


# ------------------------------------------------------------------ releases (offline, store)


def _releases(settings: Settings, store: Store, alerts: Alerts | None = None) -> FirmwareReleases:
    """The registry as the server builds it (app.py), with the same trust and size limit, so a
    release the CLI accepts is one the server will send. A refusal alerts from here too."""
    return FirmwareReleases(
        store,
        TransferStorage(settings.data_dir),
        lambda: load_trust(settings),
        SecurityRecorder(store, alerts),
        lambda: datetime.now(UTC),
        settings.files.max_firmware_bytes,
    )


def _day(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value is not None else "-"


@firmware_app.command("add")
def add(
    image: ImageArgument,
    signature: Annotated[
        Path,
        typer.Option(
            "--signature", help="File with the base64 signature (ECDSA or RSA-PSS, SHA-256)"
        ),
    ],
    cert: Annotated[
        Path, typer.Option("--cert", help="Signing certificate, intermediates after it (PEM)")
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Release name (default: the image's file name)")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Register IMAGE as a firmware release, after checking it (FW-02, A00.FR.706).

    The signer must chain to a manufacturer root (firmware.manufacturer_roots, else the dev root).

    It must be valid and not revoked, and the signature must verify over the image.

    A refusal exits 1 and is stored as a FirmwareRefused security event.
    """
    settings = settings_from(config, data_dir)
    quiet_logging(settings)
    # A refusal is stored as a security event (and alert) and printed as the error line; the
    # recorder's and the alert's log lines would say it again on the same terminal.
    for logger in ("chargewarden.security", "chargewarden.alerts"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    signature_text = _read(signature, "signature").decode("ascii", "replace")
    chain_pem = _read(cert, "certificate")

    async def action(store: Store) -> FirmwareReleaseRecord:
        try:
            alerts = Alerts(store, settings.alerts)
        except AlertConfigError as exc:
            raise CliError(str(exc)) from None
        try:
            return await _releases(settings, store, alerts).register(
                image, signature_text, chain_pem, name=name, actor=CLI_ACTOR
            )
        except FirmwareRefused as exc:
            hint = ""
            if "roots cannot be read" in str(exc) and not settings.firmware.manufacturer_roots:
                hint = (
                    " (set [firmware] manufacturer_roots, or `chargewarden ca init` for the "
                    "development root)"
                )
            raise CliError(f"refused: {exc}{hint}") from None
        except ReleaseError as exc:
            raise CliError(str(exc)) from None
        finally:
            # A refusal's alert is stored already; give its webhook delivery a moment.
            await alerts.close(grace=settings.alerts.webhook_timeout)

    release = run(with_store(settings, action))
    typer.echo(f"registered firmware release {release.name}")
    typer.echo(f"  file     {release.filename} ({release.size} bytes)")
    typer.echo(f"  SHA-256  {release.sha256}")
    typer.echo(f"  signer   {release.signer_subject} ({release.algorithm})")
    typer.echo(f"  valid    until {_day(release.signer_not_after)} UTC")
    typer.echo(
        f"update a station with: chargewarden firmware update --station ID --release {release.name}"
    )


@firmware_app.command("list")
def list_releases(
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 100,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Registered firmware releases, newest first."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action(store: Store) -> tuple[list[FirmwareReleaseRecord], int]:
        return await store.firmware_releases.list(
            limit=limit
        ), await store.firmware_releases.count()

    releases, total = run(with_store(settings, action))
    if not releases:
        typer.echo(
            "no firmware releases (register one with: chargewarden firmware add IMAGE "
            "--signature SIG --cert CERT)"
        )
        return
    print_table(
        ["name", "size", "SHA-256", "algorithm", "signer", "signer expires (UTC)", "added (UTC)"],
        [
            [
                r.name,
                r.size,
                r.sha256[:16] + "…",
                r.algorithm,
                r.signer_subject,
                _day(r.signer_not_after),
                _day(r.created_at),
            ]
            for r in releases
        ],
    )
    if total > len(releases):
        typer.echo(f"... {total - len(releases)} older release(s) not shown (--limit)")


@firmware_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Release name")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """One release: what was checked when it was registered, and its latest updates."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action(store: Store) -> tuple[FirmwareReleaseRecord, list[FirmwareUpdateRecord]]:
        try:
            release = await _releases(settings, store).get(name)
        except ReleaseError as exc:
            raise CliError(str(exc)) from None
        updates = await store.firmware_updates.list(release_id=release.id, limit=SHOW_UPDATES)
        return release, updates

    r, updates = run(with_store(settings, action))
    rows = [
        ("name", r.name),
        ("file", f"{r.filename} ({r.size} bytes)"),
        ("SHA-256", r.sha256),
        ("algorithm", r.algorithm),
        ("signer", r.signer_subject),
        ("signer expires", f"{_day(r.signer_not_after)} UTC"),
        ("added", f"{_day(r.created_at)} UTC by {r.actor}"),
        ("signature", r.signature[:60] + ("…" if len(r.signature) > 60 else "")),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        typer.echo(f"{key.ljust(width)}  {value}")
    if not updates:
        typer.echo("no updates with this release yet")
        return
    typer.echo(f"latest updates (at most {SHOW_UPDATES}):")
    print_table(
        ["update", "station", "state", "station status", "updated (UTC)"],
        [
            [u.id, u.station_identity, u.state, u.station_status or "-", _day(u.updated_at)]
            for u in updates
        ],
    )


# Through the running server's API (cli/firmware_updates.py).
firmware_app.command("update")(firmware_updates.update)
firmware_app.command("status")(firmware_updates.status)
