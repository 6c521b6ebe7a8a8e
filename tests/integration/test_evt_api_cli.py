"""EVT-01/03 filters in the REST API (both backends) and in `chargewarden events` (CLI)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_cli import add_events, assert_ok, assert_one_line_error, assert_usage_error, cli

from chargewarden.api.app import create_api
from chargewarden.api.context import ApiContext
from chargewarden.api.operators import create_operator
from chargewarden.gateway.registry import InMemoryRegistry
from chargewarden.store import Store
from chargewarden.store.records import EventSource, OperatorRole, SecurityEventRecord

PROBLEM = "application/problem+json"
NOW = datetime.now(UTC).replace(microsecond=0)


def events_at_hours_ago() -> list[SecurityEventRecord]:
    rows = [
        (72, "FirmwareUpdated", EventSource.STATION, True, "CP-1"),
        (30, "InvalidMessages", EventSource.STATION, False, "CP-1"),
        (5, "RevokedCertificate", EventSource.CSMS, True, "CP-2"),
        (1, "FirmwareUpdated", EventSource.STATION, True, "CP-2"),
    ]
    return [
        SecurityEventRecord(
            type=event_type,
            source=source,
            critical=critical,
            station_identity=station,
            received_at=NOW - timedelta(hours=hours),
            tech_info=f"{hours}h ago",
        )
        for hours, event_type, source, critical, station in rows
    ]


# ------------------------------------------------------------------------------------ API


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    _, token = await create_operator(store, "vera.viewer", OperatorRole.VIEWER, actor="test")
    for record in events_at_hours_ago():
        await store.events.add(record)
    app = create_api(ApiContext(store=store, registry=InMemoryRegistry()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://cw.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        yield http


async def page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/security-events", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def iso(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat()


async def test_EVT_01_api_filters_by_type_since_until(client: httpx.AsyncClient) -> None:
    firmware = await page(client, type="FirmwareUpdated")
    assert firmware["total"] == 2
    assert [e["tech_info"] for e in firmware["items"]] == ["1h ago", "72h ago"]

    day = await page(client, since=iso(24))
    assert day["total"] == 2 and {e["type"] for e in day["items"]} == {
        "RevokedCertificate", "FirmwareUpdated"}
    older = await page(client, until=iso(24))
    assert older["total"] == 2
    window = await page(client, since=iso(48), until=iso(2))
    assert [e["tech_info"] for e in window["items"]] == ["5h ago", "30h ago"]
    # "Z" and other offsets mean the same instant; combined with the older filters
    z = (NOW - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    both = await page(client, since=z, source="csms", critical="true")
    assert [e["type"] for e in both["items"]] == ["RevokedCertificate"]
    assert (await page(client, type="FirmwareUpdated", station="CP-2"))["total"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"until": "2025-13-01T00:00:00Z"},
        {"since": "2025-01-01T00:00:00"},  # no offset: whose midnight?
        {"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
        {"type": ""},
        {"type": "x" * 51},
    ],
    ids=["words", "bad-month", "naive", "empty-range", "empty-type", "long-type"],
)
async def test_EVT_01_api_bad_filter_is_422_problem(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/api/security-events", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 422 and body["detail"]


# ------------------------------------------------------------------------------------ CLI


def test_EVT_01_cli_filters_and_json_lines(tmp_path: Path) -> None:
    add_events(tmp_path / "chargewarden.db", *events_at_hours_ago())

    by_type = cli("events --type FirmwareUpdated", data_dir=tmp_path)
    assert_ok(by_type)
    assert "72h ago" in by_type.stdout and "1h ago" in by_type.stdout
    assert "InvalidMessages" not in by_type.stdout

    csms = cli("events --source csms", data_dir=tmp_path)
    assert_ok(csms)
    assert "RevokedCertificate" in csms.stdout and "FirmwareUpdated" not in csms.stdout

    recent = cli("events --since 24h --json", data_dir=tmp_path)
    assert_ok(recent)
    lines = [json.loads(line) for line in recent.stdout.splitlines()]
    assert [e["type"] for e in lines] == ["FirmwareUpdated", "RevokedCertificate"]
    assert set(lines[0]) >= {"id", "type", "source", "critical", "station", "received_at",
                             "tech_info", "peer_address", "ocpp_version"}

    window = cli("events", "--since", "2d", "--until", iso(2), "--json", data_dir=tmp_path)
    assert_ok(window)
    assert [json.loads(x)["tech_info"] for x in window.stdout.splitlines()] == [
        "5h ago", "30h ago"]

    combined = cli("events --critical --station CP-1 --since 7d --limit 1 --json",
                   data_dir=tmp_path)
    assert_ok(combined)
    [only] = [json.loads(x) for x in combined.stdout.splitlines()]
    assert only["type"] == "FirmwareUpdated" and only["station"] == "CP-1"

    # A naive ISO time is UTC (what the table shows).
    naive = (NOW - timedelta(hours=2)).replace(tzinfo=None).isoformat()
    assert len(cli("events --json --since", naive, data_dir=tmp_path).stdout.splitlines()) == 1

    none = cli("events --type NothingLikeThis --json", data_dir=tmp_path)
    assert_ok(none)
    assert none.stdout == ""
    assert cli("events --type NothingLikeThis", data_dir=tmp_path).stdout.strip() == (
        "no security events")


def test_EVT_01_cli_bad_filters_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(cli("events --since yesterday", data_dir=tmp_path),
                          "--since", "yesterday", "24h")
    assert_one_line_error(cli("events --until 2025-02-30", data_dir=tmp_path), "--until")
    assert_one_line_error(
        cli("events --since 2025-02-01 --until 2025-01-01", data_dir=tmp_path),
        "--since", "must be before --until",
    )
    assert_usage_error(cli("events --source somebody", data_dir=tmp_path), "somebody")
    assert_usage_error(cli("events --limit 0", data_dir=tmp_path), "--limit")
