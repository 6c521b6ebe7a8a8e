"""Request and response bodies of the log routes (LOG-01).

Nothing here is secret, and nothing here carries an upload URL: the link a station was given
holds its token, which exists only in that URL (the store has its digest).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool

from chargewarden.api.job_models import JobOut
from chargewarden.store.transfer_records import LogRequestRecord, LogRequestState, LogType

LogKind = Literal["security", "diagnostics"]
KIND_OF: dict[LogType, LogKind] = {LogType.SECURITY: "security", LogType.DIAGNOSTICS: "diagnostics"}
TIME_DOC = "ISO 8601 with an offset, e.g. 2025-01-31T12:00:00Z"


class LogFetchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: LogKind = Field(description="security (SecurityLog) or diagnostics (DiagnosticsLog).")
    since: AwareDatetime | None = Field(
        None, description=f"Oldest entries wanted (GetLog oldestTimestamp). {TIME_DOC}."
    )
    until: AwareDatetime | None = Field(
        None, description=f"Newest entries wanted (GetLog latestTimestamp). {TIME_DOC}."
    )
    replace: StrictBool = Field(
        False,
        description="Cancel the station's fetch under way and start this one (the station "
        "drops that upload and answers AcceptedCanceled). Without it, a second fetch is 409.",
    )


class LogStatusOut(BaseModel):
    status: str = Field(description="A station status, or 'GetLog <answer>' for the answer.")
    at: datetime


class LogRequestOut(BaseModel):
    request_id: int = Field(description="The OCPP requestId of GetLog and LogStatusNotification.")
    station: str
    type: LogKind
    state: LogRequestState
    actor: str = Field(description="Who asked for it.")
    since: datetime | None
    until: datetime | None
    job_id: int | None = Field(description="The fetch-log job; follow it at /api/jobs/{id}.")
    response_status: str | None = Field(description="The station's GetLog answer.")
    station_filename: str | None = Field(description="The file name GetLog's answer gave.")
    station_status: str | None = Field(description="The latest LogStatusNotification status.")
    has_file: bool = Field(description="The upload is stored (GET .../file, operator).")
    stored_path: str | None = Field(description="Where the file is, under the data directory.")
    size: int | None = Field(description="Bytes stored.")
    sha256: str | None = Field(description="SHA-256 of the stored file, lower-case hex.")
    uploaded_at: datetime | None
    reason: str | None = Field(description="Why it failed, was refused or cancelled.")
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, record: LogRequestRecord) -> LogRequestOut:
        assert record.id is not None
        return cls(
            request_id=record.id,
            station=record.station_identity,
            type=KIND_OF[record.log_type],
            state=record.state,
            actor=record.actor,
            since=record.since,
            until=record.until,
            job_id=record.job_id,
            response_status=record.response_status,
            station_filename=record.station_filename,
            station_status=record.station_status,
            has_file=record.stored_path is not None,
            stored_path=record.stored_path,
            size=record.size,
            sha256=record.sha256,
            uploaded_at=record.uploaded_at,
            reason=record.reason,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class LogRequestDetailOut(LogRequestOut):
    history: list[LogStatusOut] = Field(
        description="The station's answer and statuses as they arrived, oldest first."
    )

    @classmethod
    def detail(cls, record: LogRequestRecord) -> LogRequestDetailOut:
        return cls(
            **LogRequestOut.of(record).model_dump(),
            history=[LogStatusOut(status=h.status, at=h.at) for h in record.history],
        )


class LogFetchStarted(BaseModel):
    job: JobOut
    request_id: int = Field(description="The OCPP requestId; GET /api/logs/{request_id}.")
