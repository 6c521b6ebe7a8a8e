"""Signed firmware (FW-01..03): the registered releases and the updates sent to stations.

Releases are registered with `chargewarden firmware add` (the image is a file on the CSMS host;
the API takes no uploads). Starting an update answers 202 with its job at once: the job sends
the request when the station is online, after checking the release again, and follows the
station's status reports. Which update may start is decided by ``FirmwareService`` (shared
with the CLI); this module maps its refusals to problems.

Reading needs only the store, so releases and past updates stay visible on a server whose file
transfer is off; only starting an update answers 503 there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Path, Query

from chargewarden.api.auth import Context, Operator, Viewer
from chargewarden.api.context import ApiContext
from chargewarden.api.firmware_models import (
    FirmwareReleaseDetail,
    FirmwareReleaseOut,
    FirmwareReleasePage,
    FirmwareUpdateCreate,
    FirmwareUpdateOut,
    FirmwareUpdateStarted,
)
from chargewarden.api.job_models import MAX_IDENTITY, MAX_JOB_ID, JobOut
from chargewarden.api.problems import Problem, problem_responses
from chargewarden.api.routes.jobs import job_problem
from chargewarden.api.routes.stations import station_not_found
from chargewarden.firmware.releases import MAX_NAME
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.transfer_records import FirmwareReleaseRecord, FirmwareUpdateRecord
from chargewarden.workflows.firmware_service import FirmwareService
from chargewarden.workflows.service import FleetSelection, JobError

log = logging.getLogger("chargewarden.api.firmware")

router = APIRouter(prefix="/api/firmware", tags=["firmware"])

UpdateId = Annotated[int, Path(ge=1, le=MAX_JOB_ID, description="Update id (the OCPP requestId).")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]


def firmware_of(ctx: ApiContext) -> FirmwareService:
    if ctx.firmware is None:
        raise Problem(
            503,
            "firmware updates are off on this server: they need the CA and the file-transfer "
            "listener ([files] port)",
            slug="unavailable",
            title="Not available",
        )
    return ctx.firmware


def release_not_found(name: str) -> Problem:
    return Problem(
        404,
        f"no firmware release {name!r}; register it with `chargewarden firmware add`",
        slug="unknown-release",
        title="Unknown firmware release",
    )


async def _release(ctx: ApiContext, name: str) -> FirmwareReleaseRecord:
    release = await ctx.store.firmware_releases.by_name(name)
    if release is None:
        raise release_not_found(name)
    return release


async def _with_names(
    ctx: ApiContext, updates: Iterable[FirmwareUpdateRecord]
) -> list[FirmwareUpdateOut]:
    """Each update with its release's name; each release is looked up once."""
    names: dict[int, str | None] = {}
    out = []
    for update in updates:
        if update.release_id not in names:
            release = await ctx.store.firmware_releases.get(update.release_id)
            names[update.release_id] = release.name if release is not None else None
        out.append(FirmwareUpdateOut.of(update, names[update.release_id]))
    return out


# ---------------------------------------------------------------------------------- releases


@router.get(
    "/releases",
    response_model=FirmwareReleasePage,
    responses=problem_responses(401, 403, 422),
    summary="Registered firmware releases, newest first",
)
async def list_releases(
    principal: Viewer, ctx: Context, limit: Limit = 100, offset: Offset = 0
) -> FirmwareReleasePage:
    items = await ctx.store.firmware_releases.list(limit=limit, offset=offset)
    total = await ctx.store.firmware_releases.count()
    return FirmwareReleasePage(
        items=[FirmwareReleaseOut.of(r) for r in items], total=total, limit=limit, offset=offset
    )


@router.get(
    "/releases/{name:path}",
    response_model=FirmwareReleaseDetail,
    responses=problem_responses(401, 403, (404, "Unknown release"), 422),
    summary="One release, with the signature and signing certificate stations are given",
)
async def get_release(
    name: Annotated[str, Path(min_length=1, max_length=MAX_NAME)], principal: Viewer, ctx: Context
) -> FirmwareReleaseDetail:
    return FirmwareReleaseDetail.detail(await _release(ctx, name))


# ----------------------------------------------------------------------------------- updates


@router.post(
    "/updates",
    status_code=202,
    response_model=FirmwareUpdateStarted,
    responses=problem_responses(
        401,
        403,
        (404, "Unknown release or station"),
        (409, "The station already has a job under way, or no station is eligible"),
        (422, "Invalid request, or a fleet without selection and without all: true"),
        (503, "Firmware updates are off on this server"),
    ),
    summary="Update one station's firmware, or a fleet's (operator)",
    description=(
        "Starts an update job (FW-01): when the station is online the release is checked "
        "again (signing certificate valid and not revoked, stored image unchanged) and sent "
        "as 1.6 SignedUpdateFirmware / 2.0.1 UpdateFirmware with its signing certificate, "
        "signature, a per-update HTTPS download URL, `at` as retrieveDateTime and the retry "
        "settings; then the station's status reports are followed until Installed or a "
        "failure (FW-03). `station` updates one station (`update_id` is the OCPP requestId); "
        "otherwise a fleet job starts one update per station chosen by `stations`, `profile` "
        "and `ocpp_version` (all must match), or `all: true` for every station. Stations with "
        "a job under way are left out (`skipped`)."
    ),
)
async def start_update(
    body: FirmwareUpdateCreate, principal: Operator, ctx: Context
) -> FirmwareUpdateStarted:
    service = firmware_of(ctx)
    refusal = body.refusal()
    if refusal is not None:
        raise Problem(422, refusal, slug="invalid-request", title="Invalid request")
    # Checked here so an unknown release is told apart from an unknown station.
    await _release(ctx, body.release)
    at, install_at, retries, interval = body.at, body.install_at, body.retries, body.retry_interval
    try:
        if body.station is not None:
            job, update = await service.update(
                body.station, body.release, actor=principal.name, at=at, install_at=install_at,
                retries=retries, retry_interval=interval,
            )  # fmt: skip
            log.info(
                "%s started job %s: firmware %s on %s (update %s)",
                principal.name, job.id, body.release, body.station, update.id,
            )  # fmt: skip
            return FirmwareUpdateStarted(job=JobOut.of(job), update_id=update.id, skipped=[])
        selection = FleetSelection(
            profile=body.profile,
            version=OcppVersion(body.ocpp_version) if body.ocpp_version else None,
            identities=tuple(body.stations) if body.stations is not None else None,
        )
        job, skipped = await service.fleet(
            selection, body.release, actor=principal.name, at=at, install_at=install_at,
            retries=retries, retry_interval=interval, concurrency=body.concurrency,
        )  # fmt: skip
    except JobError as exc:
        raise job_problem(exc) from None
    log.info(
        "%s started fleet job %s: firmware %s, %d station(s) left out",
        principal.name, job.id, body.release, len(skipped),
    )  # fmt: skip
    return FirmwareUpdateStarted(job=JobOut.of(job), update_id=None, skipped=skipped)


@router.get(
    "/updates",
    response_model=list[FirmwareUpdateOut],
    responses=problem_responses(401, 403, (404, "Unknown station or release"), 422),
    summary="Firmware updates, newest first",
    description="Each with its state, the station's latest status and its status history.",
)
async def list_updates(
    principal: Viewer,
    ctx: Context,
    station: Annotated[
        str | None, Query(min_length=1, max_length=MAX_IDENTITY, description="Station identity.")
    ] = None,
    release: Annotated[
        str | None, Query(min_length=1, max_length=MAX_NAME, description="Release name.")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[FirmwareUpdateOut]:
    if station is not None and await ctx.store.stations.get(station) is None:
        raise station_not_found(station)
    release_id = (await _release(ctx, release)).id if release is not None else None
    updates = await ctx.store.firmware_updates.list(
        station=station, release_id=release_id, limit=limit, offset=offset
    )
    return await _with_names(ctx, updates)


@router.get(
    "/updates/{update_id}",
    response_model=FirmwareUpdateOut,
    responses=problem_responses(401, 403, (404, "Unknown update"), 422),
    summary="One firmware update",
)
async def get_update(update_id: UpdateId, principal: Viewer, ctx: Context) -> FirmwareUpdateOut:
    update = await ctx.store.firmware_updates.get(update_id)
    if update is None:
        raise Problem(
            404, f"no firmware update {update_id}", slug="unknown-update", title="Unknown update"
        )
    [out] = await _with_names(ctx, [update])
    return out
