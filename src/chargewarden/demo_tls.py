"""The demo's TLS half: stations on profiles 2 and 3, and the certificates of its impostors.

Certificates are issued in memory and recorded in the store like any other (so they can be
revoked); keys never touch the disk. Each run issues fresh ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chargewarden.app import RunningCsms
from chargewarden.pki.issue import issue_ca, issue_leaf, issue_station_certificate, name
from chargewarden.pki.material import csms_root_pem
from chargewarden.pki.recording import record_certificate, record_for
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.store.records import CertificateRole

STATION_CA = "cpo-station-ca"


@dataclass(frozen=True)
class ClientIdentity:
    chain_pem: bytes
    key_pem: bytes
    serial_hex: str


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


async def issue_for_station(running: RunningCsms, identity: str) -> ClientIdentity:
    """A certificate from our station CA, recorded as issued to `identity`."""
    assert running.pki is not None
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = issue_station_certificate(
        running.pki,
        key.public_key(),
        serial_number_cn=identity,
        cpo_name=running.settings.cpo_name,
        lifetime_days=running.settings.station_cert_lifetime_days,
    )
    await record_certificate(
        running.store,
        record_for(
            certificate,
            issuer_ca=STATION_CA,
            role=CertificateRole.STATION,
            station_identity=identity,
        ),
    )
    chain = _pem(certificate, running.pki.station_ca.certificate)
    return ClientIdentity(chain, _key_pem(key), format(certificate.serial_number, "X"))


def foreign_identity(cn: str, o: str) -> ClientIdentity:
    """A certificate for `cn` from a CA nobody configured: what a cloned charger would carry."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = issue_ca(
        name("Look-Alike Station CA", o),
        ca_key.public_key(),
        ca_key,
        issuer_cert=None,
        not_before=now - timedelta(minutes=5),
        not_after=now + timedelta(days=30),
        path_length=0,
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = issue_leaf(
        ca,
        ca_key,
        key.public_key(),
        cn=cn,
        o=o,
        not_before=now - timedelta(minutes=5),
        not_after=now + timedelta(days=30),
        client=True,
    )
    return ClientIdentity(_pem(leaf, ca), _key_pem(key), format(leaf.serial_number, "X"))


def tls_config(
    running: RunningCsms,
    identity: str,
    version: OcppVersion,
    profile: int,
    *,
    auth_key: bytes | None = None,
    password: str | None = None,
    client: ClientIdentity | None = None,
) -> StationConfig:
    assert running.wss_address is not None
    return StationConfig(
        identity=identity,
        ocpp_version=version,
        url=f"wss://127.0.0.1:{running.wss_address[1]}/ocpp",
        security_profile=profile,
        auth_key=auth_key,
        password=password,
        csms_root_pem=csms_root_pem(running.settings),
        cpo_name=running.settings.cpo_name,
        tls_server_hostname=running.settings.public_hostname,
        client_cert_pem=client.chain_pem if client else None,
        client_key_pem=client.key_pem if client else None,
        reconnect_backoff_initial=1.0,
        reconnect_backoff_max=10.0,
    )
