"""`chargewarden firmware sign | verify`: sign an image as a manufacturer would, and check an
image, signature and signing certificate the way the CSMS does before a station gets them
(FW-02, whitepaper A00.FR.706). Both work offline, on files."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chargewarden.cli.ca import open_pki
from chargewarden.cli.common import ConfigOption, DataDirOption, fail, settings_from
from chargewarden.pki import PkiError
from chargewarden.pki.firmware import FirmwareRefused, digest_file, sign_digest, verify_firmware
from chargewarden.pki.keys import load_private_key_pem

KEY_PASSPHRASE_ENV = "CHARGEWARDEN_FIRMWARE_KEY_PASSPHRASE"  # noqa: S105 - a variable name

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
