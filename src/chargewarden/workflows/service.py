"""Starting, listing and cancelling jobs: the one service behind the REST API and the CLI.

Every rule about which job may start lives here, so the API and CLI cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from chargewarden.rpc.versions import OcppVersion
from chargewarden.store import Store
from chargewarden.store.job_records import JobKind, JobRecord, JobState, JobStepRecord
from chargewarden.store.records import AuditRecord, StationRecord
from chargewarden.workflows.engine import JobEngine
from chargewarden.workflows.rotation import BASIC_AUTH_PROFILES

UPGRADE_TARGETS = (2, 3)
MAX_SLOT = 100
# Jobs that run beside a station's other job: they neither block one nor are blocked by one
# (a log fetch only asks the station to upload; it changes nothing a rotation relies on).
BESIDE_OTHER_JOBS = (JobKind.FETCH_LOG,)


class JobErrorKind(StrEnum):
    NOT_FOUND = "not-found"
    CONFLICT = "conflict"  # the station's or job's state does not allow it
    INVALID = "invalid"  # the request itself is wrong


class JobError(Exception):
    def __init__(self, kind: JobErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class JobDetail:
    job: JobRecord
    steps: list[JobStepRecord]
    children: dict[JobState, int]


@dataclass(frozen=True, slots=True)
class FleetSelection:
    """Which stations a fleet job covers; every given criterion must match."""

    profile: int | None = None
    version: OcppVersion | None = None
    identities: tuple[str, ...] | None = None


async def select_stations(store: Store, selection: FleetSelection) -> list[StationRecord]:
    """The stations a fleet operation covers; JobError if a named one does not exist."""
    stations = await store.stations.list()
    wanted = set(selection.identities) if selection.identities is not None else None
    if wanted is not None:
        missing = wanted - {s.identity for s in stations}
        if missing:
            raise JobError(JobErrorKind.NOT_FOUND, f"no station {sorted(missing)[0]!r}")
    return [
        s
        for s in stations
        if (selection.profile is None or s.security_profile == selection.profile)
        and (selection.version is None or s.ocpp_version is selection.version)
        and (wanted is None or s.identity in wanted)
    ]


class JobService:
    def __init__(
        self,
        engine: JobEngine,
        *,
        tls_available: bool,
        fleet_concurrency: int,
        auto_retry_seconds: float = 3600.0,
    ) -> None:
        self._engine = engine
        self._auto_retry_seconds = auto_retry_seconds
        self._store = engine.deps.store
        self._tls = tls_available
        self._fleet_concurrency = fleet_concurrency

    # --- eligibility (shared by single and fleet forms) -------------------------------------

    @staticmethod
    def _rotation_refusal(station: StationRecord) -> str | None:
        if station.security_profile not in BASIC_AUTH_PROFILES:
            how = "a client certificate" if station.security_profile == 3 else "nothing"
            return (
                f"station {station.identity} is on security profile {station.security_profile}, "
                f"which authenticates with {how}, not a password"
            )
        return None

    def _upgrade_refusal(self, station: StationRecord, to: int) -> str | None:
        current = station.security_profile
        if current >= to:
            return (
                f"station {station.identity} is already on security profile {current}; profiles "
                "are only raised, never lowered over OCPP (UPG-03)"
            )
        if current == 0:
            return (
                f"station {station.identity} is on profile 0 and has no credentials; register a "
                "password and move it to profile 1 first"
            )
        if not self._tls:
            return "the CSMS runs without a TLS listener (wss_port), so profiles 2 and 3 are off"
        return None

    async def _station(self, identity: str) -> StationRecord:
        station = await self._store.stations.get(identity)
        if station is None:
            raise JobError(JobErrorKind.NOT_FOUND, f"no station {identity!r}")
        return station

    async def _no_active_job(self, identity: str) -> None:
        active = await self._store.jobs.active_for_station(identity, exclude=BESIDE_OTHER_JOBS)
        if active is not None:
            raise JobError(
                JobErrorKind.CONFLICT,
                f"station {identity} already has job {active.id} ({active.kind}, {active.state}); "
                "wait for it or cancel it",
            )

    async def _audit(
        self, actor: str, action: str, target: str, details: dict[str, object]
    ) -> None:
        await self._store.audit.add(
            AuditRecord(actor=actor, action=action, target=target, details=dict(details))
        )

    # --- starting jobs -----------------------------------------------------------------------

    async def rotate(self, identity: str, *, actor: str) -> JobRecord:
        station = await self._station(identity)
        refusal = self._rotation_refusal(station)
        if refusal:
            raise JobError(JobErrorKind.CONFLICT, refusal)
        await self._no_active_job(identity)
        job = JobRecord(
            kind=JobKind.ROTATE_CREDENTIALS,
            state=JobState.PENDING,
            step="prepare",
            actor=actor,
            station_identity=identity,
        )
        [stored] = await self._engine.submit([job], detail=f"started by {actor}")
        await self._audit(actor, "job.start", identity, {"job": stored.id, "kind": str(job.kind)})
        return stored

    async def upgrade(
        self, identity: str, to: int, *, actor: str, slot: int | None = None
    ) -> JobRecord:
        self._check_target(to, slot)
        station = await self._station(identity)
        refusal = self._upgrade_refusal(station, to)
        if refusal:
            raise JobError(JobErrorKind.CONFLICT, refusal)
        await self._no_active_job(identity)
        params: dict[str, object] = {"to": to}
        if slot is not None:
            params["slot"] = slot
        job = JobRecord(
            kind=JobKind.UPGRADE_PROFILE,
            state=JobState.PENDING,
            step="start",
            actor=actor,
            station_identity=identity,
            params=params,
        )
        [stored] = await self._engine.submit([job], detail=f"started by {actor}")
        await self._audit(
            actor, "job.start", identity, {"job": stored.id, "kind": str(job.kind), "to": to}
        )
        return stored

    @staticmethod
    def _check_target(to: int, slot: int | None) -> None:
        if isinstance(to, bool) or to not in UPGRADE_TARGETS:
            raise JobError(JobErrorKind.INVALID, f"the target profile must be 2 or 3, not {to!r}")
        if slot is not None and (isinstance(slot, bool) or not 0 <= slot <= MAX_SLOT):
            raise JobError(JobErrorKind.INVALID, f"network slot must be 0 to {MAX_SLOT}")

    async def fleet(
        self,
        kind: JobKind,
        selection: FleetSelection,
        *,
        actor: str,
        to: int | None = None,
        concurrency: int | None = None,
    ) -> tuple[JobRecord, list[str]]:
        """Start one job per eligible station. Returns the fleet job and why others were left
        out; JobError if no station is eligible."""
        if kind is JobKind.UPGRADE_PROFILE:
            if to is None:
                raise JobError(JobErrorKind.INVALID, "a fleet upgrade needs a target profile")
            self._check_target(to, None)
        elif kind is not JobKind.ROTATE_CREDENTIALS:
            raise JobError(JobErrorKind.INVALID, f"{kind} is not a fleet operation")
        limit = concurrency if concurrency is not None else self._fleet_concurrency
        if isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise JobError(JobErrorKind.INVALID, "concurrency must be 1 to 1000")
        stations = await self._select(selection)
        busy = {
            job.station_identity
            for job in await self._store.jobs.active()
            if job.kind not in BESIDE_OTHER_JOBS
        }
        children: list[JobRecord] = []
        skipped: list[str] = []
        for station in stations:
            if kind is JobKind.ROTATE_CREDENTIALS:
                refusal = self._rotation_refusal(station)
            else:
                assert to is not None
                refusal = self._upgrade_refusal(station, to)
            if refusal is None and station.identity in busy:
                refusal = f"station {station.identity} already has a job running"
            if refusal:
                skipped.append(refusal)
                continue
            children.append(
                JobRecord(
                    kind=kind,
                    state=JobState.PENDING,
                    step="prepare" if kind is JobKind.ROTATE_CREDENTIALS else "start",
                    actor=actor,
                    station_identity=station.identity,
                    params={"to": to} if to is not None else {},
                )
            )
        if not children:
            why = f" ({len(skipped)} left out: {skipped[0]}{', ...' if len(skipped) > 1 else ''})"
            raise JobError(
                JobErrorKind.CONFLICT, "no station is eligible" + (why if skipped else "")
            )
        params: dict[str, object] = {"operation": str(kind), "concurrency": limit}
        if to is not None:
            params["to"] = to
        parent = JobRecord(
            kind=JobKind.FLEET, state=JobState.PENDING, step="children", actor=actor, params=params
        )
        detail = f"started by {actor} for {len(children)} station(s); {len(skipped)} left out"
        stored = await self._engine.submit_fleet(parent, children, detail=detail)
        await self._audit(
            actor,
            "job.start",
            f"fleet:{stored.id}",
            {
                "job": stored.id,
                "kind": str(kind),
                "stations": len(children),
                "skipped": len(skipped),
            },
        )
        return stored, skipped

    async def _select(self, selection: FleetSelection) -> Sequence[StationRecord]:
        return await select_stations(self._store, selection)

    async def ensure_rotation(self, identity: str) -> JobRecord | None:
        """PWD-03: a station held for a credential update gets a rotation when it boots.

        Not again while one runs, and not again within ``retry_seconds`` of one that failed:
        a station that keeps refusing would otherwise get a new job at every boot retry.
        """
        if (
            await self._store.jobs.active_for_station(identity, exclude=BESIDE_OTHER_JOBS)
            is not None
        ):
            return None
        recent = await self._store.jobs.list(
            station_identity=identity, kind=JobKind.ROTATE_CREDENTIALS, limit=1
        )
        if recent and recent[0].state is JobState.FAILED and recent[0].finished_at is not None:
            age = (self._engine.deps.clock() - recent[0].finished_at).total_seconds()
            if age < self._auto_retry_seconds:
                return None
        try:
            return await self.rotate(identity, actor="system")
        except JobError:
            return None

    # --- looking and cancelling ----------------------------------------------------------------

    async def get(self, job_id: int) -> JobDetail:
        job = await self._store.jobs.get(job_id)
        if job is None:
            raise JobError(JobErrorKind.NOT_FOUND, f"no job {job_id}")
        steps = await self._store.jobs.steps(job_id)
        children = (
            await self._store.jobs.children_by_state(job_id) if job.kind is JobKind.FLEET else {}
        )
        return JobDetail(job, steps, children)

    async def cancel(self, job_id: int, *, actor: str) -> JobRecord:
        job = await self._store.jobs.get(job_id)
        if job is None:
            raise JobError(JobErrorKind.NOT_FOUND, f"no job {job_id}")
        if job.state.finished:
            raise JobError(
                JobErrorKind.CONFLICT, f"job {job_id} has already finished ({job.state})"
            )
        marked = await self._engine.cancel(job_id, actor)
        if marked is None:
            raise JobError(JobErrorKind.CONFLICT, f"job {job_id} finished meanwhile")
        await self._audit(
            actor, "job.cancel", job.station_identity or f"fleet:{job_id}", {"job": job_id}
        )
        return marked
