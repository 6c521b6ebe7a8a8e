"""The whole CSMS on loopback, on SQLite and PostgreSQL: API → registry → socket → simulator.

Nothing is stood in for: the HTTP API and the station gateway listen on real ports, the
simulated stations connect over real WebSockets, the store is the real database.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chargewarden.api.operators import create_operator
from chargewarden.app import RunningCsms, start_csms
from chargewarden.config import load_settings
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.runner import StationRunner
from chargewarden.store.records import OperatorRole

KEY_HEX = "9F3A61C2D4E5F60718293A4B5C6D7E8F90A1B2C3"
PASSWORD = "Tz8-Kq2+Lm5_Wx9=Rv4*"


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[dict[str, Any]]:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        database_url=database_url,
        host="127.0.0.1",
        ws_port=0,
        wss_port=None,
        api_port=0,
        call_timeout=3.0,
    )
    running = await start_csms(settings)
    _, admin = await create_operator(running.store, "admin", OperatorRole.ADMIN, actor="test")
    _, viewer = await create_operator(running.store, "viewer", OperatorRole.VIEWER, actor="test")
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(base_url=running.api_url or "", timeout=10) as client:
        try:
            yield {
                "running": running,
                "client": client,
                "admin": {"Authorization": f"Bearer {admin}"},
                "viewer": {"Authorization": f"Bearer {viewer}"},
                "stop": stop,
                "tasks": tasks,
                "data_dir": tmp_path,
            }
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await running.stop()


async def start_station(stack: dict[str, Any], config: StationConfig) -> StationRunner:
    runner = StationRunner(config)
    stack["tasks"].append(asyncio.create_task(runner.run(stack["stop"])))
    await asyncio.wait_for(runner.state.booted.wait(), 10)
    return runner


def station_config(running: RunningCsms, identity: str, version: OcppVersion) -> StationConfig:
    secret: dict[str, Any] = (
        {"auth_key": bytes.fromhex(KEY_HEX)}
        if version is OcppVersion.V16
        else {"password": PASSWORD}
    )
    return StationConfig(identity=identity, ocpp_version=version, url=running.ws_url, **secret)


async def register_via_api(stack: dict[str, Any]) -> None:
    client: httpx.AsyncClient = stack["client"]
    for body in (
        {"identity": "E2E-16", "ocpp_version": "1.6", "security_profile": 1, "auth_key": KEY_HEX},
        {
            "identity": "E2E-201",
            "ocpp_version": "2.0.1",
            "security_profile": 1,
            "password": PASSWORD,
        },
    ):
        created = await client.post("/api/stations", json=body, headers=stack["admin"])
        assert created.status_code == 201, created.text


async def test_api_call_reaches_a_live_simulated_station(stack: dict[str, Any]) -> None:
    running: RunningCsms = stack["running"]
    client: httpx.AsyncClient = stack["client"]
    await register_via_api(stack)
    await start_station(stack, station_config(running, "E2E-16", OcppVersion.V16))
    await start_station(stack, station_config(running, "E2E-201", OcppVersion.V201))

    live = await client.get("/api/connections", headers=stack["viewer"])
    assert [c["identity"] for c in live.json()] == ["E2E-16", "E2E-201"]

    config = await client.post(
        "/api/stations/E2E-16/call",
        json={
            "action": "GetConfiguration",
            "payload": {"key": ["HeartbeatInterval", "AuthorizationKey"]},
        },
        headers=stack["admin"],
    )
    assert config.status_code == 200, config.text
    answer = config.json()
    assert answer["result"] == "CallResult"
    assert [k["key"] for k in answer["payload"]["configurationKey"]] == ["HeartbeatInterval"]
    # SIM-03: the AuthorizationKey is write-only on the station.
    assert answer["payload"]["unknownKey"] == ["AuthorizationKey"]

    variables = await client.post(
        "/api/stations/E2E-201/call",
        json={
            "action": "GetVariables",
            "payload": {
                "getVariableData": [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            },
        },
        headers=stack["admin"],
    )
    assert variables.json()["payload"]["getVariableResult"][0]["attributeStatus"] == "Accepted"

    refused = await client.post(
        "/api/stations/E2E-16/call",
        json={"action": "Reset", "payload": {"type": "Hard"}},
        headers=stack["viewer"],
    )
    assert refused.status_code == 403

    events = await client.get(
        "/api/security-events", params={"station": "E2E-201"}, headers=stack["viewer"]
    )
    assert "StartupOfTheDevice" in [e["type"] for e in events.json()["items"]]


async def test_api_call_to_offline_station_is_a_clear_409(stack: dict[str, Any]) -> None:
    await register_via_api(stack)
    response = await stack["client"].post(
        "/api/stations/E2E-16/call",
        json={"action": "Reset", "payload": {"type": "Soft"}},
        headers=stack["admin"],
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "offline" in response.json()["detail"].lower()


async def test_sec_05_secrets_never_in_database_logs_or_api(
    stack: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    running: RunningCsms = stack["running"]
    client: httpx.AsyncClient = stack["client"]
    await register_via_api(stack)
    await start_station(stack, station_config(running, "E2E-16", OcppVersion.V16))
    await start_station(stack, station_config(running, "E2E-201", OcppVersion.V201))
    # A wrong password is logged as a refusal; the attempted password must not be.
    impostor = StationRunner(
        StationConfig(
            identity="E2E-201",
            ocpp_version=OcppVersion.V201,
            url=running.ws_url,
            password="Wrong-Pass-Word-777",
        )
    )
    assert not (await impostor.connect_once()).admitted

    listed = await client.get("/api/stations", headers=stack["viewer"])
    audit = await running.store.audit.list(limit=100)
    forbidden = [
        KEY_HEX,
        KEY_HEX.lower(),
        PASSWORD,
        "Wrong-Pass-Word-777",
        base64.b64encode(b"E2E-16:" + bytes.fromhex(KEY_HEX)).decode(),
        base64.b64encode(f"E2E-201:{PASSWORD}".encode()).decode(),
    ]
    haystacks = {
        "logs": caplog.text,
        "api": listed.text,
        "audit": repr(audit),
    }
    if running.settings.effective_database_url.startswith("sqlite"):
        # The database file and its WAL: hashes only, never the key or the password.
        for path in stack["data_dir"].glob("chargewarden.db*"):
            haystacks[path.name] = path.read_bytes().decode("latin-1")
        raw_key = bytes.fromhex(KEY_HEX).decode("latin-1")
        forbidden.append(raw_key)
    for where, text in haystacks.items():
        for secret in forbidden:
            assert secret not in text, f"a secret leaked into {where}"
    assert "$argon2id$" not in listed.text
