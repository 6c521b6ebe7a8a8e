"""Station certificates: CSR requests (CRT-01), the station's certificate store (CRT-04..06)
and renewal candidates (CRT-09).

Every route that talks to a station waits for its answer; what went wrong on the way (offline,
silent, refused, ...) becomes one problem document, see ``command_problem``.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from chargewarden.api.auth import Context, Operator, Viewer
from chargewarden.api.certificate_models import (
    CertificateInstall,
    CertificateRequestCreate,
    CertificateRequestDetail,
    CertificateRequestOut,
    InstalledCertificatesOut,
    RenewalCandidateOut,
    StationStatusOut,
)
from chargewarden.api.context import ApiContext
from chargewarden.api.problems import Problem, problem_responses
from chargewarden.api.routes.stations import station_not_found
from chargewarden.domain.station_certificates import InvalidCertificateFile, StationCertificates
from chargewarden.domain.station_commands import (
    CommandFailed,
    FailureKind,
    RootCertificateKind,
    commands_for,
)
from chargewarden.pki.csr_policy import StationCertificateType
from chargewarden.store.records import (
    AuditRecord,
    CertificateRecord,
    CertificateRequestRecord,
    InstalledCertificatesSnapshot,
    OperatorRole,
    StationRecord,
)

log = logging.getLogger("chargewarden.api.certificates")

router = APIRouter(tags=["certificates"])

STATION = "/api/stations/{identity}"
# Hex, optionally with 0x or with colons/spaces between bytes (as openssl and browsers show it).
_SERIAL = re.compile(r"^(0x)?[0-9A-Fa-f]{1,80}$")

# status, slug, title per failure kind
_FAILURES: dict[FailureKind, tuple[int, str, str]] = {
    FailureKind.OFFLINE: (409, "station-offline", "Station offline"),
    FailureKind.TIMEOUT: (504, "station-timeout", "Station did not answer"),
    FailureKind.CALL_ERROR: (502, "station-call-error", "Station answered with an error"),
    FailureKind.INVALID_RESPONSE: (502, "invalid-response", "Invalid station response"),
    FailureKind.UNSUPPORTED: (422, "unsupported", "Not supported by the station's OCPP version"),
    FailureKind.REFUSED: (409, "station-refused", "Station refused"),
    FailureKind.NOT_FOUND: (404, "certificate-not-found", "Certificate not found"),
    FailureKind.CONFLICT: (409, "conflict", "Conflict"),
}

STATION_ERRORS = (
    (409, "Station offline, it refused, or our own rules forbid it"),
    (422, "Not possible with the station's OCPP version"),
    (502, "The station answered with a CALLERROR or an invalid response"),
    (504, "The station did not answer in time"),
)


def command_problem(exc: CommandFailed) -> Problem:
    status, slug, title = _FAILURES.get(exc.kind, (502, "station-error", "Station error"))
    return Problem(status, str(exc), slug=slug, title=title)


def signing_unavailable() -> Problem:
    return Problem(
        503,
        "certificate signing needs the CSMS CA (wss enabled)",
        slug="no-ca",
        title="Certificate signing unavailable",
    )


async def known_station(ctx: ApiContext, identity: str) -> StationRecord:
    station = await ctx.store.stations.get(identity)
    if station is None:
        raise station_not_found(identity)
    return station


def station_certificates(ctx: ApiContext) -> StationCertificates:
    if ctx.station_certificates is None:
        raise Problem(
            503,
            "station certificate commands are not available on this server",
            slug="unavailable",
            title="Not available",
        )
    return ctx.station_certificates


async def _certificates_of(
    ctx: ApiContext, requests: list[CertificateRequestRecord]
) -> dict[int, CertificateRecord | None]:
    found: dict[int, CertificateRecord | None] = {}
    for request in requests:
        if request.certificate_id is not None and request.certificate_id not in found:
            found[request.certificate_id] = await ctx.store.certificates.get_by_id(
                request.certificate_id
            )
    return found


def _kinds(
    station: StationRecord, snapshot: InstalledCertificatesSnapshot
) -> dict[str, str | None]:
    commands = commands_for(station.ocpp_version)
    kinds: dict[str, str | None] = {}
    for entry in snapshot.entries:
        kind = commands.kind_of(entry.certificate_type)
        kinds[entry.certificate_type] = kind.value if kind is not None else None
    return kinds


# ------------------------------------------------------------------------- certificate requests


@router.get(
    STATION + "/certificate-requests",
    response_model=list[CertificateRequestOut],
    responses=problem_responses(401, 403, (404, "Unknown station"), 422),
    summary="The station's certificate requests, newest first",
)
async def list_certificate_requests(
    identity: str,
    principal: Viewer,
    ctx: Context,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[CertificateRequestOut]:
    await known_station(ctx, identity)
    requests = await ctx.store.certificate_requests.list(
        station_identity=identity, limit=limit, offset=offset
    )
    certificates = await _certificates_of(ctx, requests)
    return [
        CertificateRequestOut.of(
            r, certificates.get(r.certificate_id) if r.certificate_id is not None else None
        )
        for r in requests
    ]


@router.post(
    STATION + "/certificate-requests",
    status_code=202,
    response_model=CertificateRequestOut,
    responses=problem_responses(
        401,
        403,
        (404, "Unknown station"),
        *STATION_ERRORS,
        (503, "The CSMS runs without its CA"),
    ),
    summary="Ask the station for a CSR (operator)",
    description=(
        "Triggers the station to send a CSR (OCPP 1.6: ExtendedTriggerMessage "
        "SignChargePointCertificate; 2.0.1: TriggerMessage SignChargingStationCertificate or "
        "SignV2GCertificate). 202: the station accepted the trigger; the CSR, its checks, the "
        "signing and CertificateSigned follow asynchronously: follow the request with "
        "`GET /api/certificate-requests/{id}`. If a request of that type is already under way "
        "for the station, that one is returned instead of starting a second."
    ),
)
async def create_certificate_request(
    identity: str, body: CertificateRequestCreate, principal: Operator, ctx: Context
) -> CertificateRequestOut:
    await known_station(ctx, identity)
    if ctx.signing is None:
        raise signing_unavailable()
    if body.replaces_certificate_id is not None:
        replaced = await ctx.store.certificates.get_by_id(body.replaces_certificate_id)
        if replaced is None or replaced.station_identity != identity:
            raise Problem(
                422,
                f"certificate {body.replaces_certificate_id} is not a certificate of station "
                f"{identity!r}",
                slug="invalid-request",
                title="Invalid request",
            )
    # Durable before the wire: the audit entry precedes the trigger.
    await ctx.store.audit.add(
        AuditRecord(
            actor=principal.name,
            action="station.certificate.request",
            target=identity,
            details={
                "certificate_type": body.certificate_type,
                "replaces_certificate_id": body.replaces_certificate_id,
            },
        )
    )
    try:
        record = await ctx.signing.request(
            identity,
            StationCertificateType(body.certificate_type),
            actor=principal.name,
            replaces_certificate_id=body.replaces_certificate_id,
        )
    except CommandFailed as exc:
        log.info("%s -> %s certificate request: %s", principal.name, identity, exc)
        raise command_problem(exc) from None
    certificates = await _certificates_of(ctx, [record])
    return CertificateRequestOut.of(
        record, certificates.get(record.certificate_id) if record.certificate_id else None
    )


@router.get(
    "/api/certificate-requests/{request_id}",
    response_model=CertificateRequestDetail,
    responses=problem_responses(401, 403, (404, "Unknown request")),
    summary="One certificate request, with the issued chain",
)
async def get_certificate_request(
    request_id: int, principal: Viewer, ctx: Context
) -> CertificateRequestDetail:
    record = await ctx.store.certificate_requests.get(request_id)
    if record is None:
        raise Problem(
            404,
            f"no certificate request {request_id}",
            slug="unknown-request",
            title="Unknown certificate request",
        )
    certificates = await _certificates_of(ctx, [record])
    return CertificateRequestDetail.detail(
        record, certificates.get(record.certificate_id) if record.certificate_id else None
    )


# ------------------------------------------------------------------------ installed certificates


@router.get(
    STATION + "/installed-certificates",
    response_model=InstalledCertificatesOut,
    responses=problem_responses(401, 403, (404, "Unknown station, or no list stored yet")),
    summary="The station's installed certificates as last reported",
    description=(
        "The latest stored GetInstalledCertificateIds answer; it may be old (see `taken_at`). "
        "`POST .../installed-certificates/refresh` asks the station now."
    ),
)
async def get_installed_certificates(
    identity: str, principal: Viewer, ctx: Context
) -> InstalledCertificatesOut:
    station = await known_station(ctx, identity)
    snapshot = await ctx.store.installed_certificates.latest(identity)
    if snapshot is None:
        raise Problem(
            404,
            f"no installed-certificate list of station {identity!r} is stored yet; "
            "refresh it first",
            slug="no-snapshot",
            title="No list stored",
        )
    return InstalledCertificatesOut.of(snapshot, _kinds(station, snapshot))


@router.post(
    STATION + "/installed-certificates/refresh",
    response_model=InstalledCertificatesOut,
    responses=problem_responses(401, 403, (404, "Unknown station"), *STATION_ERRORS),
    summary="Ask the station for its installed certificates now (operator)",
)
async def refresh_installed_certificates(
    identity: str, principal: Operator, ctx: Context
) -> InstalledCertificatesOut:
    station = await known_station(ctx, identity)
    service = station_certificates(ctx)
    try:
        snapshot = await service.installed(identity)
    except CommandFailed as exc:
        log.info("%s -> %s installed certificates: %s", principal.name, identity, exc)
        raise command_problem(exc) from None
    return InstalledCertificatesOut.of(snapshot, _kinds(station, snapshot))


@router.post(
    STATION + "/installed-certificates",
    response_model=StationStatusOut,
    responses=problem_responses(
        401,
        403,
        (404, "Unknown station"),
        (409, "Station offline or refused"),
        (422, "Not one CA certificate, no built-in root of that kind, or not supported"),
        (502, "The station answered with a CALLERROR or an invalid response"),
        (504, "The station did not answer in time"),
    ),
    summary="Install a root certificate on the station (operator)",
    description=(
        "InstallCertificate. `pem` must hold exactly one CA certificate (≤ 5500 characters). "
        "Without `pem` the CSMS's own root of that kind is installed (`csms-root`, "
        "`manufacturer-root`). Returns the station's status; the request is in the audit log."
    ),
)
async def install_certificate(
    identity: str, body: CertificateInstall, principal: Operator, ctx: Context
) -> StationStatusOut:
    await known_station(ctx, identity)
    service = station_certificates(ctx)
    pem = body.pem
    if pem is None:
        builtin = ctx.builtin_roots(body.kind) if ctx.builtin_roots is not None else None
        if builtin is None:
            raise Problem(
                422,
                f"this CSMS has no built-in {body.kind} certificate; send it as pem",
                slug="no-builtin-root",
                title="No built-in root",
            )
        pem = builtin.decode("ascii")
    try:
        status = await service.install(
            identity, RootCertificateKind(body.kind), pem, actor=principal.name
        )
    except InvalidCertificateFile as exc:
        raise Problem(
            422, str(exc), slug="invalid-certificate", title="Invalid certificate"
        ) from None
    except CommandFailed as exc:
        log.info("%s -> %s install %s: %s", principal.name, identity, body.kind, exc)
        raise command_problem(exc) from None
    return StationStatusOut(status=status)


@router.delete(
    STATION + "/installed-certificates/{serial}",
    response_model=StationStatusOut,
    responses=problem_responses(
        401,
        403,
        (404, "Unknown station, or the station reports no certificate with this serial"),
        (409, "Station offline, the last CSMS root (use force), or ambiguous serial"),
        (422, "Not a serial number"),
        (502, "The station answered with a CALLERROR or an invalid response"),
        (504, "The station did not answer in time"),
    ),
    summary="Delete a certificate from the station (operator; force: admin)",
    description=(
        "DeleteCertificate, using the hash data of a fresh GetInstalledCertificateIds answer. "
        "Deleting the station's last CSMS root is refused (409): the station could no longer "
        "verify this CSMS. `force=true` does it anyway and needs the admin role."
    ),
)
async def delete_certificate(
    identity: str,
    serial: str,
    principal: Operator,
    ctx: Context,
    request: Request,
    force: Annotated[bool, Query(description="Allow deleting the last CSMS root.")] = False,
) -> StationStatusOut:
    if force and not principal.has(OperatorRole.ADMIN):
        log.warning(
            "API access denied: operator %s (role %s) needs role admin for a forced delete on %r",
            principal.name,
            principal.role,
            request.url.path,
        )
        raise Problem(403, f"force needs the admin role; you are {principal.role}")
    compact = serial.replace(":", "").replace(" ", "")
    if not _SERIAL.match(compact):
        raise Problem(
            422,
            "serial must be hexadecimal (colons between bytes allowed)",
            slug="invalid-request",
            title="Invalid request",
        )
    await known_station(ctx, identity)
    service = station_certificates(ctx)
    try:
        status = await service.delete(identity, compact, force=force, actor=principal.name)
    except CommandFailed as exc:
        log.info("%s -> %s delete %s: %s", principal.name, identity, compact, exc)
        raise command_problem(exc) from None
    return StationStatusOut(status=status)


# ----------------------------------------------------------------------------------- renewal


@router.get(
    "/api/certificates/renewal-candidates",
    response_model=list[RenewalCandidateOut],
    responses=problem_responses(
        401, 403, (404, "Unknown station"), 422, (503, "The CSMS runs without its CA")
    ),
    summary="Station certificates due for renewal",
    description=(
        "Per station and CA, the newest unrevoked certificate issued by this CSMS that expires "
        "within `within_days`, unless a renewal of it is already under way."
    ),
)
async def renewal_candidates(
    principal: Viewer,
    ctx: Context,
    within_days: Annotated[int, Query(ge=0, le=36500)] = 30,
    station: Annotated[str | None, Query(max_length=48, description="Station identity.")] = None,
) -> list[RenewalCandidateOut]:
    if ctx.renewal is None:
        raise signing_unavailable()
    if station is not None:
        await known_station(ctx, station)
    due = await ctx.renewal.due(timedelta(days=within_days), station=station)
    return [RenewalCandidateOut.of(record) for record in due]
