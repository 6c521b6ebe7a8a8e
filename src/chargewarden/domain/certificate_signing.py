"""Station certificates signed over OCPP, for both versions (CRT-01, CRT-02, CRT-03, CRT-09).

trigger → SignCertificate(CSR) → policy check → sign → commit → SignCertificate.conf →
CertificateSigned → the station's answer. Every step is in the store before the message that
depends on it goes out, so a restart at any point resumes: an issued certificate whose
CertificateSigned was not answered is sent again, the same certificate, when the station is
back; nothing is signed twice for one request and nothing retries in a loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chargewarden.config import CertificateSettings
from chargewarden.domain.station_commands import CommandFailed, FailureKind, StationChannel
from chargewarden.pki.csr_policy import CsrRejected, StationCertificateType, check_station_csr
from chargewarden.pki.recording import record_for
from chargewarden.pki.signer import CertificateSigner, SignerError, SigningRequest
from chargewarden.security.alerts import Alerts
from chargewarden.security.events import CsmsEvent
from chargewarden.security.recorder import SecurityRecorder
from chargewarden.store import Store
from chargewarden.store.records import (
    AlertSeverity,
    CertificateRecord,
    CertificateRequestRecord,
    CertificateRequestState,
    CertificateRole,
    RequestOrigin,
)

log = logging.getLogger(__name__)

State = CertificateRequestState


class CertificateSigning:
    def __init__(
        self,
        store: Store,
        signer: CertificateSigner,
        channel: StationChannel,
        recorder: SecurityRecorder,
        alerts: Alerts,
        settings: CertificateSettings,
        cpo_name: str,
    ) -> None:
        self._store = store
        self._signer = signer
        self._channel = channel
        self._recorder = recorder
        self._alerts = alerts
        self._settings = settings
        self._cpo_name = cpo_name
        self._delivering: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- CRT-01: ask the station for a CSR ----------------------------------------------------

    async def request(
        self,
        identity: str,
        certificate_type: StationCertificateType = StationCertificateType.CHARGING_STATION,
        *,
        origin: RequestOrigin = RequestOrigin.OPERATOR,
        actor: str | None = None,
        replaces_certificate_id: int | None = None,
    ) -> CertificateRequestRecord:
        """Trigger the station's CSR; the request is recorded before the trigger goes out.

        CommandFailed if the station is offline, refuses or cannot do it; an open request of
        the same type is returned instead of starting a second one.
        """
        commands = self._channel.commands(identity)
        command = commands.trigger_csr(certificate_type)
        existing = await self._store.certificate_requests.open_for(identity, certificate_type)
        if existing is not None:
            return existing
        record = await self._store.certificate_requests.add(
            CertificateRequestRecord(
                station_identity=identity,
                certificate_type=certificate_type.value,
                state=State.TRIGGERED,
                origin=origin,
                actor=actor,
                replaces_certificate_id=replaces_certificate_id,
            )
        )
        assert record.id is not None
        try:
            answer = await self._channel.send(identity, command)
        except CommandFailed as exc:
            await self._store.certificate_requests.update(
                record.id, state=State.FAILED, reason=str(exc)
            )
            raise
        if not commands.trigger_accepted(answer):
            reason = f"station answered {command.action} with {answer.get('status')}"
            await self._store.certificate_requests.update(
                record.id, state=State.FAILED, reason=reason
            )
            raise CommandFailed(FailureKind.REFUSED, reason)
        log.info(
            "station %s asked for a %s CSR (request %s)", identity, certificate_type, record.id
        )
        return record

    # --- CRT-02: the CSR arrives --------------------------------------------------------------

    async def on_csr(
        self,
        identity: str,
        csr_pem: str,
        certificate_type_text: str | None,
        peer: str | None,
        schedule: Callable[[Callable[[], object]], None],
    ) -> bool:
        """Answer SignCertificate: True (Accepted) only once the certificate is committed.

        ``schedule`` runs a follow-up after the SignCertificate answer is on the wire: that is
        when CertificateSigned may go out.
        """
        now = datetime.now(UTC)
        certificate_type = StationCertificateType(
            certificate_type_text or StationCertificateType.CHARGING_STATION
        )
        open_request = await self._store.certificate_requests.open_for(identity, certificate_type)
        if open_request is not None and open_request.state is not State.TRIGGERED:
            open_request = None  # an issued one awaits its answer; this CSR is a new request
        request = open_request or CertificateRequestRecord(
            station_identity=identity,
            certificate_type=certificate_type.value,
            state=State.TRIGGERED,
            origin=RequestOrigin.STATION,
        )
        recent = await self._store.certificate_requests.csrs_since(
            identity, now - timedelta(hours=1)
        )
        if recent >= self._settings.csrs_per_station_per_hour:
            reason = (
                f"more than {self._settings.csrs_per_station_per_hour} CSRs from this station "
                "in the last hour"
            )
            return await self._refuse(request, reason, now, peer)
        station = await self._store.stations.get(identity)
        if station is None:
            return await self._refuse(request, "station no longer registered", now, peer)
        verdict = check_station_csr(
            csr_pem,
            expected_cn=station.expected_serial,
            expected_o=station.cpo_name or self._cpo_name,
            certificate_type=certificate_type,
        )
        if isinstance(verdict, CsrRejected):
            return await self._refuse(request, verdict.reason, now, peer)
        try:
            signed = await self._signer.sign(
                SigningRequest(identity, certificate_type, verdict.csr)
            )
        except SignerError as exc:
            await self._alerts.raise_alert(
                AlertSeverity.WARNING,
                "certificate.signer_failed",
                f"could not sign the CSR of station {identity}: {exc}",
                station=identity,
            )
            return await self._refuse(request, f"signer failed: {exc}", now, peer, event=False)
        certificate = record_for(
            signed.certificate,
            issuer_ca=signed.issuer_ca,
            role=CertificateRole.STATION,
            station_identity=identity,
        )
        issued, stored = await self._store.certificate_requests.issue(
            replace(request, csr_received_at=now, chain_pem=signed.chain_pem), certificate
        )
        log.info(
            "signed a %s certificate for station %s (serial %s, request %s)",
            certificate_type,
            identity,
            stored.serial,
            issued.id,
        )
        assert issued.id is not None
        request_id = issued.id
        schedule(lambda: self.deliver(identity, request_id))
        return True

    async def _refuse(
        self,
        request: CertificateRequestRecord,
        reason: str,
        now: datetime,
        peer: str | None,
        *,
        event: bool = True,
    ) -> bool:
        if request.id is None:
            await self._store.certificate_requests.add(
                replace(request, state=State.REJECTED, reason=reason, csr_received_at=now)
            )
        else:
            await self._store.certificate_requests.update(
                request.id, state=State.REJECTED, reason=reason, csr_received_at=now
            )
        if event:
            await self._recorder.csms(
                CsmsEvent.CSR_REJECTED,
                identity=request.station_identity,
                peer=peer,
                reason=f"{request.certificate_type} CSR refused: {reason}",
            )
        return False

    # --- CertificateSigned and the station's answer (CRT-03) ---------------------------------

    async def deliver(self, identity: str, request_id: int) -> None:
        """Send the issued certificate; record the answer. Safe to call twice at once."""
        if request_id in self._delivering:
            return
        self._delivering.add(request_id)
        try:
            await self._deliver(identity, request_id)
        finally:
            self._delivering.discard(request_id)

    async def _deliver(self, identity: str, request_id: int) -> None:
        requests = self._store.certificate_requests
        request = await requests.get(request_id)
        if request is None or request.state is not State.ISSUED or request.chain_pem is None:
            return
        if request.delivery_attempts >= self._settings.max_delivery_attempts:
            reason = f"CertificateSigned unanswered after {request.delivery_attempts} attempts"
            if await requests.transition(
                request_id, State.ISSUED, state=State.FAILED, reason=reason
            ):
                await self._alerts.raise_alert(
                    AlertSeverity.WARNING,
                    "certificate.delivery_failed",
                    f"station {identity}: {reason}",
                    station=identity,
                    details={"request": request_id},
                )
            return
        certificate_type = StationCertificateType(request.certificate_type)
        try:
            command = self._channel.commands(identity).certificate_signed(
                request.chain_pem, certificate_type
            )
            await requests.update(request_id, delivery_attempts=request.delivery_attempts + 1)
            answer = await self._channel.send(identity, command)
        except CommandFailed as exc:
            # Stays issued: sent again when the station is next connected.
            log.info("CertificateSigned for request %s not answered: %s", request_id, exc)
            return
        if answer.get("status") == "Accepted":
            await requests.transition(request_id, State.ISSUED, state=State.ACCEPTED)
            log.info("station %s accepted its new certificate (request %s)", identity, request_id)
            return
        reason = "the station rejected the certificate (CertificateSigned Rejected)"
        if await requests.transition(
            request_id, State.ISSUED, state=State.REFUSED_BY_STATION, reason=reason
        ):
            # No automatic retry (TC_A_14): whatever made the station refuse would repeat.
            await self._alerts.raise_alert(
                AlertSeverity.CRITICAL,
                "certificate.refused_by_station",
                f"station {identity} rejected the {certificate_type} it was sent "
                f"(request {request_id}); nothing will be retried automatically",
                station=identity,
                details={"request": request_id, "certificate_id": request.certificate_id},
            )

    # --- reconnects ----------------------------------------------------------------------------

    async def resume(self, identity: str) -> None:
        """Send again what was issued but not answered (a restart or a dropped connection)."""
        for request in await self._store.certificate_requests.in_state(
            State.ISSUED, station_identity=identity
        ):
            assert request.id is not None
            await self.deliver(identity, request.id)

    async def retire_superseded(self, identity: str, fingerprint: str) -> list[CertificateRecord]:
        """The station is using ``fingerprint``: revoke its older certificates of that CA."""
        current = await self._store.certificates.find_by_fingerprint(fingerprint)
        if current is None or current.station_identity != identity or current.id is None:
            return []
        retired = []
        for older in await self._store.certificates.list(
            station=identity, role=CertificateRole.STATION, include_revoked=False
        ):
            if older.issuer_ca != current.issuer_ca or older.id == current.id:
                continue
            # Issued later (ids grow with issuance; two issued in the same second share a
            # notBefore) means not superseded by the one in use.
            if (older.not_before, older.id or 0) >= (current.not_before, current.id):
                continue
            retired.append(
                await self._store.certificates.revoke(
                    older.serial,
                    "superseded: the station now uses a newer certificate",
                    datetime.now(UTC),
                    issuer_ca=older.issuer_ca,
                )
            )
            log.info("retired certificate %s of station %s (superseded)", older.serial, identity)
        return retired

    async def expire_waiting(self, now: datetime | None = None) -> int:
        """Triggered requests that never got a CSR fail after csr_wait_seconds."""
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=self._settings.csr_wait_seconds)
        expired = 0
        for request in await self._store.certificate_requests.in_state(
            State.TRIGGERED, updated_before=cutoff
        ):
            assert request.id is not None
            if await self._store.certificate_requests.transition(
                request.id, State.TRIGGERED, state=State.FAILED, reason="no CSR received in time"
            ):
                expired += 1
        return expired
