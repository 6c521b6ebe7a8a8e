"""Job routes (password rotation, profile upgrades, fleets) against a real CSMS with its API on.

Stations are raw WebSocket clients under the test's control (rawstation.py): each test answers
the CSMS's calls itself. The workflows' own behaviour is covered in test_jobs_*.py; here it is
what the API makes of them: roles, status codes, problem documents, bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rawstation import V16, V201, RawStation, boot, connect, register_test_station
from test_api_certificates import Server, assert_problem, serve
from test_jobs_rotation import ROTATION_CALL, rotation_answer
from test_jobs_upgrade import walk_to_switch
from tlskit import tls_settings

from chargewarden.api.app import create_api
from chargewarden.api.context import ApiContext
from chargewarden.api.routes.jobs import job_problem
from chargewarden.config import load_settings
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.records import OperatorRole
from chargewarden.workflows.service import JobError, JobErrorKind

VIEWER, OPERATOR, ADMIN = OperatorRole.VIEWER, OperatorRole.OPERATOR, OperatorRole.ADMIN
FAST_JOBS = {"poll_seconds": 0.1, "reconnect_wait_seconds": 1.0, "answer_wait_seconds": 1.0}
FINISHED = ("succeeded", "failed", "cancelled")


@pytest.fixture
async def server(tmp_path: Path, pki_template: Path) -> AsyncIterator[Server]:
    """With TLS (so profiles 2 and 3 exist) and short job waits."""
    settings = tls_settings(tmp_path, pki_template, call_timeout=2.0, jobs=FAST_JOBS)
    async for running in serve(settings):
        yield running


@pytest.fixture
async def plain_server(csms_settings: dict[str, Any]) -> AsyncIterator[Server]:
    """Without a TLS listener: no upgrades."""
    settings = load_settings(None, **csms_settings).model_copy(update={"wss_port": None})
    async for running in serve(settings):
        yield running


async def api_job(server: Server, job_id: int, *states: str, timeout: float = 20.0) -> Any:
    """GET the job until it is in one of ``states`` (default: finished)."""
    wanted = states or FINISHED
    body: Any = None
    for _ in range(int(timeout / 0.05)):
        response = await server.client.get(f"/api/jobs/{job_id}", headers=server.auth(VIEWER))
        assert response.status_code == 200, response.text
        body = response.json()
        if body["state"] in wanted:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {wanted}: {body}")


async def post(server: Server, path: str, body: Any = None, role: OperatorRole = OPERATOR) -> Any:
    return await server.client.post(path, json=body, headers=server.auth(role))


# -------------------------------------------------------------------------------- auth, roles

ROUTES = [
    ("POST", "/api/stations/CP-1/rotate-password", None),
    ("POST", "/api/stations/CP-1/upgrade", {"to": 2}),
    ("POST", "/api/jobs", {"operation": "rotate-password", "all": True}),
    ("GET", "/api/jobs", None),
    ("GET", "/api/jobs/1", None),
    ("POST", "/api/jobs/1/cancel", None),
]
WRITES = [route for route in ROUTES if route[0] == "POST"]


async def test_every_route_needs_a_token_and_viewers_only_read(server: Server) -> None:
    await register_test_station(server.csms.store, "CP-1", V16, 1)
    for method, path, body in ROUTES:
        for headers in ({}, {"Authorization": "Bearer cw_not-a-real-token"}):
            response = await server.client.request(method, path, json=body, headers=headers)
            assert_problem(response, 401)
    for method, path, body in WRITES:
        response = await server.client.request(method, path, json=body, headers=server.auth(VIEWER))
        assert_problem(response, 403)
    assert await server.csms.store.jobs.list() == []

    # An operator starts, a viewer reads, an admin may do what an operator does.
    job = (await post(server, "/api/stations/CP-1/rotate-password")).json()
    for role in (VIEWER, OPERATOR, ADMIN):
        listing = await server.client.get("/api/jobs", headers=server.auth(role))
        assert listing.status_code == 200 and [j["id"] for j in listing.json()] == [job["id"]]
        one = await server.client.get(f"/api/jobs/{job['id']}", headers=server.auth(role))
        assert one.status_code == 200 and one.json()["id"] == job["id"]
    cancelled = await post(server, f"/api/jobs/{job['id']}/cancel", role=ADMIN)
    assert cancelled.status_code == 202 and cancelled.json()["cancel_requested"] is True


async def test_routes_are_in_the_openapi_document(server: Server) -> None:
    doc = (await server.client.get("/api/openapi.json")).json()
    for path in (
        "/api/stations/{identity}/rotate-password",
        "/api/stations/{identity}/upgrade",
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/cancel",
    ):
        assert path in doc["paths"], path
    assert (
        "application/problem+json"
        in (doc["paths"]["/api/jobs/{job_id}/cancel"]["post"]["responses"]["409"]["content"])
    )


async def test_without_the_job_service_every_route_is_503(server: Server) -> None:
    api = create_api(ApiContext(store=server.csms.store, registry=server.csms.registry))
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        for method, path, body in ROUTES:
            response = await client.request(method, path, json=body, headers=server.auth(ADMIN))
            assert assert_problem(response, 503)["detail"] == "jobs are not available"


def test_job_errors_map_to_statuses() -> None:
    assert job_problem(JobError(JobErrorKind.NOT_FOUND, "no station 'X'")).status == 404
    assert job_problem(JobError(JobErrorKind.CONFLICT, "busy")).status == 409
    invalid = job_problem(JobError(JobErrorKind.INVALID, "bad"))
    assert invalid.status == 422 and invalid.detail == "bad"


# ------------------------------------------------------------------------- a rotation, end to end


@pytest.mark.parametrize("version", [V16, V201])
async def test_rotation_through_the_api_completes_and_shows_no_secret(
    server: Server, version: OcppVersion
) -> None:
    identity = f"API-ROT-{version.value}"
    await register_test_station(server.csms.store, identity, version, 1)
    async with connect(server.csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        started = await post(server, f"/api/stations/{identity}/rotate-password")
        assert started.status_code == 202, started.text
        job = started.json()
        assert (job["kind"], job["station"], job["actor"]) == (
            "rotate-password",
            identity,
            "operator-1",
        )
        assert job["state"] in ("pending", "running") and job["parent_id"] is None
        unique_id, payload = await station.expect_call(ROTATION_CALL[version])
        secret = (
            payload["value"] if version is V16 else payload["setVariableData"][0]["attributeValue"]
        )
        await station.answer(unique_id, rotation_answer(version, "Accepted"))
        done = await api_job(server, job["id"])
    assert done["state"] == "succeeded", done
    assert done["progress"] == "succeeded at step awaiting-answer"
    assert done["children"] is None and done["finished_at"] is not None
    outcomes = [step["outcome"] for step in done["steps"]]
    assert outcomes[0] == "created" and outcomes[-1] == "succeeded"
    assert "started by operator-1" in (done["steps"][0]["detail"] or "")

    listing = await server.client.get(
        "/api/jobs",
        params={"station": identity, "state": "succeeded", "kind": "rotate-password"},
        headers=server.auth(VIEWER),
    )
    assert [j["id"] for j in listing.json()] == [job["id"]]
    # The new secret is in no answer of the API, in no form.
    texts = started.text + listing.text + str(done)
    for form in (secret, secret.lower(), secret.upper()):
        assert form not in texts
    audit = await server.csms.store.audit.list(target=identity)
    assert any(e.action == "job.start" and e.actor == "operator-1" for e in audit)


# ------------------------------------------------------------------------------ errors


async def test_refusals_are_problems(server: Server) -> None:
    store = server.csms.store
    await register_test_station(store, "P1", V16, 1)
    await register_test_station(store, "P2", V201, 2)
    await register_test_station(store, "P3", V201, 3)

    body = assert_problem(await post(server, "/api/stations/NOPE/rotate-password"), 404)
    assert body["type"].endswith("unknown-station") and "NOPE" in body["detail"]
    assert_problem(await post(server, "/api/stations/NOPE/upgrade", {"to": 2}), 404)
    body = assert_problem(await post(server, "/api/stations/P3/rotate-password"), 409, "conflict")
    assert "client certificate" in body["detail"]
    body = assert_problem(await post(server, "/api/stations/P2/upgrade", {"to": 2}), 409)
    assert "already on security profile 2" in body["detail"]

    first = await post(server, "/api/stations/P1/rotate-password")
    assert first.status_code == 202
    body = assert_problem(await post(server, "/api/stations/P1/upgrade", {"to": 2}), 409)
    assert f"already has job {first.json()['id']}" in body["detail"]

    for bad in ({"to": 4}, {"to": 1}, {"to": True}, {"to": "2"}, {}, {"to": 2, "slot": 101}):
        assert_problem(await post(server, "/api/stations/P1/upgrade", bad), 422)
    assert_problem(await post(server, "/api/stations/P1/upgrade", {"to": 2, "x": 1}), 422)

    for path in ("/api/jobs/999", "/api/jobs/999/cancel"):
        method = "POST" if path.endswith("cancel") else "GET"
        response = await server.client.request(method, path, headers=server.auth(OPERATOR))
        body = assert_problem(response, 404, "unknown-job")
        assert body["detail"] == "no job 999"
    for path in ("/api/jobs/abc", "/api/jobs/0", f"/api/jobs/{2**64}"):
        assert_problem(await server.client.get(path, headers=server.auth(VIEWER)), 422)
    for query in (
        {"state": "bogus"},
        {"kind": "bogus"},
        {"limit": "0"},
        {"offset": "-1"},
        {"parent": "x"},
    ):
        response = await server.client.get("/api/jobs", params=query, headers=server.auth(VIEWER))
        assert_problem(response, 422)
    for query, missing in (({"station": "NOPE"}, "NOPE"), ({"parent": "999"}, "no job 999")):
        response = await server.client.get("/api/jobs", params=query, headers=server.auth(VIEWER))
        assert missing in assert_problem(response, 404)["detail"]


async def test_upgrade_without_tls_is_a_conflict(plain_server: Server) -> None:
    await register_test_station(plain_server.csms.store, "NO-TLS", V16, 1)
    response = await post(plain_server, "/api/stations/NO-TLS/upgrade", {"to": 2})
    assert "without a TLS listener" in assert_problem(response, 409)["detail"]


# ----------------------------------------------------------------- an upgrade, then cancel


async def test_upgrade_through_the_api_reported_then_cancel_withdraws_the_pending_profile(
    server: Server,
) -> None:
    identity = "API-UPG"
    store = server.csms.store
    await register_test_station(store, identity, V16, 1)
    async with connect(server.csms, identity, V16) as ws:
        station = RawStation(ws)
        await boot(station, V16)
        started = await post(server, f"/api/stations/{identity}/upgrade", {"to": 2, "slot": 3})
        assert started.status_code == 202, started.text
        job = started.json()
        assert job["kind"] == "upgrade-profile" and job["params"] == {"to": 2, "slot": 3}
        await walk_to_switch(server.csms, station, V16)
        waiting = await api_job(server, job["id"], "waiting-for-station")
        assert waiting["step"] == "await-reconnect"
    record = await store.stations.get(identity)
    assert record is not None and record.pending_profile == 2

    # The station never comes back on profile 2: reported once, and the job keeps waiting.
    async def reported() -> list[Any]:
        response = await server.client.get(
            "/api/alerts", params={"station": identity}, headers=server.auth(VIEWER)
        )
        return [a for a in response.json() if a["kind"] == "upgrade.overdue"]

    for _ in range(200):
        if await reported():
            break
        await asyncio.sleep(0.05)
    assert await reported()
    overdue = await api_job(server, job["id"], "waiting-for-station")
    assert "Cancel the job to withdraw profile 2" in overdue["message"]

    cancel = await post(server, f"/api/jobs/{job['id']}/cancel")
    assert cancel.status_code == 202 and cancel.json()["cancel_requested"] is True
    done = await api_job(server, job["id"])
    assert done["state"] == "cancelled" and "withdrawn" in done["message"]
    assert [s["outcome"] for s in done["steps"]][-2:] == ["cancel-requested", "cancelled"]
    record = await store.stations.get(identity)
    assert record is not None and (record.security_profile, record.pending_profile) == (1, None)
    again = assert_problem(await post(server, f"/api/jobs/{job['id']}/cancel"), 409)
    assert "already finished (cancelled)" in again["detail"]


# ------------------------------------------------------------------------------- fleets


async def test_fleet_rotation_with_skipped_stations_progress_listing_and_cancel(
    server: Server,
) -> None:
    store = server.csms.store
    for identity in ("FL-1", "FL-2"):
        await register_test_station(store, identity, V201, 1)
    await register_test_station(store, "FL-P3", V201, 3)
    await register_test_station(store, "FL-16", V16, 1)

    started = await post(
        server,
        "/api/jobs",
        {"operation": "rotate-password", "ocpp_version": "2.0.1", "concurrency": 1},
    )
    assert started.status_code == 202, started.text
    fleet, skipped = started.json()["job"], started.json()["skipped"]
    assert fleet["kind"] == "fleet" and fleet["station"] is None
    assert fleet["params"] == {"operation": "rotate-password", "concurrency": 1}
    assert len(skipped) == 1 and "FL-P3" in skipped[0] and "client certificate" in skipped[0]

    # Offline stations wait without taking a slot.
    waiting = await api_job(server, fleet["id"], "waiting-for-station")
    assert waiting["children"] == {
        "pending": 2,
        "running": 0,
        "waiting-for-station": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert waiting["progress"] == "0/2 finished, 2 pending"
    assert "2 waiting for their station to connect" in waiting["message"]

    viewer = server.auth(VIEWER)
    top = (await server.client.get("/api/jobs", headers=viewer)).json()
    assert [j["id"] for j in top] == [fleet["id"]]  # children are not top-level
    kids = await server.client.get("/api/jobs", params={"parent": fleet["id"]}, headers=viewer)
    assert sorted(j["station"] for j in kids.json()) == ["FL-1", "FL-2"]
    assert {j["parent_id"] for j in kids.json()} == {fleet["id"]}
    mine = await server.client.get("/api/jobs", params={"station": "FL-1"}, headers=viewer)
    assert [j["station"] for j in mine.json()] == ["FL-1"]
    body = assert_problem(await post(server, "/api/stations/FL-1/rotate-password"), 409)
    assert "already has job" in body["detail"]

    cancel = await post(server, f"/api/jobs/{fleet['id']}/cancel")
    assert cancel.status_code == 202
    done = await api_job(server, fleet["id"])
    assert done["state"] == "cancelled"
    assert done["children"]["cancelled"] == 2 and done["progress"].startswith("2/2 finished")
    assert_problem(await post(server, f"/api/jobs/{fleet['id']}/cancel"), 409)


async def test_fleet_upgrade_leaves_out_stations_already_there(server: Server) -> None:
    store = server.csms.store
    await register_test_station(store, "UP-1", V16, 1)
    await register_test_station(store, "UP-2", V201, 2)
    started = await post(
        server, "/api/jobs", {"operation": "upgrade-profile", "to": 2, "all": True}
    )
    assert started.status_code == 202, started.text
    assert started.json()["job"]["params"]["to"] == 2
    (reason,) = started.json()["skipped"]
    assert "UP-2" in reason and "already on security profile 2" in reason
    kids = await server.client.get(
        "/api/jobs", params={"parent": started.json()["job"]["id"]}, headers=server.auth(VIEWER)
    )
    assert [(j["station"], j["kind"], j["params"]) for j in kids.json()] == [
        ("UP-1", "upgrade-profile", {"to": 2})
    ]


async def test_fleet_requests_that_are_refused(server: Server) -> None:
    await register_test_station(server.csms.store, "ONLY-P3", V16, 3)
    for body, fragment in (
        ({}, "operation"),
        ({"operation": "rotate-password"}, "name the stations"),
        ({"operation": "rotate-password", "all": True, "stations": ["A"]}, "not both"),
        ({"operation": "rotate-password", "all": True, "to": 2}, "only for upgrade-profile"),
        ({"operation": "upgrade-profile", "all": True}, "needs a target profile"),
        ({"operation": "upgrade-profile", "all": True, "to": 4}, "to"),
        ({"operation": "fleet", "all": True}, "operation"),
        ({"operation": "rotate-password", "all": True, "concurrency": 0}, "concurrency"),
        ({"operation": "rotate-password", "all": "yes"}, "all"),
        ({"operation": "rotate-password", "stations": []}, "stations"),
        ({"operation": "rotate-password", "stations": ["x" * 49]}, "1 to 48"),
        ({"operation": "rotate-password", "profile": 4}, "profile"),
        ({"operation": "rotate-password", "ocpp_version": "3.0"}, "ocpp_version"),
    ):
        body_out = assert_problem(await post(server, "/api/jobs", body), 422)
        assert fragment in body_out["detail"], (body, body_out)
    missing = assert_problem(
        await post(server, "/api/jobs", {"operation": "rotate-password", "stations": ["NOPE"]}), 404
    )
    assert "NOPE" in missing["detail"]
    none = assert_problem(
        await post(server, "/api/jobs", {"operation": "rotate-password", "all": True}), 409
    )
    assert "no station is eligible" in none["detail"] and "ONLY-P3" in none["detail"]
    assert await server.csms.store.jobs.list() == []
