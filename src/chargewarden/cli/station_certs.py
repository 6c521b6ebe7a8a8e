"""Certificate commands that talk to stations through the running server's API.

`chargewarden station install-root | certificates | delete-cert | cert-requests` (attached to
the `station` app in cli/stations.py) and `chargewarden alerts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from chargewarden.cli.api_client import ApiUrlOption, api_client, segment, waiting
from chargewarden.cli.common import ConfigOption, DataDirOption, fail, print_table
from chargewarden.domain.station_commands import RootCertificateKind

IdentityArgument = Annotated[str, typer.Argument(help="Station identity")]
# A PEM file holds one certificate (OCPP allows 5500 characters); anything far larger is a
# mistake, and is not read into memory.
MAX_PEM_FILE_BYTES = 64 * 1024


def _time(value: str | None) -> str:
    """An API timestamp, shortened to minutes for a table."""
    if not value:
        return ""
    return value[:16].replace("T", " ")


def _delivery(alert: dict[str, Any]) -> str:
    if alert.get("delivered_at"):
        return "delivered"
    attempts = alert.get("delivery_attempts") or 0
    return f"{attempts} failed" if attempts else "-"


def _read_pem(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PEM_FILE_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    if len(data) > MAX_PEM_FILE_BYTES:
        fail(f"{path} is larger than {MAX_PEM_FILE_BYTES // 1024} KiB; not one PEM certificate")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        fail(f"{path} is not a PEM file (not ASCII text)")


def install_root(
    identity: IdentityArgument,
    kind: Annotated[
        RootCertificateKind, typer.Option("--type", help="Which root store to install into")
    ],
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="PEM file with one CA certificate (default: this CSMS's own root of that type)",
        ),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Install a root certificate on a station (InstallCertificate)."""
    body: dict[str, Any] = {"kind": kind.value}
    if file is not None:
        body["pem"] = _read_pem(file)
    with api_client(config, data_dir, api_url) as api:
        with waiting(f"installing the {kind.value} certificate on {identity}..."):
            answer = api.post(f"/api/stations/{segment(identity)}/installed-certificates", body)
    status = answer.get("status")
    if status != "Accepted":
        fail(f"station {identity} answered InstallCertificate ({kind.value}) with {status}")
    source = file if file is not None else "this CSMS's own root"
    typer.echo(f"station {identity}: installed {kind.value} from {source} (Accepted)")


def certificates(
    identity: IdentityArgument,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """The certificates installed on a station, asked from the station now."""
    with api_client(config, data_dir, api_url) as api:
        with waiting(f"asking {identity} for its installed certificates..."):
            snapshot = api.post(f"/api/stations/{segment(identity)}/installed-certificates/refresh")
    entries = snapshot.get("certificates") or []
    if not entries:
        typer.echo(f"station {identity} reports no installed certificates")
        return
    print_table(
        ["type", "kind", "serial", "hash", "issuer name hash"],
        [
            [
                e.get("certificate_type"),
                e.get("kind") or "-",
                e.get("serial_number"),
                e.get("hash_algorithm"),
                (e.get("issuer_name_hash") or "")[:16],
            ]
            for e in entries
        ],
    )


def delete_cert(
    identity: IdentityArgument,
    serial: Annotated[str, typer.Option("--serial", help="Serial number (hex) to delete")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Delete even the station's last CSMS root (admin)"),
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Delete a certificate from a station by serial (DeleteCertificate)."""
    with api_client(config, data_dir, api_url) as api:
        with waiting(f"deleting {serial} from {identity}..."):
            answer = api.delete(
                f"/api/stations/{segment(identity)}/installed-certificates/{segment(serial)}",
                force=force,
            )
    status = answer.get("status")
    if status != "Accepted":
        fail(f"station {identity} answered DeleteCertificate ({serial}) with {status}")
    typer.echo(f"station {identity}: deleted certificate {serial} (Accepted)")


def cert_requests(
    identity: IdentityArgument,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """A station's certificate requests (CSR flows), newest first."""
    with api_client(config, data_dir, api_url) as api:
        requests = api.get(f"/api/stations/{segment(identity)}/certificate-requests", limit=limit)
    if not requests:
        typer.echo(f"no certificate requests for station {identity}")
        return
    print_table(
        ["id", "type", "state", "origin", "actor", "serial", "sent", "updated (UTC)", "reason"],
        [
            [
                r.get("id"),
                r.get("certificate_type"),
                r.get("state"),
                r.get("origin"),
                r.get("actor") or "-",
                r.get("certificate_serial") or "-",
                r.get("delivery_attempts"),
                _time(r.get("updated_at")),
                (r.get("reason") or "")[:80],
            ]
            for r in requests
        ],
    )


def alerts(
    station: Annotated[str | None, typer.Option("--station", help="Only this station")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Recent operator alerts, newest first (from the running server)."""
    with api_client(config, data_dir, api_url) as api:
        items = api.get("/api/alerts", station=station, limit=limit)
    if not items:
        typer.echo("no alerts")
        return
    print_table(
        ["time (UTC)", "severity", "kind", "station", "webhook", "message"],
        [
            [
                _time(a.get("at")),
                a.get("severity"),
                a.get("kind"),
                a.get("station") or "-",
                _delivery(a),
                (a.get("message") or "")[:100],
            ]
            for a in items
        ],
    )
