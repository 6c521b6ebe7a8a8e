"""ORM tables. Migrations create the schema; ``tests`` check these classes still match them.

Rows never leave the store: ``mapping`` turns them into the records in ``records``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chargewarden.store.coltypes import BigId, UTCDateTime

# Deterministic constraint names: Alembic needs them to drop or alter constraints later, and
# SQLite's batch migrations cannot find unnamed ones.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StationRow(Base):
    __tablename__ = "stations"
    __table_args__ = (
        CheckConstraint("length(identity) BETWEEN 1 AND 48", name="identity_length"),
        CheckConstraint("security_profile BETWEEN 0 AND 3", name="security_profile_range"),
        CheckConstraint(
            "pending_profile IS NULL OR pending_profile BETWEEN 0 AND 3",
            name="pending_profile_range",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity: Mapped[str] = mapped_column(String, unique=True)
    ocpp_version: Mapped[str] = mapped_column(String)
    security_profile: Mapped[int] = mapped_column(Integer)
    pending_profile: Mapped[int | None] = mapped_column(Integer)
    credential_hash: Mapped[str | None] = mapped_column(String)
    pending_credential_hash: Mapped[str | None] = mapped_column(String)
    strict_password: Mapped[bool] = mapped_column(Boolean, server_default=false())
    serial_number: Mapped[str | None] = mapped_column(String)
    cpo_name: Mapped[str | None] = mapped_column(String)
    registration_status: Mapped[str] = mapped_column(String)
    needs_credential_update: Mapped[bool] = mapped_column(Boolean, server_default=false())
    last_boot_status: Mapped[str | None] = mapped_column(String)
    vendor: Mapped[str | None] = mapped_column(String)
    model: Mapped[str | None] = mapped_column(String)
    firmware_version: Mapped[str | None] = mapped_column(String)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SecurityEventRow(Base):
    __tablename__ = "security_events"
    __table_args__ = (
        # Serves both "events of one station, newest first" and the per-station count.
        Index("ix_security_events_station_received", "station_identity", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key: events about unknown identities (rejected admissions) must be kept too.
    station_identity: Mapped[str | None] = mapped_column(String)
    type: Mapped[str] = mapped_column(String)
    source: Mapped[str] = mapped_column(String)
    critical: Mapped[bool] = mapped_column(Boolean)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    tech_info: Mapped[str | None] = mapped_column(Text)
    peer_address: Mapped[str | None] = mapped_column(String)
    ocpp_version: Mapped[str | None] = mapped_column(String)


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target_at", "target", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)
    target: Mapped[str | None] = mapped_column(String)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


class OperatorRow(Base):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    role: Mapped[str] = mapped_column(String)
    # Unique so that one lookup finds at most one candidate hash to compare.
    token_lookup: Mapped[str] = mapped_column(String, unique=True)
    token_hash: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConnectorStatusRow(Base):
    __tablename__ = "connector_status"

    station_identity: Mapped[str] = mapped_column(
        String, ForeignKey("stations.identity", ondelete="CASCADE"), primary_key=True
    )
    evse_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connector_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String)
    error_code: Mapped[str | None] = mapped_column(String)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CertificateRow(Base):
    __tablename__ = "certificates"
    __table_args__ = (
        CheckConstraint(
            "role IN ('root', 'ca', 'server', 'station', 'firmware')", name="role_known"
        ),
        # Serials are unique per issuer only; two imported CAs may both have issued serial 1.
        UniqueConstraint("issuer_ca", "serial"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial: Mapped[str] = mapped_column(String, index=True)
    issuer_ca: Mapped[str] = mapped_column(String)
    role: Mapped[str] = mapped_column(String)
    subject_cn: Mapped[str | None] = mapped_column(String)
    subject_o: Mapped[str | None] = mapped_column(String)
    station_identity: Mapped[str | None] = mapped_column(String, index=True)
    fingerprint_sha256: Mapped[str] = mapped_column(String, unique=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    pem: Mapped[str] = mapped_column(Text)
    key_type: Mapped[str] = mapped_column(String)
    # Indexed for the gateway's "what was revoked since my last look".
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    revocation_reason: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CertificateRequestRow(Base):
    """One signing flow: trigger → CSR → issued certificate → the station's answer."""

    __tablename__ = "certificate_requests"
    __table_args__ = (
        CheckConstraint(
            "state IN ('triggered', 'rejected', 'issued', 'accepted', 'refused_by_station', "
            "'failed')",
            name="state_known",
        ),
        Index("ix_certificate_requests_station_state", "station_identity", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_identity: Mapped[str] = mapped_column(
        String, ForeignKey("stations.identity", ondelete="CASCADE")
    )
    certificate_type: Mapped[str] = mapped_column(String)
    state: Mapped[str] = mapped_column(String)
    origin: Mapped[str] = mapped_column(String)
    actor: Mapped[str | None] = mapped_column(String)
    reason: Mapped[str | None] = mapped_column(String)
    certificate_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("certificates.id", ondelete="SET NULL")
    )
    replaces_certificate_id: Mapped[int | None] = mapped_column(BigId)
    # What CertificateSigned carries (leaf + issuing CA), kept so a redelivery sends the very
    # same certificate.
    chain_pem: Mapped[str | None] = mapped_column(Text)
    csr_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InstalledCertificatesRow(Base):
    """A dated snapshot of what GetInstalledCertificateIds returned for a station."""

    __tablename__ = "installed_certificate_snapshots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_identity: Mapped[str] = mapped_column(
        String, ForeignKey("stations.identity", ondelete="CASCADE"), index=True
    )
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entries: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    severity: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)
    station_identity: Mapped[str | None] = mapped_column(String, index=True)
    message: Mapped[str] = mapped_column(String)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'running', 'waiting-for-station', 'succeeded', 'failed', "
            "'cancelled')",
            name="state_known",
        ),
        Index("ix_jobs_state", "state"),
        Index("ix_jobs_station_state", "station_identity", "state"),
        Index("ix_jobs_parent_state", "parent_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    state: Mapped[str] = mapped_column(String)
    step: Mapped[str] = mapped_column(String)
    actor: Mapped[str] = mapped_column(String)
    # No foreign keys: a job's audit trail outlives the station it was about.
    station_identity: Mapped[str | None] = mapped_column(String)
    parent_id: Mapped[int | None] = mapped_column(BigId)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(String)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, server_default=false())
    wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobStepRow(Base):
    __tablename__ = "job_steps"
    __table_args__ = (Index("ix_job_steps_job_at", "job_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    step: Mapped[str] = mapped_column(String)
    outcome: Mapped[str] = mapped_column(String)
    detail: Mapped[str | None] = mapped_column(String)


class FirmwareReleaseRow(Base):
    __tablename__ = "firmware_releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    filename: Mapped[str] = mapped_column(String)
    sha256: Mapped[str] = mapped_column(String, index=True)
    size: Mapped[int] = mapped_column(BigId)
    signature: Mapped[str] = mapped_column(Text)
    signing_certificate_pem: Mapped[str] = mapped_column(Text)
    signer_subject: Mapped[str] = mapped_column(String)
    algorithm: Mapped[str] = mapped_column(String)
    signer_not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FirmwareUpdateRow(Base):
    """One update of one station; the id is the OCPP requestId."""

    __tablename__ = "firmware_updates"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'sent', 'accepted', 'refused', 'installed', 'failed', "
            "'cancelled')",
            name="state_known",
        ),
        Index("ix_firmware_updates_station_created", "station_identity", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key to stations: the record of what was installed outlives the station.
    station_identity: Mapped[str] = mapped_column(String)
    release_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("firmware_releases.id", ondelete="RESTRICT"), index=True
    )
    state: Mapped[str] = mapped_column(String)
    retrieve_at: Mapped[datetime] = mapped_column(UTCDateTime)
    install_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retries: Mapped[int | None] = mapped_column(Integer)
    retry_interval: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(BigId)
    actor: Mapped[str] = mapped_column(String)
    response_status: Mapped[str | None] = mapped_column(String)
    station_status: Mapped[str | None] = mapped_column(String)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LogRequestRow(Base):
    """One GetLog; the id is the OCPP requestId."""

    __tablename__ = "log_requests"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'sent', 'accepted', 'refused', 'uploaded', 'failed', "
            "'cancelled')",
            name="state_known",
        ),
        CheckConstraint("log_type IN ('SecurityLog', 'DiagnosticsLog')", name="log_type_known"),
        Index("ix_log_requests_station_created", "station_identity", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_identity: Mapped[str] = mapped_column(String)
    log_type: Mapped[str] = mapped_column(String)
    state: Mapped[str] = mapped_column(String)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_id: Mapped[int | None] = mapped_column(BigId)
    actor: Mapped[str] = mapped_column(String)
    response_status: Mapped[str | None] = mapped_column(String)
    station_filename: Mapped[str | None] = mapped_column(String)
    station_status: Mapped[str | None] = mapped_column(String)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    stored_path: Mapped[str | None] = mapped_column(String)
    size: Mapped[int | None] = mapped_column(BigId)
    sha256: Mapped[str | None] = mapped_column(String)
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FileTokenRow(Base):
    """Per-request download/upload tokens; the token itself is only in the URL."""

    __tablename__ = "file_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('firmware-download', 'log-upload')", name="purpose_known"),
        Index("ix_file_tokens_purpose_ref", "purpose", "ref_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String, unique=True)
    purpose: Mapped[str] = mapped_column(String)
    station_identity: Mapped[str] = mapped_column(String)
    ref_id: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
