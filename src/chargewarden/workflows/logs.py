"""Security and diagnostics logs fetched from stations (LOG-01): GetLog as a durable job.

``LogService`` is the one place that decides whether a fetch may start (API and CLI share it)
and where the station's reports land: LogStatusNotification (``on_status``, from
domain.station_calls) and a stored upload (``on_log_stored``, from the file-transfer app). The
steps are in workflows/log_fetch.py.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path

from chargewarden.store.errors import StoreError
from chargewarden.store.job_records import JobKind, JobRecord, JobState
from chargewarden.store.records import AuditRecord
from chargewarden.store.transfer_records import LogRequestRecord, LogRequestState, LogType
from chargewarden.workflows.engine import JobEngine
from chargewarden.workflows.log_fetch import OPEN, PURPOSE, FetchLog, log_words
from chargewarden.workflows.service import JobError, JobErrorKind

log = logging.getLogger(__name__)

# OCPP requestIds are 32-bit integers; anything else a station sends cannot be ours.
MAX_REQUEST_ID = 2**31 - 1
# Newest fetch-log jobs of a station looked at for the one-at-a-time rule (only one is open).
_RECENT_JOBS = 20


def parse_log_type(value: str | LogType) -> LogType:
    """'security' / 'diagnostics' (or the OCPP names) as a LogType."""
    names = {"security": LogType.SECURITY, "diagnostics": LogType.DIAGNOSTICS}
    found = names.get(str(value).lower()) or next((t for t in LogType if t.value == value), None)
    if found is None:
        raise JobError(JobErrorKind.INVALID, "the log type must be security or diagnostics")
    return found


class LogService:
    def __init__(self, engine: JobEngine) -> None:
        self._engine = engine
        self._store = engine.deps.store
        self._clock = engine.deps.clock
        # Two fetches asked for at the same moment must not both pass the one-at-a-time check.
        self._starting = asyncio.Lock()

    # --- starting ---------------------------------------------------------------------------

    async def fetch(
        self,
        identity: str,
        log_type: LogType | str,
        *,
        actor: str,
        since: datetime | None = None,
        until: datetime | None = None,
        replace: bool = False,
    ) -> JobRecord:
        """Start a fetch; ``replace`` first cancels the station's open one (TC_N_36: the
        station then drops that upload and answers AcceptedCanceled)."""
        kind = parse_log_type(log_type)
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.utcoffset() is None:
                raise JobError(JobErrorKind.INVALID, f"{name} needs a time zone offset")
        if since is not None and until is not None and since >= until:
            raise JobError(JobErrorKind.INVALID, "since must be before until")
        if await self._store.stations.get(identity) is None:
            raise JobError(JobErrorKind.NOT_FOUND, f"no station {identity!r}")
        async with self._starting:
            replaced = await self._one_at_a_time(identity, actor, replace)
            request = await self._store.log_requests.add(
                LogRequestRecord(
                    station_identity=identity,
                    log_type=kind,
                    state=LogRequestState.PENDING,
                    actor=actor,
                    since=since,
                    until=until,
                )
            )
            assert request.id is not None
            params: dict[str, object] = {"request_id": request.id, "log_type": str(kind)}
            if since is not None:
                params["since"] = since.isoformat()
            if until is not None:
                params["until"] = until.isoformat()
            if replaced is not None:
                params["replaces_job"] = replaced
            job = JobRecord(
                kind=JobKind.FETCH_LOG,
                state=JobState.PENDING,
                step="send",
                actor=actor,
                station_identity=identity,
                params=params,
            )
            [stored] = await self._engine.submit(
                [job],
                detail=f"started by {actor}: the {log_words(kind)}, requestId {request.id}",
            )
            await self._store.log_requests.update(request.id, job_id=stored.id)
        await self._store.audit.add(
            AuditRecord(
                actor=actor,
                action="log.fetch",
                target=identity,
                details={k: v for k, v in {"job": stored.id, **params}.items() if v is not None},
            )
        )
        log.info(
            "%s asked %s for its %s (request %s, job %s)",
            actor,
            identity,
            log_words(kind),
            request.id,
            stored.id,
        )
        return stored

    async def _one_at_a_time(self, identity: str, actor: str, replace: bool) -> int | None:
        """The station's open fetch: a conflict, or (replace) cancelled; returns its job id."""
        recent = await self._store.jobs.list(
            station_identity=identity, kind=JobKind.FETCH_LOG, limit=_RECENT_JOBS
        )
        open_jobs = [j for j in recent if not j.state.finished and not j.cancel_requested]
        if not open_jobs:
            return None
        job = open_jobs[0]
        assert job.id is not None
        request_id = job.params.get("request_id")
        if not replace:
            raise JobError(
                JobErrorKind.CONFLICT,
                f"station {identity} already has a log fetch under way (job {job.id}, request "
                f"{request_id}, {job.state}); wait for it, cancel it (chargewarden jobs cancel "
                f"{job.id}), or ask again with replace",
            )
        # End the old request now, not when the engine gets to the cancel: its link must stop
        # before the station is told about the new one.
        if isinstance(request_id, int):
            await self._store.file_tokens.expire(PURPOSE, request_id, self._clock())
            await self._store.log_requests.update(
                request_id,
                only_if=OPEN,
                state=LogRequestState.CANCELLED,
                reason=f"replaced by a new request from {actor}",
            )
        await self._engine.cancel(job.id, actor)
        return job.id

    # --- what stations report ----------------------------------------------------------------

    async def on_status(self, identity: str, request_id: int | None, status: str) -> None:
        """LogStatusNotification (1.6 also DiagnosticsStatusNotification, without an id)."""
        try:
            record = await self._reported(identity, request_id, status)
            if record is None or record.id is None:
                return
            await self._store.log_requests.record_status(record.id, status, self._clock())
        except StoreError as exc:
            # The station's report is answered anyway; the job still ends by its deadline.
            log.warning("station %s log status %s not recorded: %s", identity, status, exc)
            return
        if record.job_id is not None:
            self._engine.poke(record.job_id)

    async def _reported(
        self, identity: str, request_id: int | None, status: str
    ) -> LogRequestRecord | None:
        """The request a status is about, or None (logged) when it is none of this station's."""
        if request_id is None:
            if status == "Idle":
                return None  # a triggered report with nothing under way (N01.FR.12)
            # One open fetch per station, so a status without an id can only be about it.
            for record in await self._store.log_requests.list(station=identity, limit=5):
                if record.state.open:
                    return record
            log.info("station %s reported log status %s with nothing under way", identity, status)
            return None
        record = (
            await self._store.log_requests.get(request_id)
            if 0 < request_id <= MAX_REQUEST_ID
            else None
        )
        if record is None:
            log.warning(
                "station %s reported log status %s for unknown request %s; ignored",
                identity,
                status,
                request_id,
            )
            return None
        if record.station_identity != identity:
            log.warning(
                "station %s reported log status %s for request %s of another station; ignored",
                identity,
                status,
                request_id,
            )
            return None
        return record

    async def on_log_stored(self, record: LogRequestRecord) -> None:
        """The file-transfer app stored an upload: the job can finish now."""
        if record.job_id is not None:
            self._engine.poke(record.job_id)

    # --- looking ------------------------------------------------------------------------------

    async def get(self, request_id: int) -> LogRequestRecord:
        record = (
            await self._store.log_requests.get(request_id)
            if 0 < request_id <= MAX_REQUEST_ID
            else None
        )
        if record is None:
            raise JobError(JobErrorKind.NOT_FOUND, f"no log request {request_id}")
        return record

    def file_of(self, record: LogRequestRecord) -> Path:
        """Where the stored upload is; JobError if there is none (yet) or it went missing."""
        storage = self._engine.deps.storage
        if record.stored_path is None or storage is None:
            why = f" ({record.reason})" if record.reason else ""
            raise JobError(
                JobErrorKind.CONFLICT,
                f"log request {record.id} has no stored file: it is {record.state}{why}",
            )
        try:
            path = storage.absolute(record.stored_path)
        except OSError as exc:
            raise JobError(JobErrorKind.CONFLICT, str(exc)) from None
        if not path.is_file():
            log.error("log request %s: the stored file %s is missing", record.id, path)
            raise JobError(
                JobErrorKind.CONFLICT,
                f"the file of log request {record.id} is missing from the data directory",
            )
        return path


def install_log_retrieval(engine: JobEngine) -> LogService:
    """Register the workflow (before the engine starts, so unfinished fetches resume)."""
    engine.register(FetchLog(engine.deps))
    return LogService(engine)
