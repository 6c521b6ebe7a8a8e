"""What the CSMS does when a station calls it, independent of the OCPP version."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from chargewarden.domain.presence import PresenceRecorder
from chargewarden.rpc.errors import ErrorKind, RpcError
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.recorder import SecurityRecorder
from chargewarden.store import Store
from chargewarden.store.records import ConnectorStatusRecord, RegistrationStatus

if TYPE_CHECKING:
    from chargewarden.domain.certificate_signing import CertificateSigning
    from chargewarden.workflows.engine import JobEngine
    from chargewarden.workflows.service import JobService

log = logging.getLogger(__name__)

# How soon a Pending or Rejected station may boot again.
BOOT_RETRY_SECONDS = 60


FollowUp = Callable[[], Awaitable[object]]


class StatusSink(Protocol):
    """Where a station's progress reports on a request go (firmware updates, log uploads)."""

    async def on_status(self, identity: str, request_id: int | None, status: str) -> None: ...


@dataclass(slots=True)
class StationSession:
    """Per-connection state the call handlers share."""

    identity: str
    version: OcppVersion
    peer: str
    # Last BootNotification answer; carried over from the store on reconnect, because a
    # station need not boot again on a fresh connection (OCPP-J 2.0.1 Part 4 §5.3).
    boot_status: RegistrationStatus | None
    # Calls to the station that must wait until the answer to its current CALL is sent
    # (CertificateSigned after SignCertificate.conf); the connection starts them then.
    follow_ups: list[FollowUp] = field(default_factory=list)

    def after_reply(self, follow_up: FollowUp) -> None:
        self.follow_ups.append(follow_up)


@dataclass(frozen=True, slots=True)
class BootDecision:
    status: RegistrationStatus
    interval: int
    current_time: datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a Z, as chargers parse best."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class StationCalls:
    def __init__(
        self,
        store: Store,
        recorder: SecurityRecorder,
        heartbeat_interval: int,
        presence: PresenceRecorder,
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._heartbeat_interval = heartbeat_interval
        self._presence = presence
        # Set by the composition root; None where certificates are not managed (tests).
        self.certificates: CertificateSigning | None = None
        # Set by the composition root: jobs waiting for a station resume when it is back.
        self.jobs: JobEngine | None = None
        # Set when held stations get their credentials rotated automatically (PWD-03).
        self.auto_rotation: JobService | None = None
        # Progress of signed firmware updates and of log uploads; None without file transfer.
        self.firmware: StatusSink | None = None
        self.logs: StatusSink | None = None

    def seen(self, identity: str, at: datetime) -> None:
        self._presence.seen(identity, at)

    def gate(self, session: StationSession, action: str) -> RpcError | None:
        """RPC-08: after a Rejected boot only BootNotification is served."""
        if session.boot_status is RegistrationStatus.REJECTED and action != "BootNotification":
            return RpcError(ErrorKind.SECURITY, "BootNotification was rejected; boot again first")
        return None

    async def boot(
        self,
        session: StationSession,
        *,
        vendor: str,
        model: str,
        serial_number: str | None,
        firmware_version: str | None,
    ) -> BootDecision:
        station = await self._store.stations.get(session.identity)
        now = utc_now()
        if station is None:
            # Deleted while connected: refuse rather than serve a station we no longer know.
            status = RegistrationStatus.REJECTED
        elif station.registration_status is RegistrationStatus.REJECTED:
            status = RegistrationStatus.REJECTED
        elif (
            station.registration_status is RegistrationStatus.PENDING
            or station.needs_credential_update
        ):
            status = RegistrationStatus.PENDING
        else:
            status = RegistrationStatus.ACCEPTED
        if station is not None:
            if station.serial_number and serial_number and serial_number != station.serial_number:
                log.warning(
                    "station %s reports serial number %r, registered %r",
                    session.identity,
                    serial_number,
                    station.serial_number,
                )
            await self._store.stations.update(
                session.identity,
                last_boot_status=status,
                vendor=vendor,
                model=model,
                firmware_version=firmware_version,
                last_seen=now,
            )
        session.boot_status = status
        if (
            status is RegistrationStatus.PENDING
            and station is not None
            and station.needs_credential_update
            and self.auto_rotation is not None
        ):
            service = self.auto_rotation
            session.after_reply(lambda: service.ensure_rotation(session.identity))
        engine = self.jobs
        if (
            engine is not None
            and status is not RegistrationStatus.REJECTED
            and engine.has_jobs_for(session.identity)
        ):
            # Pending included: a held station is configured while it waits (A01.FR.05).
            session.after_reply(lambda: _announce(engine, session.identity))
        if status is RegistrationStatus.ACCEPTED and self.certificates is not None:
            # Certificates issued but not acknowledged (restart, dropped connection) go out
            # again once the station is accepted.
            certificates = self.certificates
            session.after_reply(lambda: certificates.resume(session.identity))
        interval = (
            self._heartbeat_interval
            if status is RegistrationStatus.ACCEPTED
            else BOOT_RETRY_SECONDS
        )
        return BootDecision(status, interval, now)

    async def heartbeat(self, session: StationSession) -> datetime:
        now = utc_now()
        self._presence.seen(session.identity, now)
        return now

    async def connector_status(
        self,
        session: StationSession,
        *,
        evse_id: int,
        connector_id: int,
        status: str,
        error_code: str | None,
        timestamp: datetime | None,
    ) -> None:
        await self._store.connectors.upsert(
            ConnectorStatusRecord(
                station_identity=session.identity,
                evse_id=evse_id,
                connector_id=connector_id,
                status=status,
                error_code=error_code,
                updated_at=timestamp or utc_now(),
            )
        )

    async def security_event(
        self,
        session: StationSession,
        *,
        event_type: str,
        timestamp: datetime | None,
        tech_info: str | None,
    ) -> None:
        await self._recorder.station(
            session.identity,
            session.version,
            event_type,
            timestamp or utc_now(),
            tech_info,
            session.peer,
        )

    async def firmware_status(
        self, session: StationSession, *, status: str, request_id: int | None
    ) -> None:
        """(Signed)FirmwareStatusNotification: progress of the update ``request_id``."""
        log.info("station %s firmware status %s (request %s)", session.identity, status, request_id)
        if self.firmware is not None:
            await self.firmware.on_status(session.identity, request_id, status)

    async def log_status(
        self, session: StationSession, *, status: str, request_id: int | None
    ) -> None:
        """LogStatusNotification: progress of the log upload ``request_id``."""
        log.info("station %s log status %s (request %s)", session.identity, status, request_id)
        if self.logs is not None:
            await self.logs.on_status(session.identity, request_id, status)

    def connected(self, session: StationSession, certificate_fingerprint: str | None) -> None:
        """Queue what a fresh connection owes the station: certificates issued but not yet
        acknowledged, retiring the certificates a renewed one replaces, and its waiting jobs."""
        engine = self.jobs
        if (
            engine is not None
            and session.boot_status is RegistrationStatus.ACCEPTED
            and engine.has_jobs_for(session.identity)
        ):
            # Accepted before, so it need not boot again (2.0.1 Part 4 §5.3): resume now.
            session.after_reply(lambda: _announce(engine, session.identity))
        certificates = self.certificates
        if certificates is None:
            return
        if certificate_fingerprint is not None:
            fingerprint = certificate_fingerprint
            session.after_reply(
                lambda: certificates.retire_superseded(session.identity, fingerprint)
            )
        if session.boot_status is RegistrationStatus.ACCEPTED:
            session.after_reply(lambda: certificates.resume(session.identity))

    async def sign_certificate(
        self, session: StationSession, *, csr: str, certificate_type: str | None
    ) -> bool:
        """SignCertificate (CRT-02): True = Accepted, the certificate follows after the reply."""
        if self.certificates is None:
            return False
        return await self.certificates.on_csr(
            session.identity, csr, certificate_type, session.peer, session.after_reply
        )


async def _announce(engine: JobEngine, identity: str) -> None:
    engine.station_connected(identity)
