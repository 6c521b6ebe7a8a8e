"""Durable jobs: password rotation (PWD-01..03), security-profile upgrades (UPG-01, UPG-02),
fleet jobs over them, and the jobs' audit trails.

Starting a job answers 202 at once: the job runs in the server, through offline stations,
reboots and restarts; follow it with ``GET /api/jobs/{id}``. Which job may start is decided by
``JobService`` alone (shared with the CLI); this module only maps its refusals to problems.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query

from chargewarden.api.auth import Context, Operator, Viewer
from chargewarden.api.context import ApiContext
from chargewarden.api.job_models import (
    MAX_IDENTITY,
    MAX_JOB_ID,
    FleetCreate,
    FleetCreated,
    JobDetailOut,
    JobOut,
    UpgradeCreate,
)
from chargewarden.api.problems import Problem, problem_responses
from chargewarden.api.routes.stations import station_not_found
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.job_records import JobKind, JobState
from chargewarden.workflows.service import FleetSelection, JobError, JobErrorKind, JobService

log = logging.getLogger("chargewarden.api.jobs")

router = APIRouter(tags=["jobs"])

STATION = "/api/stations/{identity}"
JobId = Annotated[int, Path(ge=1, le=MAX_JOB_ID, description="Job id.")]

START_ERRORS = (
    (409, "The station's state forbids it, or it already has a job under way"),
    (422, "Invalid request"),
    (503, "Jobs are not available on this server"),
)


def jobs_of(ctx: ApiContext) -> JobService:
    if ctx.jobs is None:
        raise Problem(503, "jobs are not available", slug="unavailable", title="Not available")
    return ctx.jobs


def job_problem(exc: JobError, *, not_found: str = "unknown-station") -> Problem:
    """The service's refusal as a problem; ``not_found`` names what was missing."""
    if exc.kind is JobErrorKind.NOT_FOUND:
        title = "Unknown job" if not_found == "unknown-job" else "Unknown station"
        return Problem(404, str(exc), slug=not_found, title=title)
    if exc.kind is JobErrorKind.CONFLICT:
        return Problem(409, str(exc), slug="conflict", title="Conflict")
    return Problem(422, str(exc), slug="invalid-request", title="Invalid request")


# ----------------------------------------------------------------------- one station's jobs


@router.post(
    STATION + "/rotate-password",
    status_code=202,
    response_model=JobOut,
    responses=problem_responses(401, 403, (404, "Unknown station"), *START_ERRORS),
    summary="Rotate the station's password (operator)",
    description=(
        "Starts a password-rotation job (PWD-01/02): a new random secret is sent to the station "
        "(1.6 ChangeConfiguration AuthorizationKey, 2.0.1 SetVariables BasicAuthPassword); the "
        "old one stays valid until the station has taken the new one. Profiles 1 and 2 only. "
        "The new secret is never returned or stored. 409 if the station already has a job."
    ),
)
async def rotate_password(identity: str, principal: Operator, ctx: Context) -> JobOut:
    service = jobs_of(ctx)
    try:
        job = await service.rotate(identity, actor=principal.name)
    except JobError as exc:
        raise job_problem(exc) from None
    log.info("%s started job %s: rotate the password of %s", principal.name, job.id, identity)
    return JobOut.of(job)


@router.post(
    STATION + "/upgrade",
    status_code=202,
    response_model=JobOut,
    responses=problem_responses(401, 403, (404, "Unknown station"), *START_ERRORS),
    summary="Raise the station's security profile (operator)",
    description=(
        "Starts a profile-upgrade job to `to` (2 or 3; UPG-01/02), one profile at a time: the "
        "CSMS root is installed (for 2), a station certificate is issued over a CSR (for 3), "
        "the new profile becomes pending and the station is told to reconnect on it. Its "
        "first connection on the new profile commits the upgrade; from then on lower profiles "
        "are refused. Profiles are never lowered (409)."
    ),
)
async def upgrade(identity: str, body: UpgradeCreate, principal: Operator, ctx: Context) -> JobOut:
    service = jobs_of(ctx)
    try:
        job = await service.upgrade(identity, body.to, actor=principal.name, slot=body.slot)
    except JobError as exc:
        raise job_problem(exc) from None
    log.info("%s started job %s: upgrade %s to %s", principal.name, job.id, identity, body.to)
    return JobOut.of(job)


# -------------------------------------------------------------------------------- fleet jobs


@router.post(
    "/api/jobs",
    status_code=202,
    response_model=FleetCreated,
    responses=problem_responses(
        401,
        403,
        (404, "A named station does not exist"),
        (409, "No station is eligible"),
        (422, "Invalid request, or no selection and no all: true"),
        (503, "Jobs are not available on this server"),
    ),
    summary="Rotate or upgrade many stations (operator)",
    description=(
        "Starts a fleet job with one child job per eligible station, at most `concurrency` "
        "stations being changed at once; offline stations wait without taking a slot. Choose "
        "stations with `profile`, `ocpp_version` and/or `stations` (all given criteria must "
        "match); to mean every station, say `all: true` (required when no criterion is given). "
        "Stations that match but cannot take the job (wrong profile, a job under way, ...) are "
        "left out and listed in `skipped` with the reason; 409 if none is left."
    ),
)
async def start_fleet(body: FleetCreate, principal: Operator, ctx: Context) -> FleetCreated:
    service = jobs_of(ctx)
    refusal = body.refusal()
    if refusal is not None:
        raise Problem(422, refusal, slug="invalid-request", title="Invalid request")
    selection = FleetSelection(
        profile=body.profile,
        version=OcppVersion(body.ocpp_version) if body.ocpp_version else None,
        identities=tuple(body.stations) if body.stations is not None else None,
    )
    try:
        job, skipped = await service.fleet(
            JobKind(body.operation),
            selection,
            actor=principal.name,
            to=body.to,
            concurrency=body.concurrency,
        )
    except JobError as exc:
        raise job_problem(exc) from None
    log.info(
        "%s started fleet job %s (%s), %d station(s) left out",
        principal.name,
        job.id,
        body.operation,
        len(skipped),
    )
    return FleetCreated(job=JobOut.of(job), skipped=skipped)


# ------------------------------------------------------------------------- looking, cancelling


@router.get(
    "/api/jobs",
    response_model=list[JobOut],
    responses=problem_responses(
        401, 403, (404, "Unknown station or parent job"), 422, (503, "Jobs are not available")
    ),
    summary="Jobs, newest first",
    description=(
        "Top-level jobs only (single-station jobs and fleet jobs), unless `parent` (the "
        "children of that fleet job) or `station` (every job of that station, fleet children "
        "included) is given."
    ),
)
async def list_jobs(
    principal: Viewer,
    ctx: Context,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    kind: Annotated[JobKind | None, Query(description="Only jobs of this kind.")] = None,
    station: Annotated[
        str | None, Query(min_length=1, max_length=MAX_IDENTITY, description="Station identity.")
    ] = None,
    parent: Annotated[
        int | None, Query(ge=1, le=MAX_JOB_ID, description="Children of this fleet job.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[JobOut]:
    jobs_of(ctx)
    if station is not None and await ctx.store.stations.get(station) is None:
        raise station_not_found(station)
    if parent is not None and await ctx.store.jobs.get(parent) is None:
        raise Problem(404, f"no job {parent}", slug="unknown-job", title="Unknown job")
    records = await ctx.store.jobs.list(
        state=state,
        kind=kind,
        station_identity=station,
        parent_id=parent,
        top_level=parent is None and station is None,
        limit=limit,
        offset=offset,
    )
    return [JobOut.of(record) for record in records]


@router.get(
    "/api/jobs/{job_id}",
    response_model=JobDetailOut,
    responses=problem_responses(401, 403, (404, "Unknown job"), 422, (503, "Not available")),
    summary="One job with its audit trail and, for a fleet job, its progress",
)
async def get_job(job_id: JobId, principal: Viewer, ctx: Context) -> JobDetailOut:
    service = jobs_of(ctx)
    try:
        found = await service.get(job_id)
    except JobError as exc:
        raise job_problem(exc, not_found="unknown-job") from None
    return JobDetailOut.detail(found)


@router.post(
    "/api/jobs/{job_id}/cancel",
    status_code=202,
    response_model=JobOut,
    responses=problem_responses(
        401,
        403,
        (404, "Unknown job"),
        (409, "The job has already finished"),
        422,
        (503, "Not available"),
    ),
    summary="Cancel a job (operator)",
    description=(
        "Asks the job to stop; it does at the end of the step it is in (202, "
        "`cancel_requested: true`). Cancelling undoes what can be undone without locking the "
        "station out: a rotation not yet sent drops the new credential, an upgrade withdraws "
        "the pending profile. Cancelling a fleet job cancels its unfinished children."
    ),
)
async def cancel_job(job_id: JobId, principal: Operator, ctx: Context) -> JobOut:
    service = jobs_of(ctx)
    try:
        job = await service.cancel(job_id, actor=principal.name)
    except JobError as exc:
        raise job_problem(exc, not_found="unknown-job") from None
    log.info("%s asked job %s to cancel", principal.name, job_id)
    return JobOut.of(job)
