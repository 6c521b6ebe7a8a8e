"""CSMS root rollover (CRT-08): its status, and installing the new root on stations (admin).

``chargewarden ca rollover prepare`` and ``switch`` work on the CA files offline; the install
step needs the stations' live connections, so it runs here. See pki/rollover.py and
domain/root_rollover.py.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from chargewarden.api.auth import Admin, Context
from chargewarden.api.context import ApiContext
from chargewarden.api.problems import Problem, problem_responses
from chargewarden.config import Settings
from chargewarden.domain.root_rollover import (
    MAX_CONCURRENCY,
    RolloverBusy,
    RootRollover,
    StationOutcome,
)
from chargewarden.pki import PkiError
from chargewarden.pki.rollover import load_prepared, record_install, rollover_status
from chargewarden.stations import MAX_IDENTITY_CHARS

log = logging.getLogger("chargewarden.api.rollover")

router = APIRouter(prefix="/api/ca/rollover", tags=["ca"])

MAX_STATIONS = 10_000


class CertificateOut(BaseModel):
    subject: str
    issuer: str
    serial: str = Field(description="Hexadecimal, lower case.")
    sha256: str = Field(description="SHA-256 fingerprint of the DER certificate, hex.")
    not_before: datetime
    not_after: datetime


class StationOutcomeOut(BaseModel):
    identity: str
    outcome: str = Field(
        description="installed, already-installed, refused (see status), offline, or error "
        "(see detail)."
    )
    additional_root_check: bool | None = Field(
        None, description="Whether the station checks AdditionalRootCertificateCheck."
    )
    certificate: str | None = Field(
        None,
        description="What the station was given: `cross` (the new root signed by the old one) "
        "or `self-signed` (the new root).",
    )
    status: str | None = Field(None, description="The station's InstallCertificate status.")
    detail: str | None = None
    at: datetime | None = Field(None, description="When (in the install log only).")


class InstallSummaryOut(BaseModel):
    runs: int
    last_run: datetime | None
    counts: dict[str, int] = Field(description="Stations per outcome (the best each had).")
    installed: int = Field(description="Stations that have the new root.")
    not_installed: list[StationOutcomeOut]


class LastSwitchOut(BaseModel):
    archive: str
    finished_at: datetime
    retired_root: CertificateOut | None


class RolloverStatusOut(BaseModel):
    state: str = Field(description="idle, prepared, or switching (a switch is under way).")
    prepared: bool
    switched: bool = Field(description="The last rollover is complete; none is prepared since.")
    current_root: CertificateOut | None
    new_root: CertificateOut | None
    cross_certificate: CertificateOut | None
    install: InstallSummaryOut | None
    switch_started_at: datetime | None
    last_switch: LastSwitchOut | None
    problems: list[str]


class RolloverInstall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stations: list[Annotated[str, Field(min_length=1, max_length=MAX_IDENTITY_CHARS)]] | None = (
        Field(
            None,
            max_length=MAX_STATIONS,
            description="Station identities; default: every station connected now.",
        )
    )
    concurrency: int = Field(
        10, ge=1, le=MAX_CONCURRENCY, description="Stations handled at the same time."
    )


class RolloverInstallOut(BaseModel):
    new_root_sha256: str
    outcomes: list[StationOutcomeOut]
    counts: dict[str, int]
    note: str | None = Field(None, description="Anything the operator should know.")


def _unavailable() -> Problem:
    return Problem(
        503,
        "the root rollover needs the CSMS CA (wss enabled)",
        slug="no-ca",
        title="Root rollover unavailable",
    )


def _settings(ctx: ApiContext) -> Settings:
    if ctx.settings is None or ctx.rollover is None:
        raise _unavailable()
    return ctx.settings


def _rollover(ctx: ApiContext) -> RootRollover:
    if ctx.rollover is None:
        raise _unavailable()
    return ctx.rollover


@router.get(
    "",
    response_model=RolloverStatusOut,
    responses=problem_responses(401, 403, (503, "The CSMS runs without its CA")),
    summary="Where the CSMS root rollover stands (admin)",
)
async def status(principal: Admin, ctx: Context) -> RolloverStatusOut:
    settings = _settings(ctx)
    found = await asyncio.to_thread(rollover_status, settings)
    return RolloverStatusOut.model_validate(found.as_dict())


@router.post(
    "/install",
    response_model=RolloverInstallOut,
    responses=problem_responses(
        401,
        403,
        (409, "No rollover is prepared, a switch is under way, or an install is running"),
        422,
        (503, "The CSMS runs without its CA"),
    ),
    summary="Install the new CSMS root on stations (admin)",
    description=(
        "For each station (default: every connected one): asks whether it checks "
        "AdditionalRootCertificateCheck (1.6 GetConfiguration; 2.0.1 GetVariables "
        "SecurityCtrlr), and installs, as its CSMS root, the cross certificate (the new root "
        "signed by the old one) if it does, else the self-signed new root. A station that lists "
        "either already is left alone. One outcome per station; each is in the audit log "
        "(`ca.rollover.install`) and in the rollover's install log, which `ca rollover switch` "
        "checks. Stations are not refused for being offline: they are reported as such."
    ),
)
async def install(body: RolloverInstall, principal: Admin, ctx: Context) -> RolloverInstallOut:
    settings = _settings(ctx)
    rollover = _rollover(ctx)
    found = await asyncio.to_thread(rollover_status, settings)
    if found.state == "switching":
        raise Problem(
            409,
            "a switch to the new root is under way; finish it with 'ca rollover switch'",
            slug="rollover-switching",
            title="Switch under way",
        )
    try:
        prepared = await asyncio.to_thread(load_prepared, settings)
    except PkiError as exc:
        raise Problem(409, str(exc), slug="rollover-not-prepared", title="No rollover") from None
    identities = (
        body.stations
        if body.stations is not None
        else [info.identity for info in ctx.registry.all()]
    )
    try:
        outcomes = await rollover.install(
            identities,
            prepared.new_root_pem,
            prepared.cross_pem,
            body.concurrency,
            actor=principal.name,
        )
    except RolloverBusy as exc:
        raise Problem(409, str(exc), slug="rollover-busy", title="Install running") from None
    note = None
    if not outcomes:
        note = "no station to install on (none given, or none connected)"
        return RolloverInstallOut(
            new_root_sha256=prepared.new_root_sha256, outcomes=[], counts={}, note=note
        )
    try:
        await asyncio.to_thread(
            record_install,
            settings,
            [o.as_dict() for o in outcomes],
            actor=principal.name,
            now=datetime.now(UTC),
        )
    except (PkiError, OSError) as exc:
        log.warning("root rollover: cannot record the install outcomes: %s", exc)
        note = (
            "the outcomes could not be written to the rollover's install log "
            f"({exc}); 'ca rollover switch' will need --force"
        )
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.outcome.value] = counts.get(outcome.outcome.value, 0) + 1
    log.info(
        "root rollover: %s installed the new root on %d station(s): %s",
        principal.name,
        len(outcomes),
        counts,
    )
    return RolloverInstallOut(
        new_root_sha256=prepared.new_root_sha256,
        outcomes=[_out(o) for o in outcomes],
        counts=dict(sorted(counts.items())),
        note=note,
    )


def _out(outcome: StationOutcome) -> StationOutcomeOut:
    data: dict[str, Any] = outcome.as_dict()
    return StationOutcomeOut.model_validate(data)
