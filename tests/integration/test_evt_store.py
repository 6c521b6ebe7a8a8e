"""EVT-01..03 in the store, on SQLite and PostgreSQL: event filters, retention of events and
alerts, the redelivery pass, and the recorder's structured log line."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest
from webhook import WebhookReceiver

from chargewarden.config import AlertSettings, EventSettings
from chargewarden.logs import JsonFormatter
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.alerts import Alerts
from chargewarden.security.events import CsmsEvent
from chargewarden.security.recorder import SecurityRecorder
from chargewarden.security.retention import Retention
from chargewarden.store import Store, StoreError
from chargewarden.store.records import AlertRecord, AlertSeverity, EventSource, SecurityEventRecord

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def event(
    event_type: str,
    received_at: datetime,
    *,
    station: str | None = "CP-1",
    source: EventSource = EventSource.STATION,
    critical: bool = False,
) -> SecurityEventRecord:
    return SecurityEventRecord(
        type=event_type,
        source=source,
        critical=critical,
        station_identity=station,
        occurred_at=received_at,
        received_at=received_at,
    )


def alert(at: datetime, kind: str = "security-event.X") -> AlertRecord:
    return AlertRecord(severity=AlertSeverity.CRITICAL, kind=kind, message="m", at=at)


# ------------------------------------------------------------------------------- filters


async def test_EVT_01_events_filter_by_type_and_received_range(store: Store) -> None:
    for hours, event_type, station in [
        (48, "FirmwareUpdated", "CP-1"),
        (30, "InvalidMessages", "CP-1"),
        (10, "FirmwareUpdated", "CP-2"),
        (1, "FirmwareUpdated", "CP-1"),
    ]:
        await store.events.add(event(event_type, NOW - timedelta(hours=hours), station=station))

    def types(events: list[SecurityEventRecord]) -> list[tuple[str, str | None]]:
        return [(e.type, e.station_identity) for e in events]

    firmware = await store.events.list(type="FirmwareUpdated")
    assert types(firmware) == [
        ("FirmwareUpdated", "CP-1"),
        ("FirmwareUpdated", "CP-2"),
        ("FirmwareUpdated", "CP-1"),
    ]
    assert await store.events.count(type="FirmwareUpdated") == 3
    assert await store.events.count(type="NoSuchType") == 0

    day = await store.events.list(since=NOW - timedelta(hours=24))
    assert types(day) == [("FirmwareUpdated", "CP-1"), ("FirmwareUpdated", "CP-2")]
    # since is inclusive, until exclusive
    edge = NOW - timedelta(hours=10)
    assert await store.events.count(since=edge) == 2
    assert await store.events.count(until=edge) == 2
    assert await store.events.count(since=edge, until=edge + timedelta(microseconds=1)) == 1
    window = await store.events.list(
        since=NOW - timedelta(hours=40), until=NOW - timedelta(hours=5), type="FirmwareUpdated"
    )
    assert types(window) == [("FirmwareUpdated", "CP-2")]
    assert await store.events.count(station="CP-1", since=NOW - timedelta(hours=36)) == 2
    # A bound in another zone means the same instant.
    plus2 = NOW.astimezone(timezone(timedelta(hours=2)))
    assert await store.events.count(since=plus2 - timedelta(hours=24)) == 2


async def test_EVT_01_naive_bounds_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.events.list(since=datetime(2026, 1, 1))  # naive on purpose
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.events.count(until=datetime(2026, 1, 1))  # naive on purpose


# ----------------------------------------------------------------------------- retention


async def test_EVT_01_retention_deletes_old_events_and_alerts_keeps_recent(store: Store) -> None:
    for days in (400, 200, 40, 31):
        await store.events.add(event("Old", NOW - timedelta(days=days)))
    for days in (29, 1, 0):
        await store.events.add(event("Recent", NOW - timedelta(days=days)))
    for days in (100, 11):
        await store.alerts.add(alert(NOW - timedelta(days=days), "old"))
    for days in (9, 0):
        await store.alerts.add(alert(NOW - timedelta(days=days), "recent"))

    settings = EventSettings(retention_days=30, alert_retention_days=10)
    # A batch of 2 makes the pass loop over several batches.
    retention = Retention(store, settings, clock=lambda: NOW, batch=2)
    purged = await retention.tick()
    assert (purged.events, purged.alerts) == (4, 2)
    assert {e.type for e in await store.events.list()} == {"Recent"}
    assert await store.events.count() == 3
    assert {a.kind for a in await store.alerts.list()} == {"recent"}
    again = await retention.tick()
    assert (again.events, again.alerts) == (0, 0)


async def test_EVT_01_retention_zero_keeps_everything(store: Store) -> None:
    await store.events.add(event("Ancient", NOW - timedelta(days=3000)))
    await store.alerts.add(alert(NOW - timedelta(days=3000)))
    settings = EventSettings(retention_days=0, alert_retention_days=0)
    purged = await Retention(store, settings, clock=lambda: NOW).tick()
    assert (purged.events, purged.alerts) == (0, 0)
    assert await store.events.count() == 1 and len(await store.alerts.list()) == 1


async def test_EVT_01_retention_runs_in_the_background(store: Store) -> None:
    now = datetime.now(UTC)
    await store.events.add(event("Old", now - timedelta(days=10)))
    await store.events.add(event("New", now))
    retention = Retention(store, EventSettings(retention_days=5, purge_check_seconds=0.05))
    retention.start()
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while await store.events.count(type="Old"):
            assert asyncio.get_running_loop().time() < deadline, "retention never ran"
            await asyncio.sleep(0.05)
    finally:
        await retention.stop()
    assert await store.events.count(type="New") == 1


# ------------------------------------------------------------------- redelivery (EVT-02)


async def test_EVT_02_undelivered_lists_only_alerts_with_attempts_left(store: Store) -> None:
    now = datetime.now(UTC)
    fresh = await store.alerts.add(alert(now, "fresh"))
    tried = await store.alerts.add(alert(now, "tried"))
    exhausted = await store.alerts.add(alert(now, "exhausted"))
    done = await store.alerts.add(alert(now, "done"))
    old = await store.alerts.add(alert(now - timedelta(days=30), "old"))
    for _ in range(2):
        await store.alerts.delivery_attempted(tried.id or 0, delivered=False)
    for _ in range(3):
        await store.alerts.delivery_attempted(exhausted.id or 0, delivered=False)
    await store.alerts.delivery_attempted(done.id or 0, delivered=True)

    pending = await store.alerts.undelivered(max_attempts=3)
    assert [a.kind for a in pending] == ["fresh", "tried", "old"]
    recent = await store.alerts.undelivered(max_attempts=3, since=now - timedelta(days=7))
    assert [a.kind for a in recent] == ["fresh", "tried"]
    paged = await store.alerts.undelivered(max_attempts=3, after_id=fresh.id or 0, limit=1)
    assert [a.kind for a in paged] == ["tried"]
    assert (await store.alerts.get(old.id or 0)) is not None


async def test_EVT_02_redelivery_pass_sends_what_an_earlier_run_left(store: Store) -> None:
    now = datetime.now(UTC)
    left = await store.alerts.add(alert(now, "left-behind"))
    await store.alerts.delivery_attempted(left.id or 0, delivered=False)
    gave_up = await store.alerts.add(alert(now, "gave-up"))
    for _ in range(3):
        await store.alerts.delivery_attempted(gave_up.id or 0, delivered=False)
    await store.alerts.add(alert(now - timedelta(days=30), "too-old"))
    async with WebhookReceiver() as receiver:
        alerts = Alerts(store, AlertSettings(webhook_url=receiver.url, webhook_attempts=3))
        alerts.start()
        try:
            deadline = asyncio.get_running_loop().time() + 20
            while not (record := await store.alerts.get(left.id or 0)) or not record.delivered_at:
                assert asyncio.get_running_loop().time() < deadline, "not redelivered"
                await asyncio.sleep(0.05)
            assert record.delivery_attempts == 2  # the earlier run's attempt counts
        finally:
            await alerts.close()
        assert [d.json()["kind"] for d in receiver.deliveries] == ["left-behind"]


# --------------------------------------------------------------------- log line (EVT-03)


async def test_EVT_03_event_log_line_carries_its_fields_as_json(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = SecurityRecorder(store)
    caplog.set_level(logging.INFO, logger="chargewarden.security")
    stored = await recorder.station(
        "CP-LOG", OcppVersion.V201, "TamperDetectionActivated", NOW, "lid open", "192.0.2.9"
    )
    csms = await recorder.csms(
        CsmsEvent.REVOKED_CERTIFICATE, identity="CP-LOG", peer="192.0.2.9", reason="revoked"
    )
    lines = [
        json.loads(JsonFormatter().format(r))
        for r in caplog.records
        if r.name == "chargewarden.security"
    ]
    assert len(lines) == 2
    station_line, csms_line = lines
    assert station_line["level"] == "WARNING"
    assert station_line["logger"] == "chargewarden.security"
    assert {
        k: station_line[k]
        for k in (
            "security_event",
            "event_id",
            "station",
            "peer",
            "critical",
            "source",
            "tech_info",
            "ocpp_version",
            "known_type",
        )
    } == {
        "security_event": "TamperDetectionActivated",
        "event_id": stored.id,
        "station": "CP-LOG",
        "peer": "192.0.2.9",
        "critical": True,
        "source": "station",
        "tech_info": "lid open",
        "ocpp_version": "2.0.1",
        "known_type": True,
    }
    assert csms_line["security_event"] == "RevokedCertificate"
    assert csms_line["source"] == "csms" and csms_line["event_id"] == csms.id
    assert csms_line["critical"] is True and csms_line["tech_info"] == "revoked"
    assert "revoked" in csms_line["message"]


async def test_EVT_02_an_alert_failure_never_fails_the_event(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenAlerts(Alerts):
        """The alert path failing (say, its table is locked) after the event was stored."""

        calls = 0

        async def raise_alert(self, *args: object, **kwargs: object) -> AlertRecord:
            BrokenAlerts.calls += 1
            raise StoreError("database error: disk I/O error")

    recorder = SecurityRecorder(store, BrokenAlerts(store, AlertSettings()), coalesce_seconds=300)
    for _ in range(2):
        stored = await recorder.station(
            "CP-BROKEN", OcppVersion.V16, "MemoryExhaustion", NOW, None, None
        )
        assert stored.id is not None and stored.critical
    assert await store.events.count(station="CP-BROKEN") == 2
    assert "cannot raise the alert" in caplog.text
    # The failed alert did not open a coalescing window: the repeat tried again.
    assert BrokenAlerts.calls == 2


async def test_LOG_01_retention_drops_transfer_tokens_a_week_after_they_expired(
    store: Store,
) -> None:
    from chargewarden.store.transfer_records import FileTokenRecord, TransferPurpose

    for digest, expired_days_ago in (("a" * 64, 8), ("b" * 64, 1)):
        await store.file_tokens.add(
            FileTokenRecord(
                token_sha256=digest,
                purpose=TransferPurpose.LOG_UPLOAD,
                station_identity="CP",
                ref_id=1,
                expires_at=NOW - timedelta(days=expired_days_ago),
            )  # fmt: skip
        )
    purged = await Retention(store, EventSettings(), clock=lambda: NOW).tick()
    assert purged.tokens == 1
    assert await store.file_tokens.find("a" * 64) is None
    assert await store.file_tokens.find("b" * 64) is not None
