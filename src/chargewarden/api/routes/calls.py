"""Send an OCPP CALL to a connected station and return its answer."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from chargewarden.api.auth import Context, Operator
from chargewarden.api.models import CallErrorOut, CallRequest, CallResultOut
from chargewarden.api.problems import Problem, problem_responses
from chargewarden.api.routes.stations import station_not_found
from chargewarden.rpc.errors import RpcError
from chargewarden.rpc.schemas import schema_registry
from chargewarden.rpc.session import CallErrorReceived, CallTimeout, ConnectionGone, InvalidResponse
from chargewarden.store.records import AuditRecord

log = logging.getLogger("chargewarden.api.calls")

router = APIRouter(prefix="/api/stations", tags=["calls"])


@router.post(
    "/{identity}/call",
    response_model=CallResultOut | CallErrorOut,
    responses=problem_responses(
        401, 403,
        (404, "Unknown station"),
        (409, "Station offline, or it disconnected before answering"),
        (422, "Unknown action for the station's OCPP version, or invalid payload"),
        (502, "The station's answer is not a valid response"),
        (504, "The station did not answer in time"),
    ),
    summary="Send an OCPP call to a station (operator)",
    description=(
        "Validates the payload against the official request schema of the station's OCPP "
        "version, sends it as a CALL and returns the station's CALLRESULT payload "
        "(`result: CallResult`) or its CALLERROR (`result: CallError`). The call is recorded in "
        "the audit log with the action name only; payloads are never stored."
    ),
)
async def call_station(
    identity: str, body: CallRequest, principal: Operator, ctx: Context
) -> CallResultOut | CallErrorOut:
    station = await ctx.store.stations.get(identity)
    if station is None:
        raise station_not_found(identity)
    link = ctx.registry.get(identity)
    # The live connection's version is what goes on the wire; admission keeps it equal to the
    # record's, which is what an offline station is checked against.
    version = link.info.ocpp_version if link is not None else station.ocpp_version
    schemas = schema_registry(version)
    action = body.action
    if not schemas.is_known(action):
        raise Problem(422, f"{action!r} is not an OCPP {version} action",
                      slug="unknown-action", title="Unknown action")
    try:
        schemas.validate_request(action, body.payload)
    except RpcError as exc:
        # The schema error's description names the field and the rule, not the value.
        raise Problem(422, f"payload is not a valid {action} request: {exc.description}",
                      slug="invalid-payload", title="Invalid payload") from None
    if link is None:
        raise Problem(409, f"station {identity!r} is offline", slug="station-offline",
                      title="Station offline")

    # Durable before the wire: the audit entry is written before the CALL goes out. The payload
    # is never recorded (it may carry a secret such as an AuthorizationKey).
    await ctx.store.audit.add(AuditRecord(
        actor=principal.name, action="station.call", target=identity, details={"action": action}))
    timeout = body.timeout if body.timeout is not None else ctx.call_timeout
    try:
        payload = await link.call(action, body.payload, timeout=timeout)
    except CallTimeout:
        log.info("%s -> %s %s: no answer within %gs", principal.name, identity, action, timeout)
        raise Problem(504, f"station {identity!r} did not answer {action} within {timeout:g} s",
                      slug="station-timeout", title="Station did not answer") from None
    except ConnectionGone:
        log.info("%s -> %s %s: connection gone", principal.name, identity, action)
        raise Problem(409, f"station {identity!r} disconnected before answering {action}",
                      slug="station-offline", title="Station offline") from None
    except InvalidResponse as exc:
        # Only the schema description is logged, never the station's values.
        log.warning("%s -> %s %s: invalid response: %s", principal.name, identity, action,
                    exc.error.description)
        raise Problem(502, f"station {identity!r} sent an invalid {action} response",
                      slug="invalid-response", title="Invalid station response") from None
    except CallErrorReceived as exc:
        log.info("%s -> %s %s: CallError %s", principal.name, identity, action, exc.code)
        return CallErrorOut(error_code=exc.code, error_description=exc.description,
                            error_details=exc.details)
    log.info("%s -> %s %s: CallResult", principal.name, identity, action)
    return CallResultOut(payload=payload)
