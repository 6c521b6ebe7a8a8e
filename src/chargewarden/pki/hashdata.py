"""certificateHashData: how OCPP names an installed certificate (whitepaper ed.3 §6.1, RFC 6960).

- issuerNameHash: hash of the DER encoding of the certificate's issuer name.
- issuerKeyHash: hash of the issuer's public key *value*: the contents of the
  subjectPublicKey BIT STRING (for RSA the DER RSAPublicKey, for EC the encoded point), not
  the whole SubjectPublicKeyInfo. Using the SPKI is the common mistake; the station then never
  finds the certificate the CSMS asks it to delete.
- serialNumber: the serial in hexadecimal without "0x" and without leading zeros.

Hex digits are written in lower case and compared without regard to case, because stations
differ.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa


class HashAlgorithm(StrEnum):
    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"


_HASHLIB = {
    HashAlgorithm.SHA256: "sha256",
    HashAlgorithm.SHA384: "sha384",
    HashAlgorithm.SHA512: "sha512",
}


@dataclass(frozen=True, slots=True)
class CertificateHashData:
    hash_algorithm: HashAlgorithm
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str

    def to_ocpp(self) -> dict[str, str]:
        return {
            "hashAlgorithm": self.hash_algorithm.value,
            "issuerNameHash": self.issuer_name_hash,
            "issuerKeyHash": self.issuer_key_hash,
            "serialNumber": self.serial_number,
        }

    @classmethod
    def from_ocpp(cls, data: dict[str, Any]) -> CertificateHashData:
        """From a schema-validated OCPP object; ValueError for an unknown algorithm."""
        return cls(
            HashAlgorithm(data["hashAlgorithm"]),
            str(data["issuerNameHash"]).lower(),
            str(data["issuerKeyHash"]).lower(),
            normalize_serial(str(data["serialNumber"])),
        )

    def same_certificate(self, other: CertificateHashData) -> bool:
        """True if both name the same certificate (only meaningful for the same algorithm)."""
        return (
            self.hash_algorithm is other.hash_algorithm
            and self.issuer_name_hash.lower() == other.issuer_name_hash.lower()
            and self.issuer_key_hash.lower() == other.issuer_key_hash.lower()
            and normalize_serial(self.serial_number) == normalize_serial(other.serial_number)
        )


def normalize_serial(serial_hex: str) -> str:
    digits = serial_hex.strip().lower().removeprefix("0x").lstrip("0")
    return digits or "0"


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def public_key_value(key: x509.Certificate | Any) -> bytes:
    """The bytes inside the subjectPublicKey BIT STRING of a certificate or public key."""
    public_key = key.public_key() if isinstance(key, x509.Certificate) else key
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    if isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise ValueError(f"unsupported public key type {type(public_key).__name__}")


def certificate_hash_data(
    certificate: x509.Certificate,
    algorithm: HashAlgorithm = HashAlgorithm.SHA256,
    issuer: x509.Certificate | None = None,
) -> CertificateHashData:
    """Hash data of ``certificate``; ``issuer`` may be omitted for a self-issued certificate.

    ValueError if the issuer is needed but missing or is not the certificate's issuer.
    """
    if issuer is None:
        if certificate.issuer != certificate.subject:
            raise ValueError("the issuer certificate is needed for a certificate not self-issued")
        issuer = certificate
    elif issuer.subject != certificate.issuer:
        raise ValueError("the given issuer certificate did not issue this certificate")
    name = _HASHLIB[algorithm]
    return CertificateHashData(
        hash_algorithm=algorithm,
        issuer_name_hash=hashlib.new(name, certificate.issuer.public_bytes()).hexdigest(),
        issuer_key_hash=hashlib.new(name, public_key_value(issuer)).hexdigest(),
        serial_number=serial_hex(certificate.serial_number),
    )
