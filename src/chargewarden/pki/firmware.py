"""Firmware signatures (FW-02, seed 002 §4.1, whitepaper A00.FR.706): sign an image as a
manufacturer would, and check an image, its signature and its signing certificate before any
station is told to install it.

The signature is over the whole image with SHA-256: ECDSA for EC keys, RSA-PSS (MGF1-SHA-256,
salt as long as the digest, what ``openssl dgst -sigopt rsa_padding_mode:pss`` makes) for RSA
keys, base64 as OCPP carries it. Images are hashed in chunks, so their size does not matter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID

from chargewarden.pki import PkiError
from chargewarden.pki.keys import check_key_strength

CHUNK = 1024 * 1024
# OCPP 2.0.1 signature field: string[0..800]; 1.6 SignedUpdateFirmware: string[0..800].
MAX_SIGNATURE_CHARS = 800
MAX_CHAIN_DEPTH = 4


class FirmwareRefused(ValueError):
    """The image, its signature or its signing certificate is not acceptable; says why."""


@dataclass(frozen=True, slots=True)
class VerifiedFirmware:
    sha256_hex: str
    size: int
    signer: x509.Certificate
    algorithm: str  # "ECDSA-SHA256" or "RSA-PSS-SHA256"


def digest_file(path: Path) -> tuple[bytes, int]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return sha.digest(), size


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def sign_digest(digest: bytes, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    """Base64 signature over an image whose SHA-256 is ``digest``."""
    prehashed = Prehashed(hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        raw = key.sign(digest, ec.ECDSA(prehashed))
    elif isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(digest, _pss(), prehashed)
    else:
        raise FirmwareRefused("firmware is signed with an EC or RSA key only")
    return base64.b64encode(raw).decode("ascii")


def _check_signature(digest: bytes, signature_b64: str, signer: x509.Certificate) -> str:
    text = "".join(signature_b64.split())
    if not text or len(text) > MAX_SIGNATURE_CHARS:
        raise FirmwareRefused(
            f"the signature must be 1 to {MAX_SIGNATURE_CHARS} base64 characters (OCPP limit)"
        )
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FirmwareRefused("the signature is not valid base64") from None
    public_key = signer.public_key()
    prehashed = Prehashed(hashes.SHA256())
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(raw, digest, ec.ECDSA(prehashed))
            return "ECDSA-SHA256"
        if isinstance(public_key, rsa.RSAPublicKey):
            # Verifiers accept any salt length: signers differ (digest length, maximum).
            public_key.verify(
                raw,
                digest,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                prehashed,
            )
            return "RSA-PSS-SHA256"
    except InvalidSignature:
        raise FirmwareRefused(
            "the signature does not verify: the image was altered, or it was signed with "
            "another key than the signing certificate's"
        ) from None
    raise FirmwareRefused("the signing certificate has neither an EC nor an RSA key")


def _usable_signer(signer: x509.Certificate) -> None:
    try:
        basic = signer.extensions.get_extension_for_class(x509.BasicConstraints).value
        if basic.ca:
            raise FirmwareRefused("the signing certificate is a CA certificate, not a signer")
    except x509.ExtensionNotFound:
        pass
    try:
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise FirmwareRefused("the signing certificate's key usage excludes signatures")
    except x509.ExtensionNotFound:
        pass
    try:
        ekus = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CODE_SIGNING not in ekus:
            raise FirmwareRefused("the signing certificate is not for code signing (EKU)")
    except x509.ExtensionNotFound:
        pass
    try:
        check_key_strength(signer.public_key(), "the signing certificate's key")
    except PkiError as exc:
        raise FirmwareRefused(str(exc)) from None


def _valid_at(certificate: x509.Certificate, now: datetime, what: str) -> None:
    if now < certificate.not_valid_before_utc:
        raise FirmwareRefused(
            f"{what} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    if now > certificate.not_valid_after_utc:
        raise FirmwareRefused(f"{what} expired on {certificate.not_valid_after_utc:%Y-%m-%d} UTC")


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_chain(
    chain: Sequence[x509.Certificate],
    roots: Iterable[x509.Certificate],
    now: datetime,
    revoked: Callable[[x509.Certificate], str | None] = lambda _: None,
) -> x509.Certificate:
    """The signer (``chain[0]``) must chain through the given intermediates to one of the
    manufacturer roots, every certificate valid now and none revoked. Returns the signer."""
    if not chain:
        raise FirmwareRefused("no signing certificate")
    signer = chain[0]
    _usable_signer(signer)
    anchors = list(roots)
    if not anchors:
        raise FirmwareRefused("no manufacturer root is configured to check firmware against")
    current, intermediates = signer, list(chain[1:])
    for depth in range(MAX_CHAIN_DEPTH):
        what = "the signing certificate" if depth == 0 else "an intermediate certificate"
        _valid_at(current, now, what)
        reason = revoked(current)
        if reason is not None:
            raise FirmwareRefused(f"{what} is revoked ({reason})")
        root = next((r for r in anchors if _issued_by(current, r)), None)
        if root is not None:
            _valid_at(root, now, "the manufacturer root")
            return signer
        parent = next((c for c in intermediates if _issued_by(current, c)), None)
        if parent is None:
            raise FirmwareRefused(
                "the signing certificate does not chain to a configured manufacturer root"
            )
        try:
            if not parent.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                raise FirmwareRefused("a certificate in the signing chain is not a CA")
        except x509.ExtensionNotFound:
            raise FirmwareRefused("a certificate in the signing chain is not a CA") from None
        intermediates.remove(parent)
        current = parent
    raise FirmwareRefused("the signing chain is too long")


def verify_firmware(
    image: Path,
    signature_b64: str,
    chain: Sequence[x509.Certificate],
    roots: Iterable[x509.Certificate],
    now: datetime,
    revoked: Callable[[x509.Certificate], str | None] = lambda _: None,
) -> VerifiedFirmware:
    """A00.FR.706: certificate chain first, then the signature over the image."""
    signer = check_chain(chain, roots, now, revoked)
    digest, size = digest_file(image)
    algorithm = _check_signature(digest, signature_b64, signer)
    return VerifiedFirmware(digest.hex(), size, signer, algorithm)
