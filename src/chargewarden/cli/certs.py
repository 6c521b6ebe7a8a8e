"""`chargewarden cert ...` (list, revoke, renew) and `chargewarden station cert` (factory
provisioning)."""

from __future__ import annotations

import contextlib
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from chargewarden.cli.api_client import ApiClient, ApiUrlOption, api_client, segment
from chargewarden.cli.ca import CLI_ACTOR, guarded, open_pki
from chargewarden.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    fail,
    print_table,
    quiet_logging,
    run,
    settings_from,
    with_store,
)
from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.crl import REASONS, write_crls
from chargewarden.pki.lifecycle import ensure_pki
from chargewarden.pki.provision import ProvisionedStation, provision_station
from chargewarden.pki.recording import record_hierarchy
from chargewarden.store import CertificateNotFound, Store
from chargewarden.store.records import AuditRecord, CertificateRecord, CertificateRole

cert_app = typer.Typer(
    help="Certificates issued or imported: list, revoke and renew.", no_args_is_help=True
)

Reason = StrEnum("Reason", {name.replace("-", "_"): name for name in REASONS})  # type: ignore[misc]


def _expires(record: CertificateRecord, now: datetime) -> str:
    left = record.not_after - now
    return "expired" if left.total_seconds() < 0 else f"{left.days}"


@cert_app.command("list")
def list_certificates(
    station: Annotated[str | None, typer.Option("--station", help="Only this station's")] = None,
    expiring: Annotated[
        int | None,
        typer.Option(
            "--expiring", min=0, help="Only those expiring within DAYS (expired included)"
        ),
    ] = None,
    role: Annotated[CertificateRole | None, typer.Option("--role", help="Only this role")] = None,
    active: Annotated[bool, typer.Option("--active", help="Leave out revoked ones")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Certificates on record, soonest expiry first."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)
    within = timedelta(days=expiring) if expiring is not None else None
    records = run(
        with_store(
            settings,
            lambda store: store.certificates.list(
                station=station, role=role, expiring_within=within, include_revoked=not active
            ),
        )
    )
    if not records:
        typer.echo("no certificates match")
        return
    now = datetime.now(UTC)
    print_table(
        ["serial", "role", "issuer", "CN", "O", "station", "not after (UTC)", "days", "revoked"],
        [
            [
                r.serial,
                r.role,
                r.issuer_ca,
                r.subject_cn,
                r.subject_o,
                r.station_identity or "-",
                f"{r.not_after:%Y-%m-%d %H:%M}",
                _expires(r, now),
                f"{r.revoked_at:%Y-%m-%d %H:%M} {r.revocation_reason}" if r.revoked_at else "",
            ]
            for r in records
        ],
    )


@dataclass
class _Revocation:
    revoked: list[CertificateRecord] = field(default_factory=list)
    already: list[CertificateRecord] = field(default_factory=list)
    renewed_servers: list[str] = field(default_factory=list)
    crl_problem: str | None = None


async def _after_revocation(
    store: Store, settings: Settings, outcome: _Revocation, now: datetime
) -> None:
    """Replace a revoked server certificate of ours at once, and regenerate the CRLs."""
    try:
        pki = open_pki(settings)
        serials = {r.serial for r in outcome.revoked}
        for kind, entry in list(pki.servers.items()):
            if format(entry.certificate.serial_number, "X") in serials:
                pki.issue_server(kind, now)
                outcome.renewed_servers.append(kind)
        if outcome.renewed_servers:
            await record_hierarchy(store, pki)
        await write_crls(pki, store, now)
    except PkiError as exc:
        outcome.crl_problem = str(exc)


@cert_app.command("revoke")
def revoke(
    reason: Annotated[Reason, typer.Option("--reason", help="RFC 5280 revocation reason")],
    serial: Annotated[str | None, typer.Argument(help="Serial number (hex)")] = None,
    station: Annotated[
        str | None,
        typer.Option("--station", help="Revoke every unrevoked certificate of this station"),
    ] = None,
    issuer: Annotated[
        str | None,
        typer.Option("--issuer", help="Issuer (e.g. cpo-station-ca), when a serial is ambiguous"),
    ] = None,
    comment: Annotated[str | None, typer.Option("--comment", help="Note for the audit log")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a certificate, or all of a station's: effective at once, CRLs regenerated."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)
    if (serial is None) == (station is None):
        fail("give either a SERIAL or --station ID (not both)")
    code = str(reason.value)

    async def action(store: Store) -> _Revocation:
        now = datetime.now(UTC)
        outcome = _Revocation()
        if station is not None:
            outcome.revoked = await store.certificates.revoke_station(station, code, now)
        else:
            assert serial is not None
            current = await store.certificates.get(serial, issuer_ca=issuer)
            if current is None:
                raise CliError(f"no certificate with serial {serial} on record")
            if current.role is CertificateRole.ROOT:
                raise CliError(
                    "a root certificate cannot be revoked (it is self-signed); "
                    "replace the CA instead"
                )
            try:
                record = await store.certificates.revoke(serial, code, now, issuer_ca=issuer)
            except CertificateNotFound as exc:
                raise CliError(str(exc)) from None
            (outcome.already if current.revoked else outcome.revoked).append(record)
        for record in outcome.revoked:
            await store.audit.add(
                AuditRecord(
                    actor=CLI_ACTOR,
                    action="cert.revoke",
                    target=record.station_identity or record.serial,
                    details={
                        "serial": record.serial,
                        "issuer_ca": record.issuer_ca,
                        "role": str(record.role),
                        "reason": code,
                        **({"comment": comment} if comment else {}),
                    },
                )
            )
        if outcome.revoked:
            await _after_revocation(store, settings, outcome, now)
        return outcome

    outcome = run(with_store(settings, lambda store: guarded(action(store))))
    for r in outcome.revoked:
        typer.echo(
            f"revoked {r.serial} ({r.role}, CN={r.subject_cn}, station "
            f"{r.station_identity or '-'}): {code}"
        )
    for r in outcome.already:
        typer.echo(
            f"{r.serial} was already revoked on {r.revoked_at:%Y-%m-%d %H:%M} UTC "
            f"({r.revocation_reason})"
        )
    if not outcome.revoked and not outcome.already:
        typer.echo(f"nothing revoked: station {station} has no unrevoked certificates")
    for kind in outcome.renewed_servers:
        typer.echo(f"issued a new {kind} server certificate to replace the revoked one")
    if outcome.crl_problem:
        fail(
            f"revoked in the store (effective now), but the CRLs were not regenerated: "
            f"{outcome.crl_problem}"
        )


RENEWAL_CANDIDATES = "/api/certificates/renewal-candidates"
# "Anything this station has": the operator named the station, so renew even if not yet due.
ANY_EXPIRY_DAYS = 36500


@dataclass
class _RenewalResult:
    candidate: dict[str, Any]
    ok: bool
    message: str


def _renew_one(api: ApiClient, candidate: dict[str, Any]) -> _RenewalResult:
    try:
        request = api.post(
            f"/api/stations/{segment(str(candidate['station']))}/certificate-requests",
            {
                "certificate_type": candidate.get("certificate_type")
                or "ChargingStationCertificate",
                "replaces_certificate_id": candidate["id"],
            },
        )
    except CliError as exc:
        return _RenewalResult(candidate, False, f"failed: {exc}")
    return _RenewalResult(candidate, True, f"CSR requested (request {request.get('id')})")


def _renew_all(
    api: ApiClient, candidates: list[dict[str, Any]], concurrency: int
) -> list[_RenewalResult]:
    """One certificate request per candidate, at most ``concurrency`` waiting at once."""
    results: list[_RenewalResult] = []
    progress: Any = (
        typer.progressbar(length=len(candidates), label="requesting CSRs", file=sys.stderr)
        if sys.stderr.isatty()
        else contextlib.nullcontext(None)
    )
    with progress as bar, ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(_renew_one, api, candidate) for candidate in candidates]
        for future in as_completed(futures):
            results.append(future.result())
            if bar is not None:
                bar.update(1)
    order = {id(c): index for index, c in enumerate(candidates)}
    return sorted(results, key=lambda r: order[id(r.candidate)])


@cert_app.command("renew")
def renew(
    station: Annotated[
        str | None,
        typer.Option("--station", help="Renew this station's certificates (even if not due)"),
    ] = None,
    expiring: Annotated[
        int | None,
        typer.Option("--expiring", min=0, max=ANY_EXPIRY_DAYS, help="Those expiring within DAYS"),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=100, help="Requests in flight at once")
    ] = 10,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Renew station certificates through the running server: each station is asked for a CSR.

    Each renewal starts the station's CSR flow; the old certificate stays valid until the
    station connects with the new one. Offline stations fail here and are retried by the
    server's expiry monitor.
    """
    if station is None and expiring is None:
        fail("give --station ID or --expiring DAYS")
    with api_client(config, data_dir, api_url) as api:
        if expiring is not None:
            candidates = api.get(RENEWAL_CANDIDATES, within_days=expiring, station=station)
        else:
            due_days = api.settings.certificates.renew_before_days if api.settings else 30
            candidates = api.get(
                RENEWAL_CANDIDATES, within_days=due_days, station=station
            ) or api.get(RENEWAL_CANDIDATES, within_days=ANY_EXPIRY_DAYS, station=station)
        if not candidates:
            if expiring is None:
                fail(
                    f"nothing to renew for station {station}: it has no certificate from this "
                    "CSMS, or a renewal is already under way (chargewarden station "
                    f"cert-requests {station})"
                )
            typer.echo(f"no station certificates expire within {expiring} days")
            return
        results = _renew_all(api, candidates, min(concurrency, len(candidates)))
    print_table(
        ["station", "serial", "not after (UTC)", "result"],
        [
            [
                r.candidate.get("station"),
                r.candidate.get("serial"),
                str(r.candidate.get("not_after", ""))[:16].replace("T", " "),
                r.message,
            ]
            for r in results
        ],
    )
    failed = sum(1 for r in results if not r.ok)
    if failed:
        fail(f"{failed} of {len(results)} renewals could not be started")


def station_cert(
    identity: Annotated[str, typer.Argument(help="Station identity")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the station's files")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Provision even though the station is not on profile 3 (yet)"),
    ] = False,
    days: Annotated[
        int | None,
        typer.Option(
            "--days", min=1, help="Lifetime in days (default: station_cert_lifetime_days)"
        ),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Provision a profile-3 station like a factory: key, certificate, chain, CSMS root."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action(store: Store) -> ProvisionedStation:
        record = await store.stations.get(identity)
        if record is None:
            raise CliError(f"no station {identity!r}")
        if record.security_profile != 3 and not force:
            raise CliError(
                f"station {identity} is on security profile {record.security_profile}; a client "
                f"certificate is only used on profile 3. Raise it first ('chargewarden station "
                f"set-profile {identity} 3') or pass --force to provision ahead of the upgrade"
            )
        pki = ensure_pki(settings)
        await record_hierarchy(store, pki)
        provisioned = await provision_station(
            pki,
            store,
            identity=identity,
            cn=record.expected_serial,
            o=record.cpo_name or settings.cpo_name,
            out_dir=out,
            lifetime_days=days,
        )
        await store.audit.add(
            AuditRecord(
                actor=CLI_ACTOR,
                action="station.cert.provision",
                target=identity,
                details={
                    "serial": provisioned.record.serial,
                    "cn": provisioned.record.subject_cn,
                    "o": provisioned.record.subject_o,
                    "out": str(out),
                },
            )
        )
        return provisioned

    p = run(with_store(settings, lambda store: guarded(action(store))))
    typer.echo(
        f"issued {p.record.serial} to {identity}: CN={p.record.subject_cn}, "
        f"O={p.record.subject_o}, valid until {p.record.not_after:%Y-%m-%d} UTC"
    )
    typer.echo(f"  {p.key_path}  private key (unencrypted, mode 0600)")
    typer.echo(f"  {p.chain_path}  certificate + station CA")
    typer.echo(f"  {p.root_path}  CSMS root the station must trust")
    typer.echo("Move the key to the station over a trusted channel, then delete this copy.")
