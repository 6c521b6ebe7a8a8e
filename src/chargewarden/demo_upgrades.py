"""The demo's upgrade phase (seed 001 "Upgrading Security"), for a 1.6 and a 2.0.1 station:
rotate the password, walk the station from profile 1 to 2 to 3 with durable jobs, then show
that its old password and its lower profiles are refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from chargewarden.app import RunningCsms
from chargewarden.demo_tls import tls_config
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.runner import StationRunner
from chargewarden.store.job_records import JobRecord
from chargewarden.workflows.service import JobError

WAIT_SECONDS = 60.0
DEMO_ACTOR = "demo"
UPGRADED_STATIONS = ("DEMO-16-UP", "DEMO-201-UP")

Row = tuple[str, str, bool, str]  # identity, result, as expected, why


def upgrade_station_config(
    running: RunningCsms, identity: str, version: OcppVersion, secret: bytes | str | None
) -> StationConfig:
    """Profile 1 over ws, knowing nothing of our CA: it gets the root over OCPP. A 1.6 station
    has its wss URL configured (1.6 has no way to send it one); a 2.0.1 station is told."""
    assert running.wss_address is not None
    return StationConfig(
        identity=identity,
        ocpp_version=version,
        url=running.ws_url,
        tls_url=f"wss://{running.settings.public_hostname}:{running.wss_address[1]}/ocpp",
        security_profile=1,
        auth_key=secret if isinstance(secret, bytes) else None,
        password=secret if isinstance(secret, str) else None,
        cpo_name=running.settings.cpo_name,
        reconnect_backoff_initial=0.5,
        reconnect_backoff_max=5.0,
    )


async def finished_job(running: RunningCsms, job: JobRecord) -> JobRecord | None:
    """The job once finished, or None after WAIT_SECONDS."""
    assert job.id is not None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                stored = await running.store.jobs.get(job.id)
                if stored is not None and stored.state.finished:
                    return stored
                await asyncio.sleep(0.1)
    return None


async def _run_job(running: RunningCsms, start: Callable[[], object]) -> tuple[bool, str]:
    try:
        job = await start()  # type: ignore[misc]
    except JobError as exc:
        return False, str(exc)
    done = await finished_job(running, job)
    if done is None:
        return False, f"job {job.id} did not finish in {WAIT_SECONDS:.0f} s"
    return done.state == "succeeded", f"job {done.id}: {done.message}"


async def _refused(config: StationConfig) -> str | None:
    """The HTTP status a connection with this configuration gets, or None if admitted."""
    outcome = await StationRunner(config).connect_once()
    if outcome.admitted:
        return None
    return str(outcome.http_status or "TLS")


async def _old_ways_refused(
    running: RunningCsms, runner: StationRunner, original: bytes | str | None
) -> tuple[bool, str]:
    core = runner.core
    identity, version = core.config.identity, core.version
    current = core.auth_key if version is OcppVersion.V16 else core.password
    probes = {
        "old password on profile 1": upgrade_station_config(running, identity, version, original),
        "new password on profile 1": upgrade_station_config(running, identity, version, current),
        "new password on profile 2": tls_config(
            running,
            identity,
            version,
            2,
            auth_key=current if isinstance(current, bytes) else None,
            password=current if isinstance(current, str) else None,
        ),
    }
    results = {what: await _refused(config) for what, config in probes.items()}
    text = "; ".join(f"{what}: {status or 'ADMITTED'}" for what, status in results.items())
    return all(status is not None for status in results.values()), text


async def run_upgrade_phase(
    running: RunningCsms,
    runners: dict[str, tuple[StationRunner, bytes | str | None]],
    progress: Callable[[str], None],
) -> list[Row]:
    """Rotate, upgrade 1→3 and probe the old ways in, for each given running station."""
    if running.signing is None:
        return []
    progress("rotating passwords and upgrading stations from profile 1 to 3")
    rows: list[Row] = []
    for identity, (runner, original) in runners.items():
        ok, why = await _run_job(
            running, lambda i=identity: running.jobs.rotate(i, actor=DEMO_ACTOR)
        )
        rows.append((identity, "password rotated" if ok else "NOT rotated", ok, why))
        ok, why = await _run_job(
            running, lambda i=identity: running.jobs.upgrade(i, 3, actor=DEMO_ACTOR)
        )
        rows.append((identity, "upgraded 1→2→3" if ok else "NOT upgraded", ok, why))
        if ok:
            ok, why = await _old_ways_refused(running, runner, original)
            rows.append((identity, "old ways refused" if ok else "old way ADMITTED", ok, why))
    return rows
