"""Plain records the store hands out; the domain never sees ORM objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from chargewarden.rpc.versions import OcppVersion


class RegistrationStatus(StrEnum):
    """What BootNotification answers for this station."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class EventSource(StrEnum):
    STATION = "station"
    CSMS = "csms"


class CertificateRole(StrEnum):
    ROOT = "root"
    CA = "ca"
    SERVER = "server"
    STATION = "station"
    FIRMWARE = "firmware"


class OperatorRole(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class StationRecord:
    identity: str
    ocpp_version: OcppVersion
    security_profile: int
    pending_profile: int | None = None
    # Argon2id hashes (PHC strings) of the station's Basic-auth secret; never the secret itself.
    credential_hash: str | None = None
    pending_credential_hash: str | None = None
    # 1.6 only: accept only the raw AuthorizationKey bytes, not the 40-hex text form.
    strict_password: bool = False
    serial_number: str | None = None
    cpo_name: str | None = None
    registration_status: RegistrationStatus = RegistrationStatus.ACCEPTED
    # Set by the operator (or policy) to hold the station in BootNotification Pending (PWD-03).
    needs_credential_update: bool = False
    # Result of the station's most recent BootNotification, None if it never booted.
    last_boot_status: RegistrationStatus | None = None
    vendor: str | None = None
    model: str | None = None
    firmware_version: str | None = None
    last_seen: datetime | None = None
    created_at: datetime | None = None

    @property
    def expected_serial(self) -> str:
        """The CN a profile-3 certificate must carry: the serial number, default the identity."""
        return self.serial_number or self.identity


@dataclass(frozen=True, slots=True)
class SecurityEventRecord:
    type: str
    source: EventSource
    critical: bool
    station_identity: str | None = None
    occurred_at: datetime | None = None  # the station's timestamp (station events) or ours
    received_at: datetime | None = None  # filled by the store
    tech_info: str | None = None
    peer_address: str | None = None
    ocpp_version: OcppVersion | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    actor: str
    action: str
    target: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    name: str
    role: OperatorRole
    token_lookup: str  # public, indexed prefix used to find the row
    token_hash: str  # HMAC-SHA256 hex of the whole token; compared with hmac.compare_digest
    created_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectorStatusRecord:
    station_identity: str
    evse_id: int
    connector_id: int
    status: str
    error_code: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """A certificate the CSMS issued or imported, and whether it is revoked.

    ``serial`` is upper-case hex without leading zeros (as OCPP certificateHashData has it);
    ``issuer_ca`` names our CA (``cpo-station-ca``) or an imported one (``imported:<name>``).
    """

    serial: str
    issuer_ca: str
    role: CertificateRole
    subject_cn: str | None
    subject_o: str | None
    fingerprint_sha256: str  # lower-case hex of the DER
    not_before: datetime
    not_after: datetime
    pem: str
    key_type: str  # "EC P-256", "RSA 2048"
    station_identity: str | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    created_at: datetime | None = None  # filled by the store
    id: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class CertificateRequestState(StrEnum):
    TRIGGERED = "triggered"  # trigger accepted by the station; no CSR yet
    REJECTED = "rejected"  # the CSR was refused by us (reason says why)
    ISSUED = "issued"  # certificate committed; CertificateSigned not yet answered
    ACCEPTED = "accepted"  # the station accepted the certificate
    REFUSED_BY_STATION = "refused_by_station"  # the station answered CertificateSigned Rejected
    FAILED = "failed"  # trigger refused, no CSR in time, delivery given up

    @property
    def open(self) -> bool:
        return self in (CertificateRequestState.TRIGGERED, CertificateRequestState.ISSUED)


class RequestOrigin(StrEnum):
    OPERATOR = "operator"
    RENEWAL = "renewal"
    STATION = "station"  # the station sent a CSR of its own accord


@dataclass(frozen=True, slots=True)
class CertificateRequestRecord:
    station_identity: str
    certificate_type: str  # "ChargingStationCertificate" or "V2GCertificate"
    state: CertificateRequestState
    origin: RequestOrigin
    actor: str | None = None
    reason: str | None = None
    certificate_id: int | None = None
    # The certificate a renewal replaces; retired once the station uses the new one.
    replaces_certificate_id: int | None = None
    chain_pem: str | None = None  # what CertificateSigned carries; public
    csr_received_at: datetime | None = None
    delivery_attempts: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class InstalledCertificate:
    certificate_type: str  # as the station's OCPP version names it
    hash_data: dict[str, str]  # OCPP certificateHashData, as the station reported it


@dataclass(frozen=True, slots=True)
class InstalledCertificatesSnapshot:
    station_identity: str
    taken_at: datetime
    entries: tuple[InstalledCertificate, ...]
    id: int | None = None


class AlertSeverity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class AlertRecord:
    severity: AlertSeverity
    kind: str  # dotted, e.g. "certificate.refused_by_station"
    message: str
    station_identity: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    delivered_at: datetime | None = None
    delivery_attempts: int = 0
    id: int | None = None
