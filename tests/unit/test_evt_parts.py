"""EVT-01..03 pure parts: alert coalescing, the webhook body and signature, CLI time parsing,
and docs/events.md listing the code's catalogue."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chargewarden.cli.events import TimeValueError, parse_time
from chargewarden.logs import JsonFormatter
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.alerts import alert_body, sign_body
from chargewarden.security.coalesce import AlertCoalescer
from chargewarden.security.events import (
    CsmsEvent,
    classify,
    csms_event_critical,
    station_event_types,
)
from chargewarden.security.recorder import alert_message, event_details
from chargewarden.store.records import AlertRecord, AlertSeverity, EventSource, SecurityEventRecord

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------ coalescing


def test_EVT_02_repeats_in_the_window_are_counted_into_the_next_alert() -> None:
    clock = Clock()
    coalescer = AlertCoalescer(300, clock=clock)
    key = ("station", "CP-1", "ResetOrReboot")
    assert coalescer.admit(key) == 0
    clock.now += 10
    assert coalescer.admit(key) is None
    clock.now += 289
    assert coalescer.admit(key) is None  # still within 300 s of the alert
    assert coalescer.admit(("station", "CP-2", "ResetOrReboot")) == 0  # another station
    assert coalescer.admit(("csms", "CP-1", "ResetOrReboot")) == 0  # another source
    assert coalescer.admit(("station", "CP-1", "FirmwareUpdated")) == 0  # another type
    clock.now += 1  # 300 s after the alert
    assert coalescer.admit(key) == 2
    clock.now += 1
    assert coalescer.admit(key) is None


def test_EVT_02_a_steady_stream_still_alerts_once_per_window() -> None:
    clock = Clock()
    coalescer = AlertCoalescer(60, clock=clock)
    alerts = []
    for _ in range(300):  # one repeat every 10 s for 50 minutes
        alerts.append(coalescer.admit("k"))
        clock.now += 10
    raised = [n for n in alerts if n is not None]
    assert len(raised) == 50 and raised[0] == 0 and set(raised[1:]) == {5}


def test_EVT_02_zero_window_alerts_every_time() -> None:
    coalescer = AlertCoalescer(0, clock=Clock())
    assert [coalescer.admit("k") for _ in range(3)] == [0, 0, 0]


def test_EVT_02_key_count_is_bounded_and_dropped_counts_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    coalescer = AlertCoalescer(60, clock=clock, max_keys=3)
    coalescer.admit("old")
    coalescer.admit("old")  # one suppressed repeat
    clock.now += 61
    for key in ("a", "b", "c"):
        coalescer.admit(key)
    assert len(coalescer) == 3  # "old" expired and went first
    assert "1 repeat(s) of old" in caplog.text
    for key in ("d", "e"):
        coalescer.admit(key)  # nothing expired: the oldest go
    assert len(coalescer) == 3


# --------------------------------------------------------------------------------- webhook


def test_EVT_02_webhook_body_carries_the_event_and_verifies() -> None:
    event = SecurityEventRecord(
        id=42,
        type="TamperDetectionActivated",
        source=EventSource.STATION,
        critical=True,
        station_identity="CP-1",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        received_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
        tech_info="lid",
        peer_address="192.0.2.1",
        ocpp_version=OcppVersion.V16,
    )
    alert = AlertRecord(
        id=7,
        severity=AlertSeverity.CRITICAL,
        kind="security-event.TamperDetectionActivated",
        message=alert_message(event, 3),
        station_identity="CP-1",
        details=event_details(event, 3),
        at=datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC),
    )
    body = alert_body(alert)
    parsed = json.loads(body)
    assert parsed["details"] == {
        "eventId": 42, "station": "CP-1", "type": "TamperDetectionActivated",
        "source": "station", "critical": True, "techInfo": "lid", "peer": "192.0.2.1",
        "ocppVersion": "1.6", "occurredAt": "2026-01-01T00:00:00+00:00",
        "receivedAt": "2026-01-01T00:00:01+00:00", "suppressedRepeats": 3,
    }
    assert "3 repeat(s)" in parsed["message"] and "lid" in parsed["message"]
    secret = b"0123456789abcdef0123456789abcdef"
    signature = sign_body(secret, "1767225602", body)
    expected = hmac.new(secret, b"1767225602." + body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"


def test_EVT_03_json_lines_keep_their_own_fields_first() -> None:
    record = logging.LogRecord("chargewarden.security", logging.WARNING, "x", 1, "hi", (), None)
    record.security_event = "X"
    record.level = "spoofed"  # an extra must not replace the record's own level
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["security_event"] == "X"


# ---------------------------------------------------------------------------- CLI times


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2w", NOW - timedelta(weeks=2)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2026-05-01", datetime(2026, 5, 1, tzinfo=UTC)),
        ("2026-05-01T10:00:00Z", datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ("2026-05-01T10:00:00+02:00", datetime(2026, 5, 1, 8, tzinfo=UTC)),
    ],
)
def test_EVT_01_cli_times(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "24", "h", "-1d", "2026-02-30", "7y", ""])
def test_EVT_01_cli_bad_times(text: str) -> None:
    with pytest.raises(TimeValueError):
        parse_time(text, NOW)


# ----------------------------------------------------------------------------- the doc


def _table(name: str) -> dict[str, list[str]]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(rf"<!-- {name}:begin -->(.*?)<!-- {name}:end -->", text, re.S)
    assert block, f"docs/events.md has no {name} table"
    rows: dict[str, list[str]] = {}
    for line in block.group(1).strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def _label(critical: bool) -> str:
    return "**critical**" if critical else "not critical"


def test_EVT_02_doc_lists_every_station_type_with_its_criticality() -> None:
    rows = _table("station-events")
    every = station_event_types(OcppVersion.V16) | station_event_types(OcppVersion.V201)
    assert set(rows) == every
    for event_type, (v16, v201) in rows.items():
        for version, cell in ((OcppVersion.V16, v16), (OcppVersion.V201, v201)):
            kind = classify(version, event_type)
            assert cell == (_label(kind.critical) if kind.known else "—"), (event_type, version)


def test_EVT_03_doc_lists_every_csms_event_with_its_criticality() -> None:
    rows = _table("csms-events")
    assert set(rows) == {str(e) for e in CsmsEvent}
    for event in CsmsEvent:
        assert rows[str(event)][0] == _label(csms_event_critical(event)), event
