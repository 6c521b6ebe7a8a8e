"""Starting and following firmware updates: the one service behind the REST API and the CLI.

One station or a fleet (one child job per station, with a concurrency limit, like the other
fleet operations). Station status reports come in through ``on_status`` (the StatusSink of
``StationCalls``), are stored on the update and wake its job.
"""

from __future__ import annotations

import logging
from datetime import datetime

from chargewarden.firmware.releases import FirmwareReleases, ReleaseError
from chargewarden.store.job_records import JobKind, JobRecord, JobState
from chargewarden.store.records import AuditRecord, StationRecord
from chargewarden.store.transfer_records import (
    FirmwareReleaseRecord,
    FirmwareUpdateRecord,
    FirmwareUpdateState,
)
from chargewarden.workflows.engine import JobEngine
from chargewarden.workflows.firmware import OPEN
from chargewarden.workflows.service import (
    BESIDE_OTHER_JOBS,
    FleetSelection,
    JobError,
    JobErrorKind,
    select_stations,
)

log = logging.getLogger(__name__)

MAX_RETRIES = 100
MAX_RETRY_INTERVAL = 86400


def check_retries(retries: int | None, retry_interval: int | None) -> None:
    if retries is not None and not 0 <= retries <= MAX_RETRIES:
        raise JobError(JobErrorKind.INVALID, f"retries must be 0 to {MAX_RETRIES}")
    if retry_interval is not None and not 0 <= retry_interval <= MAX_RETRY_INTERVAL:
        raise JobError(JobErrorKind.INVALID, f"retry interval must be 0 to {MAX_RETRY_INTERVAL} s")


class FirmwareService:
    def __init__(
        self, engine: JobEngine, releases: FirmwareReleases, *, fleet_concurrency: int
    ) -> None:
        self._engine = engine
        self._store = engine.deps.store
        self.releases = releases
        self._fleet_concurrency = fleet_concurrency

    async def _release(self, name: str) -> FirmwareReleaseRecord:
        try:
            return await self.releases.get(name)
        except ReleaseError as exc:
            raise JobError(JobErrorKind.NOT_FOUND, str(exc)) from None

    async def _busy(self, identity: str) -> str | None:
        active = await self._store.jobs.active_for_station(identity, exclude=BESIDE_OTHER_JOBS)
        if active is None:
            return None
        return (
            f"station {identity} already has job {active.id} ({active.kind}, {active.state}); "
            "wait for it or cancel it"
        )

    async def _new_update(
        self,
        station: StationRecord,
        release: FirmwareReleaseRecord,
        actor: str,
        retrieve_at: datetime,
        install_at: datetime | None,
        retries: int | None,
        retry_interval: int | None,
    ) -> tuple[FirmwareUpdateRecord, JobRecord]:
        assert release.id is not None
        update = await self._store.firmware_updates.add(
            FirmwareUpdateRecord(
                station_identity=station.identity,
                release_id=release.id,
                state=FirmwareUpdateState.PENDING,
                retrieve_at=retrieve_at,
                install_at=install_at,
                retries=retries,
                retry_interval=retry_interval,
                actor=actor,
            )
        )
        job = JobRecord(
            kind=JobKind.UPDATE_FIRMWARE,
            state=JobState.PENDING,
            step="send",
            actor=actor,
            station_identity=station.identity,
            params={"update": update.id, "release": release.name},
        )
        return update, job

    async def update(
        self,
        identity: str,
        release_name: str,
        *,
        actor: str,
        at: datetime | None = None,
        install_at: datetime | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> tuple[JobRecord, FirmwareUpdateRecord]:
        check_retries(retries, retry_interval)
        release = await self._release(release_name)
        station = await self._store.stations.get(identity)
        if station is None:
            raise JobError(JobErrorKind.NOT_FOUND, f"no station {identity!r}")
        busy = await self._busy(identity)
        if busy:
            raise JobError(JobErrorKind.CONFLICT, busy)
        now = self._engine.deps.clock()
        update, job = await self._new_update(
            station, release, actor, at or now, install_at, retries, retry_interval
        )
        [stored] = await self._engine.submit([job], detail=f"started by {actor}")
        assert update.id is not None
        update = await self._store.firmware_updates.update(update.id, job_id=stored.id) or update
        await self._audit(
            actor, identity, {"job": stored.id, "update": update.id, "release": release.name}
        )
        return stored, update

    async def fleet(
        self,
        selection: FleetSelection,
        release_name: str,
        *,
        actor: str,
        at: datetime | None = None,
        install_at: datetime | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
        concurrency: int | None = None,
    ) -> tuple[JobRecord, list[str]]:
        """One update per selected station; returns the fleet job and who was left out."""
        check_retries(retries, retry_interval)
        limit = concurrency if concurrency is not None else self._fleet_concurrency
        if isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise JobError(JobErrorKind.INVALID, "concurrency must be 1 to 1000")
        release = await self._release(release_name)
        stations = await select_stations(self._store, selection)
        now = self._engine.deps.clock()
        children: list[JobRecord] = []
        updates: list[FirmwareUpdateRecord] = []
        skipped: list[str] = []
        for station in stations:
            busy = await self._busy(station.identity)
            if busy:
                skipped.append(busy)
                continue
            update, job = await self._new_update(
                station, release, actor, at or now, install_at, retries, retry_interval
            )
            updates.append(update)
            children.append(job)
        if not children:
            why = f" ({len(skipped)} left out: {skipped[0]})" if skipped else ""
            raise JobError(JobErrorKind.CONFLICT, "no station is eligible" + why)
        parent = JobRecord(
            kind=JobKind.FLEET,
            state=JobState.PENDING,
            step="children",
            actor=actor,
            params={
                "operation": str(JobKind.UPDATE_FIRMWARE),
                "concurrency": limit,
                "release": release.name,
            },
        )
        detail = f"started by {actor} for {len(children)} station(s); {len(skipped)} left out"
        stored = await self._engine.submit_fleet(parent, children, detail=detail)
        for child in self._engine.active_children(stored.id or 0):
            if child.id is not None and child.params.get("update") is not None:
                await self._store.firmware_updates.update(
                    int(child.params["update"]), job_id=child.id
                )
        await self._audit(
            actor,
            f"fleet:{stored.id}",
            {"job": stored.id, "release": release.name, "stations": len(children)},
        )
        return stored, skipped

    async def _audit(self, actor: str, target: str, details: dict[str, object]) -> None:
        await self._store.audit.add(
            AuditRecord(actor=actor, action="firmware.update", target=target, details=details)
        )

    async def on_status(self, identity: str, request_id: int | None, status: str) -> None:
        """A (Signed)FirmwareStatusNotification; only the station's own updates are changed."""
        if request_id is None:
            return  # Idle, or an update the station started itself
        update = await self._store.firmware_updates.get(request_id)
        if update is None or update.station_identity != identity:
            log.warning(
                "station %s reported firmware status %s for request %s, which is not one of its "
                "updates; ignored",
                identity,
                status,
                request_id,
            )
            return
        recorded = await self._store.firmware_updates.record_status(
            request_id, status, self._engine.deps.clock(), only_if=OPEN
        )
        if recorded is not None and recorded.job_id is not None:
            self._engine.poke(recorded.job_id)
