"""Live station connections as the registry sees them."""

from __future__ import annotations

from fastapi import APIRouter

from chargewarden.api.auth import Context, Viewer
from chargewarden.api.models import ConnectionOut
from chargewarden.api.problems import problem_responses

router = APIRouter(prefix="/api/connections", tags=["connections"])


@router.get("", response_model=list[ConnectionOut], responses=problem_responses(401, 403),
            summary="List live connections")
async def list_connections(principal: Viewer, ctx: Context) -> list[ConnectionOut]:
    return [ConnectionOut.of(info) for info in ctx.registry.all()]
