"""Certificate renewal before expiry (CRT-09): the expiry monitor and fleet renewals.

A station certificate is due when it is the newest unrevoked one of its station and CA and
expires within ``renew_before_days``. Renewing it triggers the CSR flow of
`CertificateSigning`; the old certificate stays valid until the station connects with the new
one and is retired then. Stations that are offline are simply due again at the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chargewarden.config import CertificateSettings
from chargewarden.domain.certificate_signing import CertificateSigning
from chargewarden.domain.station_commands import CommandFailed
from chargewarden.gateway.registry import ConnectionRegistry
from chargewarden.pki.csr_policy import StationCertificateType
from chargewarden.pki.layout import V2G_CA
from chargewarden.store import Store, StoreError
from chargewarden.store.records import CertificateRecord, CertificateRole, RequestOrigin

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class RenewalOutcome:
    station: str
    serial: str
    started: bool
    message: str
    request_id: int | None = None


def certificate_type_of(record: CertificateRecord) -> StationCertificateType:
    if record.issuer_ca == V2G_CA:
        return StationCertificateType.V2G
    return StationCertificateType.CHARGING_STATION


class CertificateRenewal:
    def __init__(
        self,
        store: Store,
        signing: CertificateSigning,
        registry: ConnectionRegistry,
        settings: CertificateSettings,
    ) -> None:
        self._store = store
        self._signing = signing
        self._registry = registry
        self._settings = settings
        self._task: asyncio.Task[None] | None = None

    async def due(
        self,
        within: timedelta,
        *,
        station: str | None = None,
        now: datetime | None = None,
    ) -> list[CertificateRecord]:
        """Newest unrevoked station certificate per station and CA, expiring within ``within``
        and with no renewal already under way."""
        now = now or datetime.now(UTC)
        newest: dict[tuple[str, str], CertificateRecord] = {}
        for record in await self._store.certificates.list(
            station=station, role=CertificateRole.STATION, include_revoked=False
        ):
            if record.station_identity is None:
                continue
            key = (record.station_identity, record.issuer_ca)
            if key not in newest or record.not_after > newest[key].not_after:
                newest[key] = record
        due = []
        for (identity, _), record in sorted(newest.items()):
            if record.not_after - now > within:
                continue
            open_request = await self._store.certificate_requests.open_for(
                identity, certificate_type_of(record)
            )
            if open_request is None:
                due.append(record)
        return due

    async def renew(
        self,
        certificates: list[CertificateRecord],
        *,
        concurrency: int,
        actor: str | None,
        origin: RequestOrigin = RequestOrigin.RENEWAL,
        progress: Callable[[RenewalOutcome], None] | None = None,
    ) -> list[RenewalOutcome]:
        """Start the CSR flow for each certificate, at most ``concurrency`` at once."""
        limit = asyncio.Semaphore(max(1, concurrency))

        async def one(record: CertificateRecord) -> RenewalOutcome:
            assert record.station_identity is not None
            async with limit:
                try:
                    request = await self._signing.request(
                        record.station_identity,
                        certificate_type_of(record),
                        origin=origin,
                        actor=actor,
                        replaces_certificate_id=record.id,
                    )
                    outcome = RenewalOutcome(
                        record.station_identity,
                        record.serial,
                        True,
                        "CSR requested",
                        request.id,
                    )
                except CommandFailed as exc:
                    outcome = RenewalOutcome(
                        record.station_identity, record.serial, False, str(exc)
                    )
            if progress is not None:
                progress(outcome)
            return outcome

        return list(await asyncio.gather(*(one(record) for record in certificates)))

    async def tick(self, now: datetime | None = None) -> list[RenewalOutcome]:
        """One pass of the expiry monitor: renew what is due on stations that are online."""
        await self._signing.expire_waiting(now)
        due = await self.due(timedelta(days=self._settings.renew_before_days), now=now)
        online = [r for r in due if r.station_identity and self._registry.get(r.station_identity)]
        if len(online) < len(due):
            log.info(
                "%s certificates due for renewal on offline stations; retried at the next check",
                len(due) - len(online),
            )
        outcomes = await self.renew(
            online, concurrency=self._settings.renewal_concurrency, actor="expiry-monitor"
        )
        for outcome in outcomes:
            log.info(
                "renewal of %s (station %s): %s", outcome.serial, outcome.station, outcome.message
            )
        return outcomes

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="certificate-renewal")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.renewal_check_seconds)
            try:
                await self.tick()
            except StoreError as exc:
                log.error("certificate expiry check failed: %s", exc)
            except Exception:
                log.exception("certificate expiry check failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
