"""Certificates into the store: every certificate we issue or import is recorded (CRT-09).

``Pki.init`` and ``ensure_pki`` run without a store (the CA must be ready before the database
matters), so the hierarchy is recorded afterwards by ``record_hierarchy``, which is idempotent
and cheap enough to call again after every server certificate renewal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chargewarden.pki.certinfo import certificate_facts
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.keys import describe_key
from chargewarden.pki.layout import (
    CPO_ROOT,
    FIRMWARE_SIGNER,
    MANUFACTURER_ROOT,
    PARENT_OF,
    SERVER_CA,
)
from chargewarden.store.errors import CertificateExists
from chargewarden.store.records import CertificateRecord, CertificateRole

if TYPE_CHECKING:
    from chargewarden.store import Store


def record_for(
    certificate: x509.Certificate,
    *,
    issuer_ca: str,
    role: CertificateRole,
    station_identity: str | None = None,
) -> CertificateRecord:
    facts = certificate_facts(certificate)
    return CertificateRecord(
        serial=facts.serial_hex,
        issuer_ca=issuer_ca,
        role=role,
        subject_cn=facts.subject_cn,
        subject_o=facts.subject_o,
        station_identity=station_identity,
        fingerprint_sha256=facts.fingerprint_sha256,
        not_before=facts.not_before,
        not_after=facts.not_after,
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        key_type=describe_key(certificate.public_key()),
    )


async def record_certificate(store: Store, record: CertificateRecord) -> CertificateRecord:
    """Add the record unless that certificate is already recorded; returns the stored one."""
    existing = await store.certificates.find_by_fingerprint(record.fingerprint_sha256)
    if existing is not None:
        return existing
    try:
        return await store.certificates.add(record)
    except CertificateExists:
        # Another process (a second node, the CLI) recorded it between our look and our add.
        again = await store.certificates.find_by_fingerprint(record.fingerprint_sha256)
        if again is None:
            raise
        return again


def _role(ca_name: str) -> CertificateRole:
    if ca_name in (CPO_ROOT, MANUFACTURER_ROOT):
        return CertificateRole.ROOT
    if ca_name == FIRMWARE_SIGNER:
        return CertificateRole.FIRMWARE
    return CertificateRole.CA


async def record_hierarchy(store: Store, pki: Pki) -> list[CertificateRecord]:
    """Record the CA certificates and the server certificates now on disk; idempotent.

    A root's issuer_ca is its own name (it is self-signed).
    """
    recorded = []
    for ca_name, entry in pki.entries.items():
        record = record_for(
            entry.certificate, issuer_ca=PARENT_OF.get(ca_name) or ca_name, role=_role(ca_name)
        )
        recorded.append(await record_certificate(store, record))
    for entry in pki.servers.values():
        record = record_for(entry.certificate, issuer_ca=SERVER_CA, role=CertificateRole.SERVER)
        recorded.append(await record_certificate(store, record))
    return recorded
