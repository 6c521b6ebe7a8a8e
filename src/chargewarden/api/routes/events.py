"""Security events (stations' SecurityEventNotifications and the CSMS's own)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from chargewarden.api.auth import Context, Viewer
from chargewarden.api.models import SecurityEventOut, SecurityEventPage
from chargewarden.api.problems import problem_responses
from chargewarden.store.records import EventSource

router = APIRouter(prefix="/api/security-events", tags=["security events"])


@router.get("", response_model=SecurityEventPage, responses=problem_responses(401, 403, 422),
            summary="List security events, newest first")
async def list_security_events(
    principal: Viewer,
    ctx: Context,
    station: Annotated[str | None, Query(max_length=48, description="Station identity.")] = None,
    critical: Annotated[bool | None, Query(description="Only (non-)critical events.")] = None,
    source: Annotated[EventSource | None, Query(description="Who raised the event.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> SecurityEventPage:
    items = await ctx.store.events.list(
        station=station, critical=critical, source=source, limit=limit, offset=offset)
    total = await ctx.store.events.count(station=station, critical=critical, source=source)
    return SecurityEventPage(items=[SecurityEventOut.of(e) for e in items], total=total,
                             limit=limit, offset=offset)
