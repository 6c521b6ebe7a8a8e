"""Security and diagnostics logs of stations (LOG-01): start a fetch, list, look, download.

A fetch answers 202 at once: GetLog goes out as a durable job (workflows/log_fetch.py) and the
station uploads over the file-transfer listener. The upload link is never shown here: its token
is the station's credential for one upload. Files are for operators only, since a station's
logs can name people, cards and addresses.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from chargewarden.api.auth import Context, Operator, Viewer
from chargewarden.api.context import ApiContext
from chargewarden.api.job_models import MAX_IDENTITY, JobOut
from chargewarden.api.log_models import (
    LogFetchCreate,
    LogFetchStarted,
    LogKind,
    LogRequestDetailOut,
    LogRequestOut,
)
from chargewarden.api.problems import Problem, problem_responses
from chargewarden.api.routes.jobs import job_problem
from chargewarden.api.routes.stations import station_not_found
from chargewarden.store.records import AuditRecord
from chargewarden.store.transfer_records import LogType
from chargewarden.workflows.logs import MAX_REQUEST_ID, LogService
from chargewarden.workflows.service import JobError, JobErrorKind

log = logging.getLogger("chargewarden.api.logs")

router = APIRouter(tags=["logs"])

RequestId = Annotated[int, Path(ge=1, le=MAX_REQUEST_ID, description="Log request id.")]
TYPES: dict[str, LogType] = {"security": LogType.SECURITY, "diagnostics": LogType.DIAGNOSTICS}
OFF = (503, "Log retrieval is off on this server (no file transfer)")


def logs_of(ctx: ApiContext) -> LogService:
    if ctx.logs is None:
        raise Problem(
            503,
            "log retrieval is off: it needs the CSMS's CA (wss_port) and the file-transfer "
            "listener ([files] port) that stations upload to",
            slug="unavailable",
            title="Not available",
        )
    return ctx.logs


def log_problem(exc: JobError) -> Problem:
    if exc.kind is JobErrorKind.NOT_FOUND and str(exc).startswith("no log request"):
        return Problem(404, str(exc), slug="unknown-log-request", title="Unknown log request")
    return job_problem(exc)


@router.post(
    "/api/stations/{identity}/logs",
    status_code=202,
    response_model=LogFetchStarted,
    responses=problem_responses(
        401,
        403,
        (404, "Unknown station"),
        (409, "The station already has a log fetch under way"),
        (422, "Invalid request"),
        OFF,
    ),
    summary="Ask a station for its security or diagnostics log (operator)",
    description=(
        "Starts a fetch-log job (LOG-01): GetLog goes out (when the station is online) with a "
        "single-use HTTPS upload link that expires after `files.upload_ttl_seconds`; the job "
        "ends when the file is stored, the station reports a failure, or "
        "`files.log_wait_seconds` pass. `since`/`until` narrow the entries. One fetch per "
        "station at a time (409), unless `replace: true`. It runs beside a rotation or upgrade."
    ),
)
async def start_fetch(
    identity: Annotated[str, Path(min_length=1, max_length=MAX_IDENTITY)],
    body: LogFetchCreate,
    principal: Operator,
    ctx: Context,
) -> LogFetchStarted:
    service = logs_of(ctx)
    try:
        job = await service.fetch(
            identity,
            TYPES[body.type],
            actor=principal.name,
            since=body.since,
            until=body.until,
            replace=body.replace,
        )
    except JobError as exc:
        raise log_problem(exc) from None
    request_id = int(job.params["request_id"])
    log.info(
        "%s started job %s: fetch the %s log of %s", principal.name, job.id, body.type, identity
    )
    return LogFetchStarted(job=JobOut.of(job), request_id=request_id)


@router.get(
    "/api/logs",
    response_model=list[LogRequestOut],
    responses=problem_responses(401, 403, (404, "Unknown station"), 422),
    summary="Log requests, newest first",
)
async def list_logs(
    principal: Viewer,
    ctx: Context,
    station: Annotated[
        str | None, Query(min_length=1, max_length=MAX_IDENTITY, description="Station identity.")
    ] = None,
    type: Annotated[LogKind | None, Query(description="security or diagnostics.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[LogRequestOut]:
    if station is not None and await ctx.store.stations.get(station) is None:
        raise station_not_found(station)
    records = await ctx.store.log_requests.list(
        station=station,
        log_type=TYPES[type] if type is not None else None,
        limit=limit,
        offset=offset,
    )
    return [LogRequestOut.of(record) for record in records]


@router.get(
    "/api/logs/{request_id}",
    response_model=LogRequestDetailOut,
    responses=problem_responses(401, 403, (404, "Unknown log request"), 422),
    summary="One log request: state, the station's statuses, the stored file's size and hash",
)
async def get_log(request_id: RequestId, principal: Viewer, ctx: Context) -> LogRequestDetailOut:
    record = await ctx.store.log_requests.get(request_id)
    if record is None:
        raise log_problem(JobError(JobErrorKind.NOT_FOUND, f"no log request {request_id}"))
    return LogRequestDetailOut.detail(record)


@router.get(
    "/api/logs/{request_id}/file",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The stored log"},
        **problem_responses(
            401,
            403,
            (404, "Unknown log request"),
            (409, "No file stored for this request (yet)"),
            422,
            OFF,
        ),
    },
    summary="Download the stored log file (operator: logs can hold personal data)",
)
async def get_log_file(request_id: RequestId, principal: Operator, ctx: Context) -> FileResponse:
    service = logs_of(ctx)
    try:
        record = await service.get(request_id)
        path = service.file_of(record)
    except JobError as exc:
        raise log_problem(exc) from None
    await ctx.store.audit.add(
        AuditRecord(
            actor=principal.name,
            action="log.download",
            target=record.station_identity,
            details={"request_id": request_id, "sha256": record.sha256},
        )
    )
    log.info(
        "%s downloaded log request %s of %s", principal.name, request_id, record.station_identity
    )
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=path.name,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )
