"""Security events (stations' SecurityEventNotifications and the CSMS's own)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from chargewarden.api.auth import Context, Viewer
from chargewarden.api.models import SecurityEventOut, SecurityEventPage
from chargewarden.api.problems import Problem, problem_responses
from chargewarden.store.records import EventSource

router = APIRouter(prefix="/api/security-events", tags=["security events"])

# Aware only: a time without an offset would be a guess at the caller's zone (422 instead).
TIME_DOC = "ISO 8601 with an offset, e.g. 2025-01-31T12:00:00Z; compared with received_at."


@router.get("", response_model=SecurityEventPage, responses=problem_responses(401, 403, 422),
            summary="List security events, newest first")
async def list_security_events(
    principal: Viewer,
    ctx: Context,
    station: Annotated[str | None, Query(max_length=48, description="Station identity.")] = None,
    critical: Annotated[bool | None, Query(description="Only (non-)critical events.")] = None,
    source: Annotated[EventSource | None, Query(description="Who raised the event.")] = None,
    type: Annotated[  # the field is called type in every event
        str | None,
        Query(min_length=1, max_length=50, description="Event type, e.g. FirmwareUpdated."),
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description=f"Received at or after. {TIME_DOC}")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description=f"Received before. {TIME_DOC}")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> SecurityEventPage:
    if since is not None and until is not None and since >= until:
        raise Problem(422, "since must be before until", slug="invalid-request",
                      title="Invalid request")
    filters: dict[str, Any] = {"station": station, "critical": critical, "source": source,
                               "type": type, "since": since, "until": until}
    items = await ctx.store.events.list(**filters, limit=limit, offset=offset)
    total = await ctx.store.events.count(**filters)
    return SecurityEventPage(items=[SecurityEventOut.of(e) for e in items], total=total,
                             limit=limit, offset=offset)
