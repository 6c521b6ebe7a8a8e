"""Certificates and TLS clients for the gateway's TLS tests, made with the project's own CA."""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chargewarden.config import load_settings
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.issue import issue_ca, issue_leaf, name

STATION_CA = "cpo-station-ca"
NOW = datetime.now(UTC)
CPO = "Example CPO"
PASSWORD = "Tls-Station-Pass-42"


def tls_settings(tmp_path: Path, pki_template: Path, **extra: Any) -> Any:
    """Settings of a CSMS with its own copy of the session's CA (fixture ``pki_template``)."""
    shutil.copytree(pki_template, tmp_path / "pki")
    options: dict[str, Any] = {
        "data_dir": tmp_path,
        "host": "127.0.0.1",
        "ws_port": 0,
        "wss_port": 0,
        "api_port": 0,
        "public_hostname": "localhost",
        "cpo_name": CPO,
        "call_timeout": 5.0,
        "pki_watch_seconds": 3600,  # tests drive the watcher themselves
        "files": {"port": 0},
        "throttle": {"slowdown_after": 1000, "block_after": 1000, "identity_block_after": 1000},
    }
    return load_settings(None, **(options | extra))


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def station_certificate(
    pki: Pki,
    *,
    cn: str,
    o: str,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, list[x509.Certificate]]:
    """A client certificate (leaf, key, chain after the leaf) from the station CA or `issuer`."""
    key = ec.generate_private_key(ec.SECP256R1())
    if issuer is None:
        ca = pki.entries[STATION_CA]
        issuer_cert, issuer_key = ca.certificate, ca.key
    else:
        issuer_cert, issuer_key = issuer
    leaf = issue_leaf(
        issuer_cert,
        issuer_key,  # type: ignore[arg-type]
        key.public_key(),
        cn=cn,
        o=o,
        not_before=not_before or NOW - timedelta(minutes=5),
        not_after=not_after or NOW + timedelta(days=30),
        client=True,
    )
    return leaf, key, [issuer_cert]


def foreign_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP384R1())
    certificate = issue_ca(
        name("Foreign Station CA", "Somebody Else"),
        key.public_key(),
        key,
        issuer_cert=None,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=365),
        path_length=0,
    )
    return certificate, key


def client_context(
    root_pem: bytes,
    certificate: x509.Certificate | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    chain: list[x509.Certificate] | None = None,
    *,
    maximum_version: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=root_pem.decode("ascii"))
    if maximum_version is not None:
        # Legacy clients for refusal tests only: OpenSSL 3 refuses TLS < 1.2 at its defaults,
        # and Python rightly warns about asking for them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = maximum_version
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if ciphers is not None:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(ciphers)
    if certificate is not None and key is not None:
        with tempfile.TemporaryDirectory() as private:
            cert_file = Path(private) / "chain.pem"
            key_file = Path(private) / "key.pem"
            cert_file.write_bytes(pem(certificate, *(chain or [])))
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key_pem(key))
            context.load_cert_chain(cert_file, key_file)
    return context
