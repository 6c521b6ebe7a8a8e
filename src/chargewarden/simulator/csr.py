"""The station's key pairs and certificate signing requests (SIM-02), correct or deliberately
defective (`StationConfig.csr_fault`, to test how a CSMS treats a bad CSR).

A correct CSR (RFC 2986, PEM) carries CN = the station's serial number and O = the CPO name
(whitepaper A02.FR.03/13), a key the station generated itself (EC P-256, or RSA 2048), and is
signed with SHA-256. Pure functions: the caller keeps the key.
"""

from __future__ import annotations

import base64
import textwrap
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from chargewarden.pki.keys import PrivateKey

WEAK_RSA_BITS = 1024  # the "weak-key" fault


def generate_key(key_type: str, fault: str | None = None) -> PrivateKey:
    """A fresh key pair of `key_type` ("ec-p256" / "rsa-2048"); RSA 1024 for "weak-key"."""
    if fault == "weak-key":
        return rsa.generate_private_key(public_exponent=65537, key_size=WEAK_RSA_BITS)
    if key_type == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def build_csr(key: PrivateKey, *, cn: str, o: str, fault: str | None = None) -> str:
    """PEM CSR for `key` with subject CN=`cn`, O=`o` (O left out when empty), with `fault`."""
    if fault == "wrong-cn":
        cn = f"not-{cn}"[:64]
    elif fault == "wrong-o":
        o = "Not the CPO" if o != "Not the CPO" else "Another CPO"
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if o:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if fault == "ca-request":
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    csr = builder.sign(key, hashes.SHA256())
    if fault == "bad-signature":
        return _tampered_pem(csr)
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _tampered_pem(csr: x509.CertificateSigningRequest) -> str:
    """The CSR with the last byte of its signature flipped: still a well-formed CSR, but the
    signature no longer verifies. (The signature is the DER's last element; for ECDSA its last
    byte is the low byte of s, for RSA of the signature value, so the structure is unchanged.)"""
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    body = "\n".join(textwrap.wrap(base64.b64encode(bytes(der)).decode("ascii"), 64))
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n"


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (what the station's TLS stack and its state directory hold)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_der(key: Any) -> bytes:
    """SubjectPublicKeyInfo DER of a private key, public key or certificate, for comparison."""
    if hasattr(key, "public_key"):  # a certificate or a private key
        key = key.public_key()
    data: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data
