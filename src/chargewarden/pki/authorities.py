"""The CAs of the built-in hierarchies: their names, subjects, keys and lifetimes, and how one
is made.

CPO hierarchy: ``cpo-root`` issues ``cpo-server-ca`` (the CSMS's TLS server certificates),
``cpo-station-ca`` (stations' TLS client certificates, OCPP ``ChargingStationCertificate``)
and ``cpo-v2g-ca`` (OCPP ``V2GCertificate``: the certificate a station presents to an EV over
ISO 15118). Manufacturer hierarchy (development only): ``manufacturer-root`` issues the
``firmware-signer`` certificate.

The built-in V2G CA is for development, tests and closed installations whose EVs trust the CPO
root. In production, V2G certificates come from the V2G PKI (e.g. Hubject), whose roots the EVs
already trust: that is an external signer implementing ``signer.CertificateSigner``, which
replaces ``BuiltInSigner`` for ``V2GCertificate`` requests.

``cpo-v2g-ca`` came after the others: an installation created before it has none, and gets one
on its next start (``Pki.add_missing_cas``); until then its absence is no error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from chargewarden.config import Settings
from chargewarden.pki.issue import crl_url, issue_ca, issue_leaf, name, validity
from chargewarden.pki.keys import PrivateKey, generate_ec
from chargewarden.pki.layout import (
    CPO_ROOT,
    FIRMWARE_SIGNER,
    MANUFACTURER_ROOT,
    PARENT_OF,
    SERVER_CA,
    STATION_CA,
    V2G_CA,
)

ROOT_LIFETIME = timedelta(days=20 * 365)
CA_LIFETIME = timedelta(days=10 * 365)
FIRMWARE_SIGNER_LIFETIME = timedelta(days=5 * 365)
DEV_MANUFACTURER = "ChargeWarden Development Manufacturer"

# Who signed whom (None: self-signed root), the V2G CA included.
PARENTS: dict[str, str | None] = dict(PARENT_OF)
# CAs an existing installation may predate: absent is not broken, they are added at start.
ADDED_LATER = frozenset({V2G_CA})


def _cpo_label(settings: Settings) -> str:
    # CN is limited to 64 characters; the O keeps the full CPO name.
    return settings.cpo_name[:48]


@dataclass(frozen=True)
class CaSpec:
    name: str
    cn: Callable[[Settings], str]
    o: Callable[[Settings], str]
    parent: str | None
    lifetime: timedelta
    path_length: int | None = None
    curve: ec.EllipticCurve = field(default_factory=ec.SECP384R1)
    code_signing: bool = False


SPECS = (
    CaSpec(
        CPO_ROOT,
        lambda s: f"{_cpo_label(s)} Root CA",
        lambda s: s.cpo_name,
        None,
        ROOT_LIFETIME,
        path_length=1,
    ),
    CaSpec(
        SERVER_CA,
        lambda s: f"{_cpo_label(s)} Server CA",
        lambda s: s.cpo_name,
        CPO_ROOT,
        CA_LIFETIME,
        path_length=0,
    ),
    CaSpec(
        STATION_CA,
        lambda s: f"{_cpo_label(s)} Station CA",
        lambda s: s.cpo_name,
        CPO_ROOT,
        CA_LIFETIME,
        path_length=0,
    ),
    # P-256 and so ECDSA/SHA-256 signatures: what ISO 15118-2 prescribes for V2G certificates.
    CaSpec(
        V2G_CA,
        lambda s: f"{_cpo_label(s)} V2G CA",
        lambda s: s.cpo_name,
        CPO_ROOT,
        CA_LIFETIME,
        path_length=0,
        curve=ec.SECP256R1(),
    ),
    CaSpec(
        MANUFACTURER_ROOT,
        lambda s: f"{DEV_MANUFACTURER} Root CA",
        lambda s: DEV_MANUFACTURER,
        None,
        ROOT_LIFETIME,
        path_length=0,
    ),
    CaSpec(
        FIRMWARE_SIGNER,
        lambda s: f"{DEV_MANUFACTURER} Firmware Signer",
        lambda s: DEV_MANUFACTURER,
        MANUFACTURER_ROOT,
        FIRMWARE_SIGNER_LIFETIME,
        curve=ec.SECP256R1(),
        code_signing=True,
    ),
)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}
# Every CA, parents before children (the order they are created, loaded and shown in).
ALL_CAS = tuple(spec.name for spec in SPECS)


def make_authority(
    spec: CaSpec,
    settings: Settings,
    parent: tuple[x509.Certificate, PrivateKey] | None,
    now: datetime,
) -> tuple[x509.Certificate, PrivateKey]:
    """A new key and certificate for ``spec``, issued by ``parent`` (None: a self-signed root).

    A CA never outlives its issuer: a chain is refused at the issuer's expiry anyway.
    """
    key = generate_ec(spec.curve)
    not_before, not_after = validity(now, spec.lifetime)
    if parent is None:
        certificate = issue_ca(
            name(spec.cn(settings), spec.o(settings)),
            key.public_key(),
            key,
            issuer_cert=None,
            not_before=not_before,
            not_after=not_after,
            path_length=spec.path_length,
        )
        return certificate, key
    parent_cert, parent_key = parent
    assert spec.parent is not None
    not_after = min(not_after, parent_cert.not_valid_after_utc)
    url = crl_url(settings, spec.parent)
    if spec.code_signing:
        certificate = issue_leaf(
            parent_cert,
            parent_key,
            key.public_key(),
            cn=spec.cn(settings),
            o=spec.o(settings),
            not_before=not_before,
            not_after=not_after,
            client=False,
            crl_url=url,
            code_signing=True,
        )
    else:
        certificate = issue_ca(
            name(spec.cn(settings), spec.o(settings)),
            key.public_key(),
            parent_key,
            issuer_cert=parent_cert,
            not_before=not_before,
            not_after=not_after,
            path_length=spec.path_length,
            crl_url=url,
        )
    return certificate, key
