"""The whole walk with our simulator over real TLS (seed 001 "Upgrading Security", SIM-04):
rotate the password, upgrade 1→2→3, and see every older profile refused afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from jobkit import admission_status, old_secret, wait_job
from rawstation import AUTH_KEY, PASSWORD, V16, V201, register_test_station
from test_certificate_lifecycle import Running, until
from test_jobs_upgrade import FAST_JOBS, open_wss
from tlskit import CPO, tls_settings
from websockets.exceptions import InvalidStatus

from chargewarden.app import RunningCsms, start_csms
from chargewarden.demo_upgrades import upgrade_station_config
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.store.job_records import JobState


@pytest.fixture
async def tls_csms(tmp_path: Path, pki_template: Path) -> AsyncIterator[RunningCsms]:
    running = await start_csms(
        tls_settings(tmp_path, pki_template, jobs=FAST_JOBS | {"reconnect_wait_seconds": 30}),
        with_api=False,
    )
    try:
        yield running
    finally:
        await running.stop()


def profile_1_station(csms: RunningCsms, identity: str, version: OcppVersion) -> StationConfig:
    """A station on profile 1 that knows nothing of our CA yet (it gets the root over OCPP)."""
    secret = bytes.fromhex(AUTH_KEY) if version is V16 else PASSWORD
    return replace(
        upgrade_station_config(csms, identity, version, secret),
        cpo_name=CPO,
        reconnect_backoff_initial=0.2,
        reconnect_backoff_max=1.0,
    )


@pytest.mark.parametrize("version", [V16, V201])
async def test_seed_001_rotate_then_upgrade_1_to_3_and_older_profiles_refused(
    tls_csms: RunningCsms, version: OcppVersion
) -> None:
    identity = f"WALK-{version.value}"
    await register_test_station(tls_csms.store, identity, version, 1)
    async with Running(profile_1_station(tls_csms, identity, version)) as runner:
        rotation = await tls_csms.jobs.rotate(identity, actor="test")
        rotated = await wait_job(tls_csms, rotation.id)
        assert rotated.state is JobState.SUCCEEDED, rotated.message

        upgrade = await tls_csms.jobs.upgrade(identity, 3, actor="test")
        done = await wait_job(tls_csms, upgrade.id, timeout=60)
        assert done.state is JobState.SUCCEEDED, done.message
        await until(
            lambda: (
                (link := tls_csms.registry.get(identity)) is not None
                and link.info.security_profile == 3
            )
        )
        assert runner.core.security_profile == 3

    station = await tls_csms.store.stations.get(identity)
    assert station is not None and (station.security_profile, station.pending_profile) == (3, None)
    steps = [s.step for s in await tls_csms.store.jobs.steps(upgrade.id or -1)]
    assert "install-root" in steps and "certificate" in steps and "await-reconnect" in steps
    # Profile 1 (ws + password) and profile 2 (wss + password) are both refused now.
    secret = runner.core.auth_key if version is V16 else (runner.core.password or "").encode()
    assert secret is not None and secret != old_secret(version)
    assert await admission_status(tls_csms, identity, version, secret) == 401
    with pytest.raises(InvalidStatus) as refused:
        async with open_wss(tls_csms, identity, version, secret):
            pass
    assert refused.value.response.status_code == 401
