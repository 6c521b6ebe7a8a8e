"""EVT-01/02/03 over real sockets: station security events are answered and stored, critical ones
(per version) and the CSMS's own critical ones alert, the webhook gets them signed, and nothing
is lost while it is down, not even across a restart.

No timing assertions: every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import RELAXED_THROTTLE
from rawstation import RawStation, add_station, boot, connect, register_test_station
from webhook import Delivery, WebhookReceiver, free_port
from websockets.exceptions import InvalidStatus

from chargewarden.app import RunningCsms, start_csms
from chargewarden.config import load_settings
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.records import AlertRecord, AlertSeverity, EventSource

V16, V201 = OcppVersion.V16, OcppVersion.V201
VERSIONS = [pytest.param(V16, id="v16"), pytest.param(V201, id="v201")]
DEADLINE_SECONDS = 30.0


async def eventually(
    check: Callable[[], Awaitable[Any]], what: str, timeout: float = DEADLINE_SECONDS
) -> Any:
    """Poll until ``check()`` is truthy; return its value, or fail saying what never happened."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def settings_for(data_dir: Path, **extra: Any) -> Any:
    settings = load_settings(
        None,
        data_dir=data_dir,
        host="127.0.0.1",
        ws_port=0,
        api_port=0,
        allow_profile_0=True,
        call_timeout=5.0,
        throttle=RELAXED_THROTTLE,
        **extra,
    )
    return settings.model_copy(update={"wss_port": None})


@contextlib.asynccontextmanager
async def running(data_dir: Path, **extra: Any) -> AsyncIterator[RunningCsms]:
    csms = await start_csms(settings_for(data_dir, **extra), with_api=False)
    try:
        yield csms
    finally:
        await csms.stop()


def webhook(url: str, secret_file: Path | None = None, attempts: int = 10) -> dict[str, Any]:
    hook: dict[str, Any] = {"webhook_url": url, "webhook_attempts": attempts,
                            "webhook_timeout": 5.0}
    if secret_file is not None:
        hook["webhook_secret_file"] = secret_file
    return hook


def secret_file(tmp_path: Path) -> tuple[Path, bytes]:
    secret = secrets.token_hex(32).encode()
    path = tmp_path / "webhook.secret"
    path.write_bytes(secret + b"\n")
    return path, secret


async def send_event(
    station: RawStation, event_type: str, tech_info: str | None = None
) -> list[Any]:
    payload: dict[str, Any] = {"type": event_type, "timestamp": "2026-11-22T10:00:00Z"}
    if tech_info is not None:
        payload["techInfo"] = tech_info
    return await station.call("SecurityEventNotification", payload)


async def alerts_of(csms: RunningCsms, identity: str) -> list[AlertRecord]:
    return list(reversed(await csms.store.alerts.list(station_identity=identity)))


# --------------------------------------------------------------------------------- EVT-01


@pytest.mark.parametrize("version", VERSIONS)
async def test_EVT_01_unknown_event_type_is_stored_and_answered(
    tmp_path: Path, version: OcppVersion
) -> None:
    identity = f"EVT1-{version.value}"
    async with running(tmp_path) as csms:
        await add_station(csms, identity, version)
        async with connect(csms, identity, version) as ws:
            station = RawStation(ws)
            await boot(station, version)
            reply = await send_event(station, "AcmeVendorDoorOpened", "door 2")
            assert reply[0] == 3 and reply[2] == {}  # a CALLRESULT, not a CALLERROR
        events = await csms.store.events.list(station=identity)
        assert [(e.type, e.source, e.critical, e.tech_info) for e in events] == [
            ("AcmeVendorDoorOpened", EventSource.STATION, False, "door 2")
        ]
        assert events[0].ocpp_version is version
        assert await alerts_of(csms, identity) == []  # unknown types are not critical


# --------------------------------------------------------------------------------- EVT-02


@pytest.mark.parametrize("version", VERSIONS)
async def test_EVT_02_criticality_per_version_decides_the_alert(
    tmp_path: Path, version: OcppVersion
) -> None:
    # InvalidFirmwareSignature is critical in 2.0.1 only; TamperDetectionActivated in both;
    # InvalidMessages in neither.
    identity = f"EVT2-{version.value}"
    async with running(tmp_path) as csms:
        await add_station(csms, identity, version)
        async with connect(csms, identity, version) as ws:
            station = RawStation(ws)
            await boot(station, version)
            for event_type in ("InvalidMessages", "InvalidFirmwareSignature",
                               "TamperDetectionActivated"):
                assert (await send_event(station, event_type))[0] == 3
        stored = {e.type: e.critical for e in await csms.store.events.list(station=identity)}
        assert stored == {
            "InvalidMessages": False,
            "InvalidFirmwareSignature": version is V201,
            "TamperDetectionActivated": True,
        }
        alerts = await alerts_of(csms, identity)
        expected = ["security-event.TamperDetectionActivated"]
        if version is V201:
            expected.insert(0, "security-event.InvalidFirmwareSignature")
        assert [a.kind for a in alerts] == expected
        assert all(a.severity is AlertSeverity.CRITICAL for a in alerts)


@pytest.mark.parametrize("version", VERSIONS)
async def test_EVT_02_critical_event_reaches_the_webhook_signed(
    tmp_path: Path, version: OcppVersion
) -> None:
    path, secret = secret_file(tmp_path)
    identity = f"HOOK-{version.value}"
    async with WebhookReceiver() as receiver, running(
        tmp_path, alerts=webhook(receiver.url, path)
    ) as csms:
        await add_station(csms, identity, version)
        async with connect(csms, identity, version) as ws:
            station = RawStation(ws)
            await boot(station, version)
            assert (await send_event(station, "SecurityLogWasCleared", "by technician"))[0] == 3

        async def delivered() -> list[Delivery]:
            return receiver.deliveries

        [delivery] = await eventually(delivered, "the webhook POST")
        assert delivery.path == "/hook"
        assert delivery.headers["content-type"] == "application/json"
        assert delivery.signature_valid(secret)
        assert not delivery.signature_valid(b"another secret of 32 bytes......")
        body = delivery.json()
        [event] = await csms.store.events.list(station=identity, type="SecurityLogWasCleared")
        assert body["kind"] == "security-event.SecurityLogWasCleared"
        assert body["severity"] == "critical" and body["station"] == identity
        details = body["details"]
        assert details["eventId"] == event.id
        assert details["station"] == identity
        assert details["type"] == "SecurityLogWasCleared"
        assert details["source"] == "station"
        assert details["techInfo"] == "by technician"
        assert details["ocppVersion"] == version.value
        assert details["suppressedRepeats"] == 0

        async def marked() -> bool:
            [alert] = await csms.store.alerts.list(station_identity=identity)
            return alert.delivered_at is not None

        await eventually(marked, "the alert marked delivered")
        assert secret.decode() not in delivery.body.decode()


async def test_EVT_03_critical_csms_event_alerts(tmp_path: Path) -> None:
    # A profile-2 station arriving over plain ws is what a downgrade attack looks like.
    identity = "EVT3-DOWNGRADE"
    async with running(tmp_path) as csms:
        await register_test_station(csms.store, identity, V201, profile=2)
        with pytest.raises(InvalidStatus):
            async with connect(csms, identity, V201):
                pass
        [event] = await csms.store.events.list(station=identity)
        assert (event.type, event.source, event.critical) == (
            "ProfileTransportMismatch", EventSource.CSMS, True)
        [alert] = await alerts_of(csms, identity)
        assert alert.kind == "security-event.ProfileTransportMismatch"
        assert alert.details["source"] == "csms" and alert.details["eventId"] == event.id
        assert alert.details["peer"] == event.peer_address


@pytest.mark.parametrize("version", VERSIONS)
async def test_EVT_02_repeats_within_the_window_raise_one_alert(
    tmp_path: Path, version: OcppVersion
) -> None:
    window = 3.0
    identity = f"COALESCE-{version.value}"
    async with running(tmp_path, events={"alert_coalesce_seconds": window}) as csms:
        await add_station(csms, identity, version)
        async with connect(csms, identity, version) as ws:
            station = RawStation(ws)
            await boot(station, version)
            await send_event(station, "TamperDetectionActivated", "first")
            await send_event(station, "TamperDetectionActivated", "second")
            # Both stored, one alert.
            assert await csms.store.events.count(
                station=identity, type="TamperDetectionActivated") == 2
            assert len(await alerts_of(csms, identity)) == 1
            await asyncio.sleep(window + 0.5)  # past the window (waiting, not asserting time)
            await send_event(station, "TamperDetectionActivated", "third")
        alerts = await alerts_of(csms, identity)
        assert len(alerts) == 2
        assert alerts[0].details["suppressedRepeats"] == 0
        assert alerts[0].details["techInfo"] == "first"
        assert alerts[1].details["suppressedRepeats"] == 1
        assert alerts[1].details["techInfo"] == "third"
        assert "1 repeat(s)" in alerts[1].message


# ------------------------------------------------------------------- nothing lost (EVT-02)


@pytest.mark.parametrize("version", VERSIONS)
async def test_EVT_02_webhook_down_at_first_is_retried_until_delivered(
    tmp_path: Path, version: OcppVersion
) -> None:
    path, secret = secret_file(tmp_path)
    port = free_port()
    receiver = WebhookReceiver(port)
    identity = f"DOWN-{version.value}"
    async with running(tmp_path, alerts=webhook(receiver.url, path)) as csms:
        await add_station(csms, identity, version)
        async with connect(csms, identity, version) as ws:
            station = RawStation(ws)
            await boot(station, version)
            await send_event(station, "MemoryExhaustion")

        async def attempted() -> bool:
            alerts = await csms.store.alerts.list(station_identity=identity)
            return bool(alerts) and alerts[0].delivery_attempts >= 1

        await eventually(attempted, "a failed first delivery attempt")
        [alert] = await csms.store.alerts.list(station_identity=identity)
        assert alert.delivered_at is None
        await receiver.start()
        try:
            async def delivered() -> AlertRecord | None:
                record = await csms.store.alerts.get(alert.id or 0)
                return record if record and record.delivered_at else None

            record = await eventually(delivered, "the retried delivery")
            assert record.delivery_attempts >= 2
            assert [d.json()["id"] for d in receiver.deliveries] == [alert.id]
            assert receiver.deliveries[0].signature_valid(secret)
        finally:
            await receiver.stop()


@pytest.mark.parametrize("version", VERSIONS)
async def test_EVT_02_undelivered_alert_is_delivered_after_a_restart(
    tmp_path: Path, version: OcppVersion
) -> None:
    path, secret = secret_file(tmp_path)
    data_dir = tmp_path / "csms"
    receiver = WebhookReceiver(free_port())
    hook = webhook(receiver.url, path)
    identity = f"RESTART-{version.value}"
    async with running(data_dir, alerts=hook) as first:
        await add_station(first, identity, version)
        async with connect(first, identity, version) as ws:
            station = RawStation(ws)
            await boot(station, version)
            await send_event(station, "ResetOrReboot", "watchdog")

        async def attempted() -> AlertRecord | None:
            alerts = await first.store.alerts.list(station_identity=identity)
            return alerts[0] if alerts and alerts[0].delivery_attempts >= 1 else None

        alert = await eventually(attempted, "a failed delivery attempt")
    # The first CSMS is gone with its in-process retries; the alert waits in the store.
    async with receiver, running(data_dir, alerts=hook) as second:
        async def delivered() -> AlertRecord | None:
            record = await second.store.alerts.get(alert.id or 0)
            return record if record and record.delivered_at else None

        await eventually(delivered, "delivery by the restarted CSMS")
        [delivery] = receiver.deliveries  # once: nothing lost, nothing doubled
        assert delivery.signature_valid(secret)
        body = delivery.json()
        assert body["id"] == alert.id
        assert body["details"]["type"] == "ResetOrReboot"
        assert body["details"]["techInfo"] == "watchdog"
        assert body["details"]["station"] == identity
