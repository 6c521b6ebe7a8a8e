"""Calls from the CSMS to a station, independent of the OCPP version.

A workflow asks for an *operation* (trigger a CSR, install a root, ...); the version adapter
(`ocpp16.commands`, `ocpp201.commands`) turns it into the action and payload of that version,
and reads the answer back. Failures reach the caller as one `CommandFailed` with a kind the
API and CLI map to their own answer (offline → 409, timeout → 504, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from chargewarden.domain.station_calls import format_time
from chargewarden.gateway.registry import ConnectionRegistry, StationLink
from chargewarden.pki.csr_policy import StationCertificateType
from chargewarden.rpc.session import CallErrorReceived, CallTimeout, ConnectionGone, InvalidResponse
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.records import InstalledCertificate

Payload = dict[str, Any]


class RootCertificateKind(StrEnum):
    """Certificates an operator installs on a station, named once for both versions."""

    CSMS_ROOT = "csms-root"
    MANUFACTURER_ROOT = "manufacturer-root"
    V2G_ROOT = "v2g-root"
    MO_ROOT = "mo-root"


class FailureKind(StrEnum):
    OFFLINE = "offline"
    TIMEOUT = "timeout"
    CALL_ERROR = "call-error"
    INVALID_RESPONSE = "invalid-response"
    UNSUPPORTED = "unsupported"  # the station's OCPP version has no such operation
    REFUSED = "refused"  # the station answered, and the answer was no
    NOT_FOUND = "not-found"
    CONFLICT = "conflict"  # refused by our own rules (e.g. the last CSMS root)


class CommandFailed(Exception):
    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class ProfilePlan:
    """Where a 2.0.1 station is told to connect after an upgrade (1.6 stations keep their URL
    and switch scheme themselves)."""

    csms_url: str  # wss URL of our listener, without the station identity
    slot: int = 0
    priority: tuple[int, ...] = ()  # slots in use before, kept as fallbacks after the new one
    message_timeout: int = 30
    interface: str = "Wired0"


@dataclass(frozen=True, slots=True)
class FirmwareRequest:
    request_id: int
    location: str  # the per-request download URL
    retrieve_at: datetime
    signing_certificate_pem: str
    signature: str  # base64
    install_at: datetime | None = None
    retries: int | None = None
    retry_interval: int | None = None


@dataclass(frozen=True, slots=True)
class LogRequest:
    request_id: int
    log_type: str  # "SecurityLog" or "DiagnosticsLog"
    remote_location: str  # the per-request upload URL
    oldest: datetime | None = None
    latest: datetime | None = None
    retries: int | None = None
    retry_interval: int | None = None


def _retry_fields(retries: int | None, retry_interval: int | None) -> Payload:
    fields: Payload = {}
    if retries is not None:
        fields["retries"] = retries
    if retry_interval is not None:
        fields["retryInterval"] = retry_interval
    return fields


def firmware_payload(request: FirmwareRequest) -> Payload:
    """The request body both versions share (2.0.1 names the action differently)."""
    firmware: Payload = {
        "location": request.location,
        "retrieveDateTime": format_time(request.retrieve_at),
        "signingCertificate": request.signing_certificate_pem,
        "signature": request.signature,
    }
    if request.install_at is not None:
        firmware["installDateTime"] = format_time(request.install_at)
    return {
        "requestId": request.request_id,
        "firmware": firmware,
        **_retry_fields(request.retries, request.retry_interval),
    }


def log_payload(request: LogRequest) -> Payload:
    log: Payload = {"remoteLocation": request.remote_location}
    if request.oldest is not None:
        log["oldestTimestamp"] = format_time(request.oldest)
    if request.latest is not None:
        log["latestTimestamp"] = format_time(request.latest)
    return {
        "logType": request.log_type,
        "requestId": request.request_id,
        "log": log,
        **_retry_fields(request.retries, request.retry_interval),
    }


@dataclass(frozen=True, slots=True)
class Command:
    action: str
    payload: Payload


class VersionCommands(Protocol):
    """What each OCPP version adapter provides."""

    def trigger_csr(self, certificate_type: StationCertificateType) -> Command: ...

    def trigger_accepted(self, answer: Payload) -> bool: ...

    def certificate_signed(
        self, chain_pem: str, certificate_type: StationCertificateType
    ) -> Command: ...

    def install_certificate(self, kind: RootCertificateKind, pem: str) -> Command: ...

    def get_installed(self) -> list[Command]: ...

    def installed_from(self, command: Command, answer: Payload) -> list[InstalledCertificate]: ...

    def delete_certificate(self, hash_data: dict[str, str]) -> Command: ...

    def kind_of(self, certificate_type: str) -> RootCertificateKind | None: ...

    # --- credentials and security profiles (PWD-01/02, UPG-01/02) ---

    def set_credential(self, secret: str) -> Command:
        """1.6 AuthorizationKey (40 hex digits) / 2.0.1 BasicAuthPassword."""
        ...

    def change_status(self, command: Command, answer: Payload) -> str:
        """The station's verdict on a change, as the spec names it (Accepted, Rejected, ...)."""
        ...

    def reset(self) -> Command:
        """A reboot that waits for running transactions (2.0.1 OnIdle, 1.6 Soft)."""
        ...

    def priority_query(self) -> Command | None:
        """How to read the network configuration slots in use; None where there are none."""
        ...

    def slots_in_use(self, answer: Payload) -> list[int]: ...

    def profile_change(self, target: int, plan: ProfilePlan) -> list[Command]:
        """The calls that make the station reconnect on ``target`` (answers must be positive)."""
        ...


    # --- signed firmware and logs (FW-01, LOG-01) ---

    def update_firmware(self, request: FirmwareRequest) -> Command:
        """1.6 SignedUpdateFirmware / 2.0.1 UpdateFirmware, signing certificate included."""
        ...

    def get_log(self, request: LogRequest) -> Command:
        """GetLog (same in 1.6 with the whitepaper and in 2.0.1)."""
        ...


def commands_for(version: OcppVersion) -> VersionCommands:
    if version is OcppVersion.V16:
        from chargewarden.ocpp16.commands import Commands16

        return Commands16()
    from chargewarden.ocpp201.commands import Commands201

    return Commands201()


class StationChannel:
    """Send one command to a connected station and return its answer, or CommandFailed."""

    def __init__(self, registry: ConnectionRegistry, call_timeout: float) -> None:
        self._registry = registry
        self._call_timeout = call_timeout

    def link(self, identity: str) -> StationLink:
        link = self._registry.get(identity)
        if link is None:
            raise CommandFailed(FailureKind.OFFLINE, f"station {identity!r} is offline")
        return link

    def commands(self, identity: str) -> VersionCommands:
        return commands_for(self.link(identity).info.ocpp_version)

    async def send(self, identity: str, command: Command, timeout: float | None = None) -> Payload:
        link = self.link(identity)
        try:
            return await link.call(command.action, command.payload, timeout or self._call_timeout)
        except CallTimeout:
            raise CommandFailed(
                FailureKind.TIMEOUT, f"station {identity!r} did not answer {command.action} in time"
            ) from None
        except ConnectionGone:
            raise CommandFailed(
                FailureKind.OFFLINE,
                f"station {identity!r} disconnected before answering {command.action}",
            ) from None
        except CallErrorReceived as exc:
            raise CommandFailed(
                FailureKind.CALL_ERROR,
                f"station {identity!r} answered {command.action} with CALLERROR {exc.code}"
                + (f": {exc.description[:200]}" if exc.description else ""),
            ) from None
        except InvalidResponse as exc:
            raise CommandFailed(
                FailureKind.INVALID_RESPONSE,
                f"station {identity!r} sent an invalid {command.action} response: "
                f"{exc.error.description[:200]}",
            ) from None
