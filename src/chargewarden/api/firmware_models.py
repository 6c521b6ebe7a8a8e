"""Request and response bodies of the firmware routes (FW-01..03).

Nothing here is secret, and nothing points at a file: a release's signature and signing
certificate are public (every station receives them), its ``filename`` is only the name
stations download it as. An update never carries its download URL: the URL holds a per-request
token that only the station may see (workflows/firmware.py mints it when the update is sent).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
)

from chargewarden.api.job_models import MAX_FLEET_STATIONS, MAX_IDENTITY, JobOut
from chargewarden.firmware.releases import MAX_NAME
from chargewarden.store.transfer_records import (
    FirmwareReleaseRecord,
    FirmwareUpdateRecord,
    FirmwareUpdateState,
    StatusChange,
)
from chargewarden.workflows.firmware_service import MAX_RETRIES, MAX_RETRY_INTERVAL

# The workflow stores the station's answer to the request in the history as "answer:<status>",
# next to the status notifications; the API tells the two apart with ``kind``.
ANSWER_PREFIX = "answer:"
TIME_DOC = "ISO 8601 with an offset, e.g. 2025-01-31T22:00:00Z"


class FirmwareReleaseOut(BaseModel):
    id: int
    name: str = Field(description="The release name updates refer to.")
    filename: str = Field(description="The name stations download the image as.")
    sha256: str = Field(description="SHA-256 of the image, lower-case hex.")
    size: int = Field(description="Bytes.")
    signer_subject: str = Field(description="Subject of the signing certificate (RFC 4514).")
    algorithm: str = Field(description="ECDSA-SHA256 or RSA-PSS-SHA256.")
    signer_not_after: datetime = Field(
        description="The signing certificate expires then; the release is not sent after it."
    )
    actor: str = Field(description="Who registered it.")
    created_at: datetime | None

    @classmethod
    def of(cls, record: FirmwareReleaseRecord) -> FirmwareReleaseOut:
        assert record.id is not None
        return cls(
            id=record.id,
            name=record.name,
            filename=record.filename,
            sha256=record.sha256,
            size=record.size,
            signer_subject=record.signer_subject,
            algorithm=record.algorithm,
            signer_not_after=record.signer_not_after,
            actor=record.actor,
            created_at=record.created_at,
        )


class FirmwareReleaseDetail(FirmwareReleaseOut):
    signature: str = Field(description="The base64 signature stations are given.")
    signing_certificate_pem: str = Field(
        description="The signing certificate (intermediates after it) stations are given."
    )

    @classmethod
    def detail(cls, record: FirmwareReleaseRecord) -> FirmwareReleaseDetail:
        return cls(
            **FirmwareReleaseOut.of(record).model_dump(),
            signature=record.signature,
            signing_certificate_pem=record.signing_certificate_pem,
        )


class FirmwareReleasePage(BaseModel):
    items: list[FirmwareReleaseOut]
    total: int = Field(description="Number of releases.")
    limit: int
    offset: int


class FirmwareUpdateCreate(BaseModel):
    """One station (``station``), or a fleet chosen by criteria that must all match; with no
    criterion, ``all: true`` must say that every station is meant."""

    model_config = ConfigDict(extra="forbid")

    release: str = Field(min_length=1, max_length=MAX_NAME, description="Release name.")
    station: str | None = Field(
        None, min_length=1, max_length=MAX_IDENTITY, description="One station."
    )
    stations: list[str] | None = Field(
        None,
        min_length=1,
        max_length=MAX_FLEET_STATIONS,
        description="Fleet: only these stations (each must exist).",
    )
    profile: StrictInt | None = Field(
        None, ge=0, le=3, description="Fleet: only stations on this security profile."
    )
    # "version" is accepted too; the jobs API calls it ocpp_version, so both spellings work.
    ocpp_version: Literal["1.6", "2.0.1"] | None = Field(
        None,
        validation_alias=AliasChoices("ocpp_version", "version"),
        description="Fleet: only stations of this OCPP version (also accepted as `version`).",
    )
    all: StrictBool = Field(
        False,
        description="Fleet: every station (narrowed by profile and ocpp_version if given). "
        "Required when no criterion is given, so a forgotten filter never reaches the whole "
        "fleet.",
    )
    concurrency: StrictInt | None = Field(
        None,
        ge=1,
        le=1000,
        description="Fleet: stations updated at once (default: jobs.fleet_concurrency).",
    )
    at: AwareDatetime | None = Field(
        None, description=f"When stations are to download the image (default: now). {TIME_DOC}."
    )
    install_at: AwareDatetime | None = Field(
        None, description=f"When stations are to install it (default: as they see fit). {TIME_DOC}."
    )
    retries: StrictInt | None = Field(
        None, ge=0, le=MAX_RETRIES, description="Download attempts the station may retry."
    )
    retry_interval: StrictInt | None = Field(
        None, ge=0, le=MAX_RETRY_INTERVAL, description="Seconds between download attempts."
    )

    def refusal(self) -> str | None:
        """Why this request is inconsistent (None: fine). Checked in the route, so the problem
        detail says it in words rather than as a schema path."""
        fleet_fields = {
            "stations": self.stations,
            "profile": self.profile,
            "ocpp_version": self.ocpp_version,
            "concurrency": self.concurrency,
        }
        if self.station is not None:
            given = [name for name, value in fleet_fields.items() if value is not None]
            if self.all:
                given.append("all")
            if given:
                return (
                    "give station for one station, or stations, profile, ocpp_version or all "
                    f"for a fleet, not both (got station and {', '.join(given)})"
                )
        else:
            if self.stations is not None:
                if any(not 1 <= len(s) <= MAX_IDENTITY for s in self.stations):
                    return f"station identities are 1 to {MAX_IDENTITY} characters"
                if self.all:
                    return "give either stations or all: true, not both"
            criteria = (self.stations, self.profile, self.ocpp_version)
            if not self.all and all(c is None for c in criteria):
                return (
                    "name the stations: station for one, or for a fleet stations, profile or "
                    "ocpp_version, or all: true for every station"
                )
        if self.at is not None and self.install_at is not None and self.install_at < self.at:
            return "install_at must not be before at (the retrieve time)"
        return None


class StatusChangeOut(BaseModel):
    at: datetime
    kind: Literal["answer", "status"] = Field(
        description="answer: the station's answer to the update request; status: a "
        "(Signed)FirmwareStatusNotification."
    )
    status: str

    @classmethod
    def of(cls, change: StatusChange) -> StatusChangeOut:
        if change.status.startswith(ANSWER_PREFIX):
            return cls(at=change.at, kind="answer", status=change.status[len(ANSWER_PREFIX) :])
        return cls(at=change.at, kind="status", status=change.status)


class FirmwareUpdateOut(BaseModel):
    id: int = Field(description="The update's id, which is also the OCPP requestId.")
    station: str
    release: str | None = Field(description="Release name (null if the release is gone).")
    release_id: int
    state: FirmwareUpdateState
    station_status: str | None = Field(description="The station's latest reported status.")
    response_status: str | None = Field(
        description="The station's answer to SignedUpdateFirmware / UpdateFirmware."
    )
    history: list[StatusChangeOut] = Field(description="Answer and statuses, oldest first.")
    reason: str | None = Field(description="Why it failed, was refused or cancelled.")
    job_id: int | None
    retrieve_at: datetime
    install_at: datetime | None
    retries: int | None
    retry_interval: int | None
    actor: str
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, record: FirmwareUpdateRecord, release: str | None) -> FirmwareUpdateOut:
        assert record.id is not None
        return cls(
            id=record.id,
            station=record.station_identity,
            release=release,
            release_id=record.release_id,
            state=record.state,
            station_status=record.station_status,
            response_status=record.response_status,
            history=[StatusChangeOut.of(change) for change in record.history],
            reason=record.reason,
            job_id=record.job_id,
            retrieve_at=record.retrieve_at,
            install_at=record.install_at,
            retries=record.retries,
            retry_interval=record.retry_interval,
            actor=record.actor,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class FirmwareUpdateStarted(BaseModel):
    job: JobOut = Field(description="The update job, or the fleet job over one per station.")
    update_id: int | None = Field(
        description="One station: the update's id (the OCPP requestId); null for a fleet."
    )
    skipped: list[str] = Field(description="Fleet: why each matching station was left out.")
