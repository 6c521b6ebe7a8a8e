"""Liveness, readiness and Prometheus metrics.

`/healthz` and `/readyz` need no token: orchestrators probe them without one, and they say
nothing but "ok" / "ready" or a short reason. `/metrics` needs a token of any role: what it
shows (fleet size, refusals, jobs) is for operators, and a Prometheus scrape job carries a
bearer token as a matter of course.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from chargewarden.api.auth import Context, Viewer
from chargewarden.api.context import ApiContext
from chargewarden.api.models import Health, Readiness
from chargewarden.api.problems import Problem, problem_responses

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

# A probe must answer quickly; a store that takes longer than this is not ready to serve.
READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", response_model=Health, summary="Liveness probe")
async def healthz() -> Health:
    return Health()


async def _not_ready(ctx: ApiContext) -> str | None:
    """Why the CSMS cannot serve stations now, or None. The reason is for the probe's caller,
    so it names the part, never a path or URL; the details go to the server log."""
    if ctx.listeners_ready is not None and not ctx.listeners_ready():
        return "station listeners are not bound"
    try:
        await asyncio.wait_for(ctx.store.ping(), READY_TIMEOUT_SECONDS)
    except TimeoutError:
        log.warning("readiness: the store did not answer within %s s", READY_TIMEOUT_SECONDS)
        return "the store does not answer in time"
    except Exception as exc:
        log.warning("readiness: the store does not answer: %s", exc)
        return "the store does not answer"
    return None


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready, with a short reason"}},
    summary="Readiness probe: the store answers and the station listeners are bound",
)
async def readyz(ctx: Context) -> Response:
    reason = await _not_ready(ctx)
    if reason is not None:
        body = Readiness(status="unavailable", reason=reason)
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(Readiness(status="ready").model_dump(exclude_none=True))


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"},
        **problem_responses(401, 404),
    },
    summary="Prometheus metrics (any operator token)",
)
async def metrics(principal: Viewer, ctx: Context, request: Request) -> Response:
    if ctx.metrics is None:
        raise Problem(404, "this server collects no metrics")
    # Store-derived gauges are computed here, awaited, because prometheus_client collects
    # synchronously; rendering runs on the loop thread, where the registry is safe to read.
    await ctx.metrics.refresh(ctx.store)
    body, content_type = ctx.metrics.render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
