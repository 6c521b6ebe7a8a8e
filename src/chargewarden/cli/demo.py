"""`chargewarden demo`: see README; the logic lives in chargewarden.demo."""

from __future__ import annotations

from typing import Annotated

import typer

from chargewarden.cli.common import ConfigOption, DataDirOption, print_table, run, settings_from
from chargewarden.cli.serve import (
    ApiPortOption,
    FilesPortOption,
    HostOption,
    WsPortOption,
    WssPortOption,
    port_flags,
)
from chargewarden.config import Settings
from chargewarden.logs import configure_logging


async def _demo(settings: Settings, once: bool) -> int:
    # The server stack (FastAPI, uvicorn) loads only for the commands that run it.
    from chargewarden.app import run_until_signalled
    from chargewarden.demo import DEMO_TABLE_HEADERS, format_rows, run_demo

    demo = await run_demo(settings, lambda line: typer.echo(f"demo: {line}"))
    typer.echo("")
    print_table(DEMO_TABLE_HEADERS, format_rows(demo.rows))
    typer.echo("")
    verdict = "as expected" if demo.all_as_expected else "NOT as expected (see the table)"
    typer.echo(f"Every station was admitted or refused {verdict}.")
    typer.echo(
        "Refusals are security events: chargewarden events --data-dir " + str(settings.data_dir)
    )
    if once:
        await demo.close()
        return 0 if demo.all_as_expected else 1
    running = demo.running
    typer.echo(
        f"Stations connect to {running.ws_url}/<identity>; HTTP API at {running.api_url}/api/docs"
    )
    typer.echo(
        "Profile 0 is enabled for this demo only. The stations keep heartbeating; Ctrl-C stops."
    )
    try:
        await run_until_signalled(running)
    finally:
        demo.stop.set()
        for task in demo.tasks:
            task.cancel()
    return 0


def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Exit after the table (for scripts)")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    host: HostOption = None,
    ws_port: WsPortOption = None,
    wss_port: WssPortOption = None,
    api_port: ApiPortOption = None,
    files_port: FilesPortOption = None,
) -> None:
    """Start the CSMS with simulated stations, show who is admitted and who is refused."""
    settings = settings_from(
        config,
        data_dir,
        host=host,
        ws_port=ws_port,
        wss_port=wss_port,
        api_port=api_port,
        allow_profile_0=True,
        **port_flags(files_port),
    )
    configure_logging("WARNING", settings.log_format)
    raise typer.Exit(run(_demo(settings, once)))
