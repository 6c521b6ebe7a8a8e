"""`chargewarden serve`: the CSMS (station gateway and HTTP API) until Ctrl-C."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from chargewarden.cli.common import CliError, ConfigOption, DataDirOption, run, settings_from
from chargewarden.config import Settings
from chargewarden.logs import configure_logging

if TYPE_CHECKING:
    from chargewarden.api.local_token import LocalAccess
    from chargewarden.app import RunningCsms

HostOption = Annotated[str | None, typer.Option("--host", help="Address to listen on")]
WsPortOption = Annotated[
    int | None, typer.Option("--ws-port", help="Port for ws:// station connections (0: any free)")
]
WssPortOption = Annotated[
    int | None,
    typer.Option("--wss-port", help="Port for wss:// stations, profiles 2 and 3 (0: any free)"),
]
HostnameOption = Annotated[
    str | None,
    typer.Option("--public-hostname", help="Name stations use for the CSMS (server certificate)"),
]
ApiPortOption = Annotated[
    int | None, typer.Option("--api-port", help="Port of the HTTP API (0: any free)")
]
FilesPortOption = Annotated[
    int | None,
    typer.Option(
        "--files-port", help="HTTPS port for firmware downloads and log uploads (0: any free)"
    ),
]


def port_flags(files_port: int | None) -> dict[str, object]:
    """Nested settings given as flags (None: not given)."""
    return {"files": {"port": files_port}} if files_port is not None else {}


async def _serve(settings: Settings) -> None:
    # The server stack (FastAPI, uvicorn) loads only for the commands that run it.
    from chargewarden.app import run_until_signalled, start_csms
    from chargewarden.security.alerts import AlertConfigError

    try:
        running = await start_csms(settings)
    except AlertConfigError as exc:  # e.g. an unreadable webhook secret file
        raise CliError(str(exc)) from None
    try:
        access = await _publish_access(running)
    except BaseException:
        await running.stop()
        raise
    try:
        typer.echo(f"ChargeWarden CSMS: stations connect to {running.ws_url}/<identity>")
        if running.wss_url:
            typer.echo(f"  profiles 2 and 3: {running.wss_url}/<identity>")
        typer.echo(
            f"HTTP API: {running.api_url}/api/docs  (health: /healthz, /readyz; "
            "Prometheus: /metrics with a token)"
        )
        if running.files_url:
            typer.echo(f"file transfer (firmware, logs): {running.files_url}/files/")
        typer.echo(f"database: {running.store.url_for_display}")
        if access is not None:
            typer.echo(f"CLI access (admin token, mode 0600): {access.path}")
        typer.echo("Ctrl-C to stop.")
        await run_until_signalled(running)
    finally:
        if access is not None:
            access.remove()


async def _publish_access(running: RunningCsms) -> LocalAccess | None:
    """The local-cli token file the station commands of the CLI use (api.local_token)."""
    from chargewarden.api.local_token import LocalAccessError, local_api_url, publish_local_token

    if running.api_address is None:
        return None
    try:
        return await publish_local_token(
            running.store, running.settings.data_dir, local_api_url(running.api_address)
        )
    except LocalAccessError as exc:
        raise CliError(str(exc)) from None


def serve(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    host: HostOption = None,
    ws_port: WsPortOption = None,
    wss_port: WssPortOption = None,
    public_hostname: HostnameOption = None,
    api_port: ApiPortOption = None,
    files_port: FilesPortOption = None,
) -> None:
    """Run the CSMS: the station gateway (ws and wss), the HTTP API and the file transfer."""
    settings = settings_from(
        config,
        data_dir,
        host=host,
        ws_port=ws_port,
        wss_port=wss_port,
        public_hostname=public_hostname,
        api_port=api_port,
        **port_flags(files_port),
    )
    configure_logging(settings.log_level, settings.log_format)
    run(_serve(settings))
