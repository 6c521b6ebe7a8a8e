"""Request and response bodies of the certificate lifecycle and alert routes.

Nothing here is secret: certificates, their hash data and chains are public, and private keys
never reach the CSMS (stations send CSRs).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chargewarden.domain.renewal import certificate_type_of
from chargewarden.store.records import (
    AlertRecord,
    AlertSeverity,
    CertificateRecord,
    CertificateRequestRecord,
    CertificateRequestState,
    InstalledCertificate,
    InstalledCertificatesSnapshot,
    RequestOrigin,
)

# Generous bound on a PEM in a request body; the domain enforces the OCPP limit (5500).
MAX_PEM_CHARS = 16384

# ------------------------------------------------------------------------- certificate requests


class CertificateRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    certificate_type: Literal["ChargingStationCertificate", "V2GCertificate"] = Field(
        "ChargingStationCertificate",
        description="Which certificate the station is asked to request (V2G: OCPP 2.0.1 only).",
    )
    replaces_certificate_id: int | None = Field(
        None,
        ge=1,
        description=(
            "Id of the station certificate this one renews; it is retired once the station "
            "uses the new one."
        ),
    )


class CertificateRequestOut(BaseModel):
    id: int
    station: str
    certificate_type: str
    state: CertificateRequestState
    origin: RequestOrigin
    actor: str | None
    reason: str | None = Field(description="Why the request was refused or failed.")
    certificate_id: int | None
    certificate_serial: str | None = Field(description="Serial of the issued certificate.")
    replaces_certificate_id: int | None
    delivery_attempts: int = Field(description="CertificateSigned messages sent so far.")
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(
        cls, record: CertificateRequestRecord, certificate: CertificateRecord | None
    ) -> CertificateRequestOut:
        assert record.id is not None
        return cls(
            id=record.id,
            station=record.station_identity,
            certificate_type=record.certificate_type,
            state=record.state,
            origin=record.origin,
            actor=record.actor,
            reason=record.reason,
            certificate_id=record.certificate_id,
            certificate_serial=certificate.serial if certificate is not None else None,
            replaces_certificate_id=record.replaces_certificate_id,
            delivery_attempts=record.delivery_attempts,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class CertificateRequestDetail(CertificateRequestOut):
    chain_pem: str | None = Field(
        description="The chain sent in CertificateSigned (leaf first), once issued. Public."
    )
    csr_received_at: datetime | None

    @classmethod
    def detail(
        cls, record: CertificateRequestRecord, certificate: CertificateRecord | None
    ) -> CertificateRequestDetail:
        base = CertificateRequestOut.of(record, certificate)
        return cls(
            **base.model_dump(),
            chain_pem=record.chain_pem,
            csr_received_at=record.csr_received_at,
        )


# ------------------------------------------------------------------------ installed certificates


class InstalledCertificateOut(BaseModel):
    certificate_type: str = Field(description="As the station's OCPP version names it.")
    kind: str | None = Field(
        description="csms-root, manufacturer-root, v2g-root or mo-root; null for other types."
    )
    hash_algorithm: str | None
    issuer_name_hash: str | None
    issuer_key_hash: str | None
    serial_number: str | None

    @classmethod
    def of(cls, entry: InstalledCertificate, kind: str | None) -> InstalledCertificateOut:
        data = entry.hash_data
        return cls(
            certificate_type=entry.certificate_type,
            kind=kind,
            hash_algorithm=data.get("hashAlgorithm"),
            issuer_name_hash=data.get("issuerNameHash"),
            issuer_key_hash=data.get("issuerKeyHash"),
            serial_number=data.get("serialNumber"),
        )


class InstalledCertificatesOut(BaseModel):
    station: str
    taken_at: datetime = Field(description="When the station reported this list.")
    certificates: list[InstalledCertificateOut]

    @classmethod
    def of(
        cls, snapshot: InstalledCertificatesSnapshot, kinds: dict[str, str | None]
    ) -> InstalledCertificatesOut:
        return cls(
            station=snapshot.station_identity,
            taken_at=snapshot.taken_at,
            certificates=[
                InstalledCertificateOut.of(e, kinds.get(e.certificate_type))
                for e in snapshot.entries
            ],
        )


class CertificateInstall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["csms-root", "manufacturer-root", "v2g-root", "mo-root"]
    pem: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PEM_CHARS,
        description=(
            "One CA certificate, PEM. Omitted: the CSMS's own root of that kind "
            "(csms-root, manufacturer-root)."
        ),
    )


class StationStatusOut(BaseModel):
    status: str = Field(description="The station's answer: Accepted, Rejected, Failed, ...")


# ----------------------------------------------------------------------------------- renewal


class RenewalCandidateOut(BaseModel):
    id: int = Field(description="Pass as replaces_certificate_id when requesting the renewal.")
    serial: str
    station: str
    issuer_ca: str
    certificate_type: str = Field(description="What to request: the certificate_type to POST.")
    not_after: datetime

    @classmethod
    def of(cls, record: CertificateRecord) -> RenewalCandidateOut:
        assert record.id is not None and record.station_identity is not None
        return cls(
            id=record.id,
            serial=record.serial,
            station=record.station_identity,
            issuer_ca=record.issuer_ca,
            certificate_type=certificate_type_of(record).value,
            not_after=record.not_after,
        )


# ------------------------------------------------------------------------------------ alerts


class AlertOut(BaseModel):
    id: int
    at: datetime | None
    severity: AlertSeverity
    kind: str
    station: str | None
    message: str
    details: dict[str, Any]
    delivered_at: datetime | None = Field(description="When the webhook accepted it.")
    delivery_attempts: int

    @classmethod
    def of(cls, record: AlertRecord) -> AlertOut:
        assert record.id is not None
        return cls(
            id=record.id,
            at=record.at,
            severity=record.severity,
            kind=record.kind,
            station=record.station_identity,
            message=record.message,
            details=dict(record.details),
            delivered_at=record.delivered_at,
            delivery_attempts=record.delivery_attempts,
        )
