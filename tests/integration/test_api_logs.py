"""Log routes (LOG-01) against a real CSMS with its API, CA and file-transfer listener: roles,
status codes, problem documents, bodies, and never an upload token in a response."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rawstation import V16, V201, register_test_station
from test_api_certificates import Server, assert_problem, serve
from test_api_jobs import api_job
from test_logs_retrieval import SECURITY_LOG, get_log_call, online, report, token_of, upload
from tlskit import tls_settings

from chargewarden.config import load_settings
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.records import OperatorRole

VIEWER, OPERATOR, ADMIN = OperatorRole.VIEWER, OperatorRole.OPERATOR, OperatorRole.ADMIN


@pytest.fixture
async def server(tmp_path: Path, pki_template: Path) -> AsyncIterator[Server]:
    settings = tls_settings(tmp_path, pki_template, call_timeout=2.0, jobs={"poll_seconds": 0.1})
    async for running in serve(settings):
        yield running


@pytest.fixture
async def plain_server(csms_settings: dict[str, Any]) -> AsyncIterator[Server]:
    """Without TLS, hence without the CA and file transfer."""
    settings = load_settings(None, **csms_settings).model_copy(update={"wss_port": None})
    async for running in serve(settings):
        yield running


async def start(server: Server, identity: str, body: Any, role: OperatorRole = OPERATOR) -> Any:
    return await server.client.post(
        f"/api/stations/{identity}/logs", json=body, headers=server.auth(role)
    )


class Seen:
    """Every API response body of a test, to show none of them holds the token."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, response: httpx.Response) -> httpx.Response:
        self.texts.append(response.text)
        return response


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_079_fetch_through_the_api_and_download_the_file_without_ever_seeing_a_token(
    server: Server, version: OcppVersion
) -> None:
    identity, seen = f"API-LOG-{version.value}", Seen()
    async with online(server.csms, identity, version) as station:
        started = seen(await start(server, identity, {"type": "security"}))
        assert started.status_code == 202, started.text
        body = started.json()
        request_id, job_id = body["request_id"], body["job"]["id"]
        assert body["job"]["kind"] == "fetch-log" and body["job"]["station"] == identity
        payload = await get_log_call(station)
        assert payload["requestId"] == request_id
        location = payload["log"]["remoteLocation"]
        await report(station, "Uploading", request_id)
        assert (await upload(server.csms, location, SECURITY_LOG)).status_code == 201
        await report(station, "Uploaded", request_id)
        job = await api_job(server, job_id)
        assert job["state"] == "succeeded", job
        seen.texts.append(str(job))

    detail = seen(await server.client.get(f"/api/logs/{request_id}", headers=server.auth(VIEWER)))
    assert detail.status_code == 200
    record = detail.json()
    assert record["state"] == "uploaded" and record["type"] == "security"
    assert record["size"] == len(SECURITY_LOG) and record["has_file"] is True
    assert record["sha256"] == hashlib.sha256(SECURITY_LOG).hexdigest()
    assert [h["status"] for h in record["history"]] == ["GetLog Accepted", "Uploading", "Uploaded"]
    assert record["job_id"] == job_id and record["actor"] == f"{OPERATOR}-1"

    listing = seen(await server.client.get("/api/logs", headers=server.auth(VIEWER)))
    assert [r["request_id"] for r in listing.json()] == [request_id]
    only = seen(
        await server.client.get(
            "/api/logs",
            params={"station": identity, "type": "diagnostics"},
            headers=server.auth(VIEWER),
        )
    )
    assert only.json() == []

    # Viewers read the record, not the file: a station's log can hold personal data.
    path = f"/api/logs/{request_id}/file"
    assert_problem(await server.client.get(path, headers=server.auth(VIEWER)), 403)
    for role in (OPERATOR, ADMIN):
        file = await server.client.get(path, headers=server.auth(role))
        assert file.status_code == 200 and file.content == SECURITY_LOG
        assert file.headers["content-type"] == "application/octet-stream"
        assert "attachment" in file.headers["content-disposition"]
    steps = seen(await server.client.get(f"/api/jobs/{job_id}", headers=server.auth(VIEWER)))
    assert steps.status_code == 200

    token = token_of(location)
    assert all(token not in text for text in seen.texts)
    assert all("/files/logs/" not in text for text in seen.texts)
    audit = await server.csms.store.audit.list(target=identity)
    assert {"log.fetch", "log.download"} <= {a.action for a in audit}


async def test_roles_and_problems(server: Server) -> None:
    await register_test_station(server.csms.store, "API-ROLES", V201, 1)
    for headers in ({}, {"Authorization": "Bearer cw_not-a-real-token"}):
        response = await server.client.post(
            "/api/stations/API-ROLES/logs", json={"type": "security"}, headers=headers
        )
        assert_problem(response, 401)
        assert_problem(await server.client.get("/api/logs", headers=headers), 401)
    assert_problem(await start(server, "API-ROLES", {"type": "security"}, VIEWER), 403)
    assert await server.csms.store.log_requests.list() == []

    assert_problem(await start(server, "NO-SUCH", {"type": "security"}), 404, "unknown-station")
    for bad in (
        {"type": "kernel"},
        {},
        {"type": "security", "since": "2025-01-01T00:00:00"},  # no zone
        {"type": "security", "extra": 1},
        {"type": "security", "since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
    ):
        assert_problem(await start(server, "API-ROLES", bad), 422)

    first = await start(server, "API-ROLES", {"type": "diagnostics"})
    assert first.status_code == 202
    second = await start(server, "API-ROLES", {"type": "security"})
    problem = assert_problem(second, 409, "conflict")
    assert "already has a log fetch" in problem["detail"]
    request_id = first.json()["request_id"]
    # The station is offline: nothing is stored yet.
    file = await server.client.get(f"/api/logs/{request_id}/file", headers=server.auth(OPERATOR))
    assert "no stored file" in assert_problem(file, 409)["detail"]
    unknown = await server.client.get("/api/logs/424242", headers=server.auth(VIEWER))
    assert_problem(unknown, 404, "unknown-log-request")
    assert_problem(await server.client.get("/api/logs/0", headers=server.auth(VIEWER)), 422)
    assert_problem(
        await server.client.get(
            "/api/logs", params={"station": "NO-SUCH"}, headers=server.auth(VIEWER)
        ),
        404,
    )
    replaced = await start(server, "API-ROLES", {"type": "security", "replace": True})
    assert replaced.status_code == 202 and replaced.json()["request_id"] != request_id
    old = await server.client.get(f"/api/logs/{request_id}", headers=server.auth(VIEWER))
    assert old.json()["state"] == "cancelled"


async def test_file_transfer_off_is_503_with_a_clear_message(plain_server: Server) -> None:
    server = plain_server
    await register_test_station(server.csms.store, "API-OFF", V16, 1)
    problem = assert_problem(await start(server, "API-OFF", {"type": "security"}), 503)
    assert "file-transfer" in problem["detail"]
    file = await server.client.get("/api/logs/1/file", headers=server.auth(OPERATOR))
    assert_problem(file, 503)
    listing = await server.client.get("/api/logs", headers=server.auth(VIEWER))
    assert listing.status_code == 200 and listing.json() == []


async def test_routes_are_in_the_openapi_document(server: Server) -> None:
    doc = (await server.client.get("/api/openapi.json")).json()
    for path in (
        "/api/stations/{identity}/logs",
        "/api/logs",
        "/api/logs/{request_id}",
        "/api/logs/{request_id}/file",
    ):
        assert path in doc["paths"], path
    responses = doc["paths"]["/api/stations/{identity}/logs"]["post"]["responses"]
    assert "application/problem+json" in responses["409"]["content"]
