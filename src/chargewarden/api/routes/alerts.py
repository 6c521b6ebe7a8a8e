"""Operator alerts (certificate refused by a station, delivery given up, signer failures, ...)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from chargewarden.api.auth import Context, Viewer
from chargewarden.api.certificate_models import AlertOut
from chargewarden.api.problems import problem_responses

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


@router.get(
    "",
    response_model=list[AlertOut],
    responses=problem_responses(401, 403, 422),
    summary="Alerts, newest first",
    description=(
        "Every alert is stored before it is logged or sent to the webhook; `delivered_at` and "
        "`delivery_attempts` say how the webhook delivery went."
    ),
)
async def list_alerts(
    principal: Viewer,
    ctx: Context,
    station: Annotated[str | None, Query(max_length=48, description="Station identity.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[AlertOut]:
    alerts = await ctx.store.alerts.list(station_identity=station, limit=limit, offset=offset)
    return [AlertOut.of(alert) for alert in alerts]
