"""Records of firmware releases and updates, log requests, and file-transfer tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class FirmwareReleaseRecord:
    """A signed image the CSMS checked (chain, validity, signature) when it was registered."""

    name: str  # the operator's release name, unique (e.g. "acme-ac22-2.1.0")
    filename: str  # what stations download it as
    sha256: str  # lower-case hex of the image; the stored file must still hash to this
    size: int
    signature: str  # base64, as OCPP carries it
    signing_certificate_pem: str  # the signer's certificate (intermediates after it)
    signer_subject: str
    algorithm: str  # "ECDSA-SHA256" or "RSA-PSS-SHA256"
    signer_not_after: datetime
    actor: str
    created_at: datetime | None = None
    id: int | None = None


class FirmwareUpdateState(StrEnum):
    PENDING = "pending"  # stored with its download token; not yet sent
    SENT = "sent"  # sent; the station's answer is not recorded yet
    ACCEPTED = "accepted"  # the station took it; statuses follow
    REFUSED = "refused"  # answered Rejected, InvalidCertificate or RevokedCertificate
    INSTALLED = "installed"
    FAILED = "failed"  # a failure status, no answer in time, or a refusal by the CSMS
    CANCELLED = "cancelled"  # by the operator, or replaced on the station (AcceptedCanceled)

    @property
    def open(self) -> bool:
        return self in (
            FirmwareUpdateState.PENDING,
            FirmwareUpdateState.SENT,
            FirmwareUpdateState.ACCEPTED,
        )


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One status a station reported (or one answer it gave), as it arrived."""

    status: str
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "at": self.at.isoformat()}


@dataclass(frozen=True, slots=True)
class FirmwareUpdateRecord:
    """One update of one station; its id is the OCPP requestId."""

    station_identity: str
    release_id: int
    state: FirmwareUpdateState
    retrieve_at: datetime
    actor: str
    install_at: datetime | None = None
    retries: int | None = None
    retry_interval: int | None = None
    job_id: int | None = None
    response_status: str | None = None  # SignedUpdateFirmware.conf / UpdateFirmwareResponse
    station_status: str | None = None  # the latest (Signed)FirmwareStatusNotification
    history: tuple[StatusChange, ...] = ()
    reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = None


class LogType(StrEnum):
    SECURITY = "SecurityLog"
    DIAGNOSTICS = "DiagnosticsLog"


class LogRequestState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    ACCEPTED = "accepted"  # the station will upload
    REFUSED = "refused"  # GetLog answered Rejected
    UPLOADED = "uploaded"  # the file is stored and the station reported Uploaded
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def open(self) -> bool:
        return self in (LogRequestState.PENDING, LogRequestState.SENT, LogRequestState.ACCEPTED)


@dataclass(frozen=True, slots=True)
class LogRequestRecord:
    """One GetLog; its id is the OCPP requestId."""

    station_identity: str
    log_type: LogType
    state: LogRequestState
    actor: str
    since: datetime | None = None
    until: datetime | None = None
    job_id: int | None = None
    response_status: str | None = None
    station_filename: str | None = None  # the name the station gave in GetLog's answer
    station_status: str | None = None  # the latest LogStatusNotification
    history: tuple[StatusChange, ...] = ()
    stored_path: str | None = None  # relative to the data dir
    size: int | None = None
    sha256: str | None = None
    uploaded_at: datetime | None = None
    reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = None


class TransferPurpose(StrEnum):
    FIRMWARE_DOWNLOAD = "firmware-download"
    LOG_UPLOAD = "log-upload"


@dataclass(frozen=True, slots=True)
class FileTokenRecord:
    """A per-request URL token; only its SHA-256 is stored (the token is in the URL alone)."""

    token_sha256: str
    purpose: TransferPurpose
    station_identity: str
    ref_id: int  # the firmware update or log request it belongs to
    expires_at: datetime
    used_at: datetime | None = None  # uploads are single-use
    uses: int = 0
    created_at: datetime | None = None
    id: int | None = None


def history_from_json(items: list[dict[str, Any]] | None) -> tuple[StatusChange, ...]:
    return tuple(
        StatusChange(str(item["status"]), datetime.fromisoformat(item["at"]))
        for item in items or []
    )


@dataclass(frozen=True, slots=True)
class Page:
    """A list and how many match in all."""

    items: list[Any] = field(default_factory=list)
    total: int = 0
