"""What the station checks about a firmware update (SIM-05; whitepaper L01.FR.04/12/23/24):
the signing certificate against its manufacturer roots before accepting the request, and the
signature over the whole downloaded file before installing it. Pure functions, no state.

The chain rules are the CSMS's own (`chargewarden.pki.firmware.check_chain`: a code-signing
leaf, valid now, issued by an installed ManufacturerRootCertificate), so the station and the
CSMS cannot disagree on what a valid signer is. The signature is checked here over bytes in
memory, since the station keeps the download in memory: SHA-256 over the entire file, ECDSA or
RSA-PSS, base64 as OCPP carries it (seed 002 §4.1; the whitepaper's "ECSchnorr" is read as
ECDSA, as every implementation does).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from chargewarden.pki.firmware import MAX_SIGNATURE_CHARS, FirmwareRefused, check_chain

FIRMWARE_VERSION_MAX = 50  # BootNotification firmwareVersion maxLength, both versions


class CertificateCheck:
    """The outcome of checking a signingCertificate: the signer, or why it was refused."""

    __slots__ = ("problem", "signer")

    def __init__(self, signer: x509.Certificate | None, problem: str = "") -> None:
        self.signer = signer
        self.problem = problem

    @property
    def ok(self) -> bool:
        return self.signer is not None


def check_signing_certificate(
    pem: str | None, roots: Iterable[x509.Certificate], now: datetime
) -> CertificateCheck:
    """L01.FR.23/24: the PEM signingCertificate (signer first; intermediates may follow,
    although the whitepaper says manufacturers use none) must chain to a manufacturer root."""
    if not pem:
        return CertificateCheck(None, "the request carries no signingCertificate")
    try:
        chain = x509.load_pem_x509_certificates(pem.encode("ascii", "replace"))
    except ValueError:
        return CertificateCheck(None, "signingCertificate is not a PEM certificate")
    try:
        return CertificateCheck(check_chain(chain, roots, now))
    except FirmwareRefused as exc:
        return CertificateCheck(None, str(exc))


def signature_problem(data: bytes, signature_b64: str, signer: x509.Certificate) -> str | None:
    """L01.FR.04/12: None if `signature_b64` is the signer's signature over SHA-256 of the
    whole file, else why not."""
    text = "".join(signature_b64.split())
    if not text or len(text) > MAX_SIGNATURE_CHARS:
        return f"the signature must be 1 to {MAX_SIGNATURE_CHARS} base64 characters"
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return "the signature is not valid base64"
    public_key = signer.public_key()
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(raw, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public_key, rsa.RSAPublicKey):
            # Any salt length: signers differ (digest length, maximum).
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            public_key.verify(raw, data, pss, hashes.SHA256())
        else:
            return "the signing certificate has neither an EC nor an RSA key"
    except InvalidSignature:
        return "the signature does not verify over the downloaded file"
    return None


def version_from_location(location: str, fallback: str) -> str:
    """The firmwareVersion a station reports after installing from `location`: the last path
    segment without its extension (".../fw-2.1.0.bin" → "fw-2.1.0"), at most 50 characters.
    A location with no usable name keeps `fallback`."""
    try:
        segment = unquote(urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1])
    except ValueError:
        return fallback
    stem = PurePosixPath(segment).stem if segment not in ("", ".", "..") else ""
    stem = "".join(c for c in stem if c.isprintable()).strip()
    return stem[:FIRMWARE_VERSION_MAX] if stem else fallback
