"""Request and response bodies of the HTTP API.

Station credentials are write-only: they appear in request bodies (as secret strings, so they
never show up in a repr or a log) and never in a response, except the generated secret that the
creating response carries exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from chargewarden.gateway.registry import ConnectionInfo
from chargewarden.store.records import (
    EventSource,
    RegistrationStatus,
    SecurityEventRecord,
    StationRecord,
)

# ---------------------------------------------------------------------------------- stations


class StationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identity: str = Field(min_length=1, max_length=48,
                          description="Charging station identity (last URL path segment).")
    ocpp_version: Literal["1.6", "2.0.1"]
    security_profile: int = Field(ge=0, le=3)
    auth_key: SecretStr | None = Field(
        None, description="OCPP 1.6 AuthorizationKey as hex (16-20 bytes). Write-only.")
    password: SecretStr | None = Field(
        None, description="OCPP 2.0.1 BasicAuthPassword (16-40 characters). Write-only.")
    generate_secret: bool = Field(
        False, description="Generate the station's secret; it is returned once, on creation.")
    serial_number: str | None = Field(
        None, max_length=64, description="Expected certificate CN (profile 3); default identity.")
    cpo_name: str | None = Field(None, max_length=128,
                                 description="Expected certificate O (profile 3).")
    strict_password: bool = Field(
        False, description="1.6 only: accept only the raw key bytes, not the 40-hex text form.")


class StationOut(BaseModel):
    identity: str
    ocpp_version: str
    security_profile: int
    pending_profile: int | None
    has_credential: bool = Field(description="A Basic-auth secret is set (never shown).")
    has_pending_credential: bool = Field(
        description="A rotated secret awaits the station's confirmation (never shown).")
    strict_password: bool
    serial_number: str | None
    cpo_name: str | None
    registration_status: RegistrationStatus
    needs_credential_update: bool
    last_boot_status: RegistrationStatus | None
    vendor: str | None
    model: str | None
    firmware_version: str | None
    last_seen: datetime | None
    created_at: datetime | None
    connected: bool = Field(description="The station has a live connection now.")

    @classmethod
    def of(cls, record: StationRecord, *, connected: bool) -> StationOut:
        return cls(
            identity=record.identity,
            ocpp_version=str(record.ocpp_version),
            security_profile=record.security_profile,
            pending_profile=record.pending_profile,
            has_credential=record.credential_hash is not None,
            has_pending_credential=record.pending_credential_hash is not None,
            strict_password=record.strict_password,
            serial_number=record.serial_number,
            cpo_name=record.cpo_name,
            registration_status=record.registration_status,
            needs_credential_update=record.needs_credential_update,
            last_boot_status=record.last_boot_status,
            vendor=record.vendor,
            model=record.model,
            firmware_version=record.firmware_version,
            last_seen=record.last_seen,
            created_at=record.created_at,
            connected=connected,
        )


class StationCreated(StationOut):
    generated_secret: str | None = Field(
        None,
        description=(
            "The secret ChargeWarden generated (generate_secret=true): the 1.6 AuthorizationKey "
            "as 40 hex characters or the 2.0.1 BasicAuthPassword. Shown ONCE, in this response "
            "only; it cannot be retrieved later. Null when no secret was generated."
        ),
    )


# ------------------------------------------------------------------------------- connections


class ConnectionOut(BaseModel):
    identity: str
    ocpp_version: str
    security_profile: int
    connected_since: datetime
    peer: str
    transport: str

    @classmethod
    def of(cls, info: ConnectionInfo) -> ConnectionOut:
        return cls(
            identity=info.identity,
            ocpp_version=str(info.ocpp_version),
            security_profile=info.security_profile,
            connected_since=info.connected_since,
            peer=info.peer,
            transport=info.transport,
        )


# ----------------------------------------------------------------------------------- events


class SecurityEventOut(BaseModel):
    id: int | None
    type: str
    source: EventSource
    critical: bool
    station: str | None
    occurred_at: datetime | None
    received_at: datetime | None
    tech_info: str | None
    peer_address: str | None
    ocpp_version: str | None

    @classmethod
    def of(cls, record: SecurityEventRecord) -> SecurityEventOut:
        return cls(
            id=record.id,
            type=record.type,
            source=record.source,
            critical=record.critical,
            station=record.station_identity,
            occurred_at=record.occurred_at,
            received_at=record.received_at,
            tech_info=record.tech_info,
            peer_address=record.peer_address,
            ocpp_version=str(record.ocpp_version) if record.ocpp_version else None,
        )


class SecurityEventPage(BaseModel):
    items: list[SecurityEventOut]
    total: int = Field(description="Number of events matching the filters.")
    limit: int
    offset: int


# ------------------------------------------------------------------------------------ calls


class CallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$",
                        description="OCPP action of the station's version, e.g. 'Reset'.")
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="Request payload; validated against the version's official schema.")
    timeout: float | None = Field(
        None, gt=0, le=300,
        description="Seconds to wait for the answer (default: the server's call timeout).")


class CallResultOut(BaseModel):
    result: Literal["CallResult"] = "CallResult"
    payload: dict[str, Any]


class CallErrorOut(BaseModel):
    result: Literal["CallError"] = "CallError"
    error_code: str
    error_description: str
    error_details: Any = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    # Why not ready, in a few words; never a path, URL or configuration value.
    reason: str | None = None
