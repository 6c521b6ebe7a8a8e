"""Station records: list, read, register."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Response

from chargewarden.api.auth import Admin, Context, Viewer
from chargewarden.api.models import StationCreate, StationCreated, StationOut
from chargewarden.api.problems import Problem, problem_responses
from chargewarden.rpc.versions import OcppVersion
from chargewarden.stations import NewStation, RegistrationError, register_station
from chargewarden.store.errors import StationExists

router = APIRouter(prefix="/api/stations", tags=["stations"])


def station_not_found(identity: str) -> Problem:
    return Problem(404, f"no station with identity {identity!r}", slug="unknown-station",
                   title="Unknown station")


@router.get("", response_model=list[StationOut], responses=problem_responses(401, 403),
            summary="List stations")
async def list_stations(principal: Viewer, ctx: Context) -> list[StationOut]:
    records = await ctx.store.stations.list()
    return [StationOut.of(r, connected=ctx.registry.get(r.identity) is not None)
            for r in records]


@router.post(
    "",
    status_code=201,
    response_model=StationCreated,
    responses=problem_responses(
        401, 403, (409, "A station with this identity exists"),
        (422, "Invalid request or unusable secret"),
    ),
    summary="Register a station (admin)",
    description=(
        "Registers a station with its OCPP version, security profile and Basic-auth secret "
        "(1.6: `auth_key` as hex; 2.0.1: `password`), or lets ChargeWarden generate one "
        "(`generate_secret`). Secrets are write-only: a generated secret is returned in "
        "`generated_secret` in this response only and can never be read back."
    ),
)
async def create_station(
    body: StationCreate, principal: Admin, ctx: Context, response: Response
) -> StationCreated:
    new = NewStation(
        identity=body.identity,
        ocpp_version=OcppVersion(body.ocpp_version),
        security_profile=body.security_profile,
        auth_key_hex=body.auth_key.get_secret_value() if body.auth_key is not None else None,
        password=body.password.get_secret_value() if body.password is not None else None,
        generate_secret=body.generate_secret,
        serial_number=body.serial_number,
        cpo_name=body.cpo_name,
        strict_password=body.strict_password,
    )
    try:
        record, secret = await register_station(ctx.store, new, actor=principal.name)
    except StationExists:
        raise Problem(409, f"a station with identity {body.identity!r} already exists",
                      slug="station-exists", title="Station exists") from None
    except RegistrationError as exc:
        raise Problem(422, str(exc), slug="invalid-station",
                      title="Station cannot be registered") from None
    response.headers["Location"] = f"/api/stations/{quote(record.identity, safe='')}"
    out = StationOut.of(record, connected=ctx.registry.get(record.identity) is not None)
    return StationCreated(**out.model_dump(), generated_secret=secret)


@router.get("/{identity}", response_model=StationOut,
            responses=problem_responses(401, 403, (404, "Unknown station")),
            summary="Read one station")
async def get_station(identity: str, principal: Viewer, ctx: Context) -> StationOut:
    record = await ctx.store.stations.get(identity)
    if record is None:
        raise station_not_found(identity)
    return StationOut.of(record, connected=ctx.registry.get(identity) is not None)
