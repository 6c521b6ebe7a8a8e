"""The expiry monitor (CRT-09) and retiring a renewed certificate, with a raw station."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rawstation import RawStation, add_station, boot, connect
from tlskit import CPO

from chargewarden.app import RunningCsms
from chargewarden.pki.provision import provision_station
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.records import CertificateRequestState, RequestOrigin

V16, V201 = OcppVersion.V16, OcppVersion.V201


async def provision(csms: RunningCsms, identity: str, tmp_path: Path, days: int) -> None:
    assert csms.pki is not None
    await provision_station(
        csms.pki,
        csms.store,
        identity=identity,
        cn=identity,
        o=CPO,
        out_dir=tmp_path / identity,
        lifetime_days=days,
    )


@pytest.mark.parametrize("version", [V16, V201])
async def test_CRT_09_expiry_monitor_triggers_renewal_of_online_stations(
    ca_csms: RunningCsms, version: OcppVersion, tmp_path: Path
) -> None:
    assert ca_csms.renewal is not None
    identity = f"RENEW-{version.value}"
    await add_station(ca_csms, identity, version)
    await add_station(ca_csms, f"{identity}-OFF", version)
    await provision(ca_csms, identity, tmp_path, days=10)  # due: renew_before_days is 30
    await provision(ca_csms, f"{identity}-OFF", tmp_path, days=10)
    await provision(ca_csms, f"{identity}-LATER", tmp_path, days=365)  # not due
    async with connect(ca_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        ticking = asyncio.create_task(ca_csms.renewal.tick())
        trigger = "ExtendedTriggerMessage" if version is V16 else "TriggerMessage"
        unique_id, _ = await station.expect_call(trigger)
        await station.answer(unique_id, {"status": "Accepted"})
        outcomes = await ticking
    assert [(o.station, o.started) for o in outcomes] == [(identity, True)]
    (request,) = await ca_csms.store.certificate_requests.list(station_identity=identity)
    assert request.state is CertificateRequestState.TRIGGERED
    assert request.origin is RequestOrigin.RENEWAL
    # A renewal under way is not started twice; the offline station is still due.
    due = await ca_csms.renewal.due(timedelta(days=30))
    assert [c.station_identity for c in due] == [f"{identity}-OFF"]


async def test_CRT_09_triggered_request_without_csr_expires(ca_csms: RunningCsms) -> None:
    assert ca_csms.signing is not None
    identity = "RENEW-NO-CSR"
    await add_station(ca_csms, identity, V201)
    async with connect(ca_csms, identity, V201) as ws:
        station = RawStation(ws)
        await boot(station, V201)
        requested = asyncio.create_task(ca_csms.signing.request(identity))
        unique_id, _ = await station.expect_call("TriggerMessage")
        await station.answer(unique_id, {"status": "Accepted"})
        request = await requested
    later = datetime.now(UTC) + timedelta(hours=2)
    assert await ca_csms.signing.expire_waiting(later) == 1
    stored = await ca_csms.store.certificate_requests.get(request.id or -1)
    assert stored is not None and stored.state is CertificateRequestState.FAILED
    assert stored.reason == "no CSR received in time"


async def test_CRT_09_older_certificate_retired_once_the_new_one_is_used(
    ca_csms: RunningCsms, tmp_path: Path
) -> None:
    assert ca_csms.signing is not None
    identity = "RENEW-RETIRE"
    await add_station(ca_csms, identity, V201)
    await provision(ca_csms, identity, tmp_path / "old", days=10)
    await provision(ca_csms, identity, tmp_path / "new", days=365)
    old, new = sorted(
        await ca_csms.store.certificates.list(station=identity), key=lambda c: c.id or 0
    )
    retired = await ca_csms.signing.retire_superseded(identity, new.fingerprint_sha256)
    assert [c.serial for c in retired] == [old.serial]
    assert (await ca_csms.store.certificates.get(old.serial)).revoked  # type: ignore[union-attr]
    assert not (await ca_csms.store.certificates.get(new.serial)).revoked  # type: ignore[union-attr]
    # Presenting the old one again retires nothing newer.
    assert await ca_csms.signing.retire_superseded(identity, old.fingerprint_sha256) == []
