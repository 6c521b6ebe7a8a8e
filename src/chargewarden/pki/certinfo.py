"""What admission needs to know about a client certificate, read once from its DER."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    subject_cn: str | None
    subject_o: str | None
    serial_hex: str  # upper-case hex without leading zeros (as OCPP certificateHashData)
    issuer: str  # RFC 4514 string of the issuer name
    fingerprint_sha256: str  # lower-case hex of the DER
    not_before: datetime
    not_after: datetime
    is_ca: bool


def _single(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    # A subject with two CNs is ambiguous; treat it as having none rather than pick one.
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else None


def serial_hex(serial: int) -> str:
    return format(serial, "X")


def certificate_facts(certificate: x509.Certificate) -> CertificateFacts:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        is_ca = constraints.value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertificateFacts(
        subject_cn=_single(certificate.subject, NameOID.COMMON_NAME),
        subject_o=_single(certificate.subject, NameOID.ORGANIZATION_NAME),
        serial_hex=serial_hex(certificate.serial_number),
        issuer=certificate.issuer.rfc4514_string(),
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        is_ca=is_ca,
    )
