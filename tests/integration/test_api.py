"""HTTP API against the real store (SQLite and PostgreSQL) and an in-memory registry.

The only stand-in is ``ScriptedStationLink``: it takes the place of the network edge (a live
WebSocket connection) and answers calls from a script. The end-to-end test against a simulated
station over real sockets lives with the gateway tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from chargewarden.api.app import MAX_BODY_SIZE, create_api
from chargewarden.api.context import ApiContext
from chargewarden.api.operators import OperatorError, create_operator
from chargewarden.gateway.registry import ConnectionInfo, InMemoryRegistry
from chargewarden.rpc.errors import ErrorKind, RpcError
from chargewarden.rpc.session import (
    CallErrorReceived,
    CallTimeout,
    ConnectionGone,
    InvalidResponse,
)
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.tokens import new_token, split_lookup
from chargewarden.store import normalize_database_url
from chargewarden.store.db import build_engine
from chargewarden.store.models import SecurityEventRow
from chargewarden.store.records import (
    EventSource,
    OperatorRole,
    SecurityEventRecord,
)

PROBLEM = "application/problem+json"
KEY_16 = "0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF"  # OCPP-J 1.6 §6.2.2 example key
SECRET_AUTH_KEY = "DEADBEEFDEADBEEFDEADBEEFDEADBEEFDEADBEEF"


# ------------------------------------------------------------------------------ stand-in edge


@dataclass
class ScriptedStationLink:
    """Test stand-in for a live station connection (the network edge, not a component).

    ``answer`` is either the CALLRESULT payload to return or an exception to raise.
    """

    info: ConnectionInfo
    answer: dict[str, Any] | BaseException = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any], float | None]] = field(default_factory=list)

    async def call(
        self, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:  # noqa: ASYNC109
        self.calls.append((action, payload, timeout))
        await asyncio.sleep(0)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    async def close(self, code: int = 1000, reason: str = "") -> None:
        return None


def link_for(
    identity: str,
    version: OcppVersion = OcppVersion.V16,
    answer: dict[str, Any] | BaseException | None = None,
) -> ScriptedStationLink:
    info = ConnectionInfo(
        identity=identity,
        ocpp_version=version,
        security_profile=1,
        connected_since=datetime.now(UTC),
        peer="192.0.2.10:50000",
        transport="ws",
    )
    return ScriptedStationLink(info=info, answer={} if answer is None else answer)


# ---------------------------------------------------------------------------------- fixtures


@dataclass
class Api:
    client: httpx.AsyncClient
    store: Any
    registry: InMemoryRegistry
    tokens: dict[OperatorRole, str]

    def auth(self, role: OperatorRole) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


NAMES = {
    OperatorRole.VIEWER: "vera.viewer",
    OperatorRole.OPERATOR: "otto-operator",
    OperatorRole.ADMIN: "ada@admins",
}


@pytest.fixture
async def api(store: Any) -> AsyncIterator[Api]:
    registry = InMemoryRegistry()
    tokens = {}
    for role, name in NAMES.items():
        _, token = await create_operator(store, name, role, actor="test-setup")
        tokens[role] = token
    app = create_api(ApiContext(store=store, registry=registry, call_timeout=5.0))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cw.test") as client:
        yield Api(client=client, store=store, registry=registry, tokens=tokens)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in response.text
    return body


async def add_station(api: Api, identity: str, version: str = "1.6", **extra: Any) -> dict:
    body: dict[str, Any] = {"identity": identity, "ocpp_version": version, "security_profile": 1}
    if version == "1.6" and "generate_secret" not in extra:
        body["auth_key"] = KEY_16
    if version == "2.0.1" and "generate_secret" not in extra:
        body["password"] = "correct-horse-battery-staple"
    body.update(extra)
    response = await api.client.post(
        "/api/stations", json=body, headers=api.auth(OperatorRole.ADMIN)
    )
    assert response.status_code == 201, response.text
    return response.json()


# ------------------------------------------------------------------------- health and openapi


async def test_healthz_needs_no_auth(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_openapi_document_is_served(api: Api) -> None:
    response = await api.client.get("/api/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/healthz",
        "/api/stations",
        "/api/stations/{identity}",
        "/api/connections",
        "/api/security-events",
        "/api/stations/{identity}/call",
    ):
        assert path in doc["paths"], path
    assert doc["components"]["securitySchemes"]["OperatorToken"]["scheme"].lower() == "bearer"
    create = doc["paths"]["/api/stations"]["post"]
    assert PROBLEM in create["responses"]["409"]["content"]
    assert PROBLEM in create["responses"]["422"]["content"]
    created = doc["components"]["schemas"]["StationCreated"]["properties"]
    assert "once" in created["generated_secret"]["description"].lower()
    # Secrets are write-only: no response schema has a credential or hash field.
    for name in ("StationOut", "StationCreated"):
        props = doc["components"]["schemas"][name]["properties"]
        assert not {"auth_key", "password", "credential_hash", "pending_credential_hash"} & set(
            props
        )
    docs = await api.client.get("/api/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


# ------------------------------------------------------------------------------------- auth

ROUTES = [
    ("GET", "/api/stations", None),
    ("POST", "/api/stations", {"identity": "CP1", "ocpp_version": "1.6", "security_profile": 1}),
    ("GET", "/api/stations/CP1", None),
    ("GET", "/api/connections", None),
    ("GET", "/api/security-events", None),
    ("POST", "/api/stations/CP1/call", {"action": "Reset", "payload": {"type": "Soft"}}),
]


async def test_every_route_needs_a_valid_token(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    real = api.tokens[OperatorRole.ADMIN]
    unknown, _, _ = new_token()
    tampered = real[:-1] + ("A" if real[-1] != "A" else "B")
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {unknown}"},
        {"Authorization": f"Bearer {tampered}"},
        {"Authorization": f"Basic {real}"},
        {"Authorization": "Bearer " + "x" * 5000},
    ]
    caplog.set_level(logging.INFO, logger="chargewarden.api")
    for method, path, body in ROUTES:
        for headers in bad_headers:
            response = await api.client.request(method, path, json=body, headers=headers)
            assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")
    # Failures are logged, the token never is.
    logged = caplog.text
    assert "authentication failed" in logged
    assert real not in logged and tampered not in logged and unknown not in logged
    assert split_lookup(real) not in logged
    # Nothing was created by the refused POST.
    assert await api.store.stations.get("CP1") is None


async def test_roles_are_enforced(api: Api) -> None:
    body = {
        "identity": "CP-ROLES",
        "ocpp_version": "1.6",
        "security_profile": 1,
        "auth_key": KEY_16,
    }
    for role in (OperatorRole.VIEWER, OperatorRole.OPERATOR):
        response = await api.client.post("/api/stations", json=body, headers=api.auth(role))
        assert_problem(response, 403)
    assert await api.store.stations.get("CP-ROLES") is None

    await add_station(api, "CP-ROLES")
    call = {"action": "Reset", "payload": {"type": "Soft"}}
    response = await api.client.post(
        "/api/stations/CP-ROLES/call", json=call, headers=api.auth(OperatorRole.VIEWER)
    )
    assert_problem(response, 403)
    # operator and admin may call (the station is offline, so they get 409, not 403)
    for role in (OperatorRole.OPERATOR, OperatorRole.ADMIN):
        response = await api.client.post(
            "/api/stations/CP-ROLES/call", json=call, headers=api.auth(role)
        )
        assert_problem(response, 409)
    # every role reads
    for role in OperatorRole:
        for path in (
            "/api/stations",
            "/api/stations/CP-ROLES",
            "/api/connections",
            "/api/security-events",
        ):
            response = await api.client.get(path, headers=api.auth(role))
            assert response.status_code == 200, (role, path, response.text)


# ---------------------------------------------------------------------------------- stations


def assert_no_secret_fields(station: dict[str, Any]) -> None:
    for key in station:
        assert "hash" not in key and key not in ("auth_key", "password"), key


async def test_admin_registers_a_16_station_with_a_hex_key(api: Api) -> None:
    response = await api.client.post(
        "/api/stations",
        json={
            "identity": "AL1000",
            "ocpp_version": "1.6",
            "security_profile": 1,
            "auth_key": KEY_16,
            "strict_password": True,
        },
        headers=api.auth(OperatorRole.ADMIN),
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/api/stations/AL1000"
    assert response.headers["cache-control"] == "no-store"
    station = response.json()
    assert station["identity"] == "AL1000"
    assert station["ocpp_version"] == "1.6"
    assert station["security_profile"] == 1
    assert station["has_credential"] is True
    assert station["has_pending_credential"] is False
    assert station["strict_password"] is True
    assert station["connected"] is False
    assert station["generated_secret"] is None
    assert_no_secret_fields(station)
    assert KEY_16 not in response.text and KEY_16.lower() not in response.text

    got = await api.client.get("/api/stations/AL1000", headers=api.auth(OperatorRole.VIEWER))
    assert got.status_code == 200
    assert "generated_secret" not in got.json()
    assert_no_secret_fields(got.json())
    assert KEY_16 not in got.text and KEY_16.lower() not in got.text

    audit = await api.store.audit.list(limit=50, offset=0, target="AL1000")
    assert audit, "registering a station is audited"
    assert all(entry.actor == NAMES[OperatorRole.ADMIN] for entry in audit)
    assert KEY_16 not in repr(audit) and KEY_16.lower() not in repr(audit)


async def test_generated_201_secret_is_shown_once(api: Api) -> None:
    response = await api.client.post(
        "/api/stations",
        json={
            "identity": "CS-201",
            "ocpp_version": "2.0.1",
            "security_profile": 2,
            "generate_secret": True,
        },
        headers=api.auth(OperatorRole.ADMIN),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["generated_secret"]
    assert isinstance(secret, str) and 16 <= len(secret) <= 40
    assert created["has_credential"] is True
    assert created["ocpp_version"] == "2.0.1"
    assert response.headers["cache-control"] == "no-store"

    for path in ("/api/stations/CS-201", "/api/stations"):
        got = await api.client.get(path, headers=api.auth(OperatorRole.ADMIN))
        assert got.status_code == 200
        assert secret not in got.text
        assert "generated_secret" not in got.text
    [listed] = [
        s
        for s in (
            await api.client.get("/api/stations", headers=api.auth(OperatorRole.VIEWER))
        ).json()
        if s["identity"] == "CS-201"
    ]
    assert listed["has_credential"] is True
    assert_no_secret_fields(listed)

    audit = await api.store.audit.list(limit=50, offset=0, target="CS-201")
    assert audit and all(entry.actor == NAMES[OperatorRole.ADMIN] for entry in audit)
    assert secret not in repr(audit)
    record = await api.store.stations.get("CS-201")
    assert secret not in repr(record)


async def test_duplicate_station_is_409(api: Api) -> None:
    await add_station(api, "DUP-1")
    response = await api.client.post(
        "/api/stations",
        json={
            "identity": "DUP-1",
            "ocpp_version": "2.0.1",
            "security_profile": 1,
            "generate_secret": True,
        },
        headers=api.auth(OperatorRole.ADMIN),
    )
    body = assert_problem(response, 409)
    assert "DUP-1" in body["detail"]
    got = await api.client.get("/api/stations/DUP-1", headers=api.auth(OperatorRole.VIEWER))
    assert got.json()["ocpp_version"] == "1.6"


@pytest.mark.parametrize(
    ("version", "secret_field", "bad_secret"),
    [
        ("1.6", "auth_key", "Z" * 40),  # not hex
        ("1.6", "auth_key", "0102030405"),  # too short: 5 bytes
        ("2.0.1", "password", "short-pw"),  # < 16 characters
    ],
)
async def test_bad_secret_is_422_without_echo(
    api: Api, version: str, secret_field: str, bad_secret: str
) -> None:
    response = await api.client.post(
        "/api/stations",
        json={
            "identity": "BAD-KEY",
            "ocpp_version": version,
            "security_profile": 1,
            secret_field: bad_secret,
        },
        headers=api.auth(OperatorRole.ADMIN),
    )
    assert_problem(response, 422)
    assert bad_secret not in response.text
    assert await api.store.stations.get("BAD-KEY") is None


async def test_request_validation_is_a_problem_without_values(api: Api) -> None:
    response = await api.client.post(
        "/api/stations",
        json={
            "identity": "V1",
            "ocpp_version": "3.0",
            "security_profile": 9,
            "auth_key": {"nested": SECRET_AUTH_KEY},
        },
        headers=api.auth(OperatorRole.ADMIN),
    )
    body = assert_problem(response, 422)
    assert "security_profile" in body["detail"] and "ocpp_version" in body["detail"]
    assert {tuple(e["loc"]) for e in body["errors"]} >= {
        ("body", "security_profile"),
        ("body", "ocpp_version"),
        ("body", "auth_key"),
    }
    assert SECRET_AUTH_KEY not in response.text
    assert all("input" not in e for e in body["errors"])

    not_json = await api.client.post(
        "/api/stations",
        content=b"{not json",
        headers={**api.auth(OperatorRole.ADMIN), "Content-Type": "application/json"},
    )
    assert_problem(not_json, 422)


async def test_unknown_station_route_and_method_are_problems(api: Api) -> None:
    headers = api.auth(OperatorRole.VIEWER)
    body = assert_problem(await api.client.get("/api/stations/NOPE", headers=headers), 404)
    assert "NOPE" in body["detail"]
    assert_problem(await api.client.get("/api/nothing-here", headers=headers), 404)
    assert_problem(await api.client.get("/nothing-here"), 404)
    response = await api.client.delete("/api/stations", headers=headers)
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_oversized_body_is_413_problem(api: Api) -> None:
    headers = {**api.auth(OperatorRole.ADMIN), "Content-Type": "application/json"}
    declared = await api.client.post(
        "/api/stations",
        content=b'{"identity": "' + b"x" * (MAX_BODY_SIZE + 10) + b'"}',
        headers=headers,
    )
    assert_problem(declared, 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        yield b'{"identity": "'
        for _ in range(MAX_BODY_SIZE // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    streamed = await api.client.post("/api/stations", content=chunks(), headers=headers)
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413)


# ------------------------------------------------------------------------------- connections


async def test_connections_and_connected_flag(api: Api) -> None:
    await add_station(api, "LIVE-1")
    await add_station(api, "IDLE-1")
    api.registry.register(link_for("LIVE-1"))
    response = await api.client.get("/api/connections", headers=api.auth(OperatorRole.VIEWER))
    assert response.status_code == 200
    [conn] = response.json()
    assert conn["identity"] == "LIVE-1"
    assert conn["ocpp_version"] == "1.6"
    assert conn["security_profile"] == 1
    assert conn["peer"] == "192.0.2.10:50000"
    assert conn["transport"] == "ws"
    assert datetime.fromisoformat(conn["connected_since"])

    live = await api.client.get("/api/stations/LIVE-1", headers=api.auth(OperatorRole.VIEWER))
    idle = await api.client.get("/api/stations/IDLE-1", headers=api.auth(OperatorRole.VIEWER))
    assert live.json()["connected"] is True
    assert idle.json()["connected"] is False
    listed = (await api.client.get("/api/stations", headers=api.auth(OperatorRole.VIEWER))).json()
    assert {s["identity"]: s["connected"] for s in listed} == {"LIVE-1": True, "IDLE-1": False}


# ------------------------------------------------------------------------------------ events


async def test_security_events_paging_and_filters(api: Api) -> None:
    await add_station(api, "EV-1")
    await add_station(api, "EV-2")
    base = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(7):
        await api.store.events.add(
            SecurityEventRecord(
                type="FirmwareUpdated" if i % 2 == 0 else "InvalidMessages",
                source=EventSource.STATION,
                critical=i % 2 == 0,
                station_identity="EV-1",
                occurred_at=base + timedelta(minutes=i),
                tech_info=f"event {i}",
                ocpp_version=OcppVersion.V16,
            )
        )
    for i in range(3):
        await api.store.events.add(
            SecurityEventRecord(
                type="InvalidChargePointCertificate",
                source=EventSource.CSMS,
                critical=True,
                station_identity="EV-2",
                occurred_at=base + timedelta(hours=1, minutes=i),
                peer_address="198.51.100.7",
            )
        )
    headers = api.auth(OperatorRole.VIEWER)

    everything = (await api.client.get("/api/security-events", headers=headers)).json()
    assert everything["total"] == 10 and len(everything["items"]) == 10
    assert everything["limit"] == 100 and everything["offset"] == 0

    page1 = (
        await api.client.get("/api/security-events", params={"limit": 4}, headers=headers)
    ).json()
    page2 = (
        await api.client.get(
            "/api/security-events", params={"limit": 4, "offset": 4}, headers=headers
        )
    ).json()
    page3 = (
        await api.client.get(
            "/api/security-events", params={"limit": 4, "offset": 8}, headers=headers
        )
    ).json()
    assert [len(p["items"]) for p in (page1, page2, page3)] == [4, 4, 2]
    assert all(p["total"] == 10 for p in (page1, page2, page3))
    ids = [e["id"] for p in (page1, page2, page3) for e in p["items"]]
    assert len(set(ids)) == 10
    assert ids == [e["id"] for e in everything["items"]]

    ev1 = (
        await api.client.get("/api/security-events", params={"station": "EV-1"}, headers=headers)
    ).json()
    assert ev1["total"] == 7 and {e["station"] for e in ev1["items"]} == {"EV-1"}
    crit = (
        await api.client.get(
            "/api/security-events", params={"station": "EV-1", "critical": "true"}, headers=headers
        )
    ).json()
    assert crit["total"] == 4 and all(e["critical"] for e in crit["items"])
    assert {e["type"] for e in crit["items"]} == {"FirmwareUpdated"}
    csms = (
        await api.client.get("/api/security-events", params={"source": "csms"}, headers=headers)
    ).json()
    assert csms["total"] == 3
    assert all(e["source"] == "csms" and e["station"] == "EV-2" for e in csms["items"])
    assert csms["items"][0]["peer_address"] == "198.51.100.7"

    for params in (
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"source": "somebody"},
        {"critical": "perhaps"},
    ):
        assert_problem(
            await api.client.get("/api/security-events", params=params, headers=headers), 422
        )


# ------------------------------------------------------------------------------------- calls


async def test_call_unknown_station_is_404(api: Api) -> None:
    response = await api.client.post(
        "/api/stations/GHOST/call",
        json={"action": "Reset", "payload": {"type": "Soft"}},
        headers=api.auth(OperatorRole.OPERATOR),
    )
    assert_problem(response, 404)


async def test_call_offline_station_is_409(api: Api) -> None:
    await add_station(api, "OFF-1")
    response = await api.client.post(
        "/api/stations/OFF-1/call",
        json={"action": "Reset", "payload": {"type": "Soft"}},
        headers=api.auth(OperatorRole.OPERATOR),
    )
    body = assert_problem(response, 409)
    assert "offline" in body["detail"]


async def test_call_unknown_action_is_422(api: Api) -> None:
    await add_station(api, "ACT-16")
    api.registry.register(link_for("ACT-16"))
    headers = api.auth(OperatorRole.OPERATOR)
    # SetVariables exists in 2.0.1, not in 1.6.
    response = await api.client.post(
        "/api/stations/ACT-16/call", json={"action": "SetVariables", "payload": {}}, headers=headers
    )
    body = assert_problem(response, 422)
    assert "SetVariables" in body["detail"] and "1.6" in body["detail"]
    response = await api.client.post(
        "/api/stations/ACT-16/call",
        json={"action": "../etc/passwd", "payload": {}},
        headers=headers,
    )
    assert_problem(response, 422)
    assert api.registry.get("ACT-16").calls == []  # type: ignore[union-attr]


async def test_call_invalid_payload_is_422_without_values(api: Api) -> None:
    await add_station(api, "PAY-16")
    link = link_for("PAY-16")
    api.registry.register(link)
    response = await api.client.post(
        "/api/stations/PAY-16/call",
        json={
            "action": "ChangeConfiguration",
            "payload": {"key": "AuthorizationKey", "value": SECRET_AUTH_KEY, "extra": 1},
        },
        headers=api.auth(OperatorRole.OPERATOR),
    )
    body = assert_problem(response, 422)
    assert "ChangeConfiguration" in body["detail"]
    assert SECRET_AUTH_KEY not in response.text
    response = await api.client.post(
        "/api/stations/PAY-16/call",
        json={"action": "Reset", "payload": {"type": "Sideways"}},
        headers=api.auth(OperatorRole.OPERATOR),
    )
    body = assert_problem(response, 422)
    assert "type" in body["detail"] and "Sideways" not in response.text
    assert link.calls == []
    audit = await api.store.audit.list(limit=10, offset=0, target="PAY-16")
    assert not [entry for entry in audit if entry.action == "station.call"]


async def test_call_result_is_returned_and_audited_without_payload(api: Api) -> None:
    await add_station(api, "RES-16")
    link = link_for("RES-16", answer={"status": "Accepted"})
    api.registry.register(link)
    payload = {"key": "AuthorizationKey", "value": SECRET_AUTH_KEY}
    response = await api.client.post(
        "/api/stations/RES-16/call",
        json={"action": "ChangeConfiguration", "payload": payload, "timeout": 2.5},
        headers=api.auth(OperatorRole.OPERATOR),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"result": "CallResult", "payload": {"status": "Accepted"}}
    assert link.calls == [("ChangeConfiguration", payload, 2.5)]

    audit = await api.store.audit.list(limit=50, offset=0, target="RES-16")
    calls = [entry for entry in audit if entry.action == "station.call"]
    assert len(calls) == 1
    assert calls[0].actor == NAMES[OperatorRole.OPERATOR]
    assert calls[0].details == {"action": "ChangeConfiguration"}
    assert SECRET_AUTH_KEY not in repr(audit)


async def test_call_uses_default_timeout_and_201_schemas(api: Api) -> None:
    await add_station(api, "RES-201", version="2.0.1")
    link = link_for("RES-201", OcppVersion.V201, answer={"status": "Scheduled"})
    api.registry.register(link)
    response = await api.client.post(
        "/api/stations/RES-201/call",
        json={"action": "Reset", "payload": {"type": "OnIdle"}},
        headers=api.auth(OperatorRole.ADMIN),
    )
    assert response.status_code == 200, response.text
    assert response.json()["payload"] == {"status": "Scheduled"}
    assert link.calls == [("Reset", {"type": "OnIdle"}, 5.0)]


async def test_call_error_from_the_station_is_200(api: Api) -> None:
    await add_station(api, "ERR-16")
    api.registry.register(
        link_for(
            "ERR-16",
            answer=CallErrorReceived("NotSupported", "Reset is not supported", {"hint": "none"}),
        )
    )
    response = await api.client.post(
        "/api/stations/ERR-16/call",
        json={"action": "Reset", "payload": {"type": "Hard"}},
        headers=api.auth(OperatorRole.OPERATOR),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "result": "CallError",
        "error_code": "NotSupported",
        "error_description": "Reset is not supported",
        "error_details": {"hint": "none"},
    }


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (CallTimeout("no answer"), 504),
        (ConnectionGone("closed"), 409),
        (
            InvalidResponse(
                "Reset", RpcError(ErrorKind.PROPERTY_CONSTRAINT, "data.status: violates enum")
            ),
            502,
        ),
    ],
)
async def test_call_failures_map_to_statuses(api: Api, failure: Exception, status: int) -> None:
    await add_station(api, "FAIL-16")
    api.registry.register(link_for("FAIL-16", answer=failure))
    response = await api.client.post(
        "/api/stations/FAIL-16/call",
        json={"action": "Reset", "payload": {"type": "Hard"}},
        headers=api.auth(OperatorRole.OPERATOR),
    )
    assert_problem(response, status)


async def test_unhandled_error_is_a_generic_500(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    await add_station(api, "BOOM-16")
    api.registry.register(link_for("BOOM-16", answer=RuntimeError("internal detail xyz")))
    caplog.set_level(logging.ERROR, logger="chargewarden.api")
    response = await api.client.post(
        "/api/stations/BOOM-16/call",
        json={"action": "Reset", "payload": {"type": "Hard"}},
        headers=api.auth(OperatorRole.OPERATOR),
    )
    body = assert_problem(response, 500)
    assert "xyz" not in response.text and "RuntimeError" not in response.text
    assert body["title"] == "Internal Server Error"
    assert "internal detail xyz" in caplog.text  # logged server-side, with the traceback


async def test_database_failure_is_a_503_problem(
    api: Api, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Break the real database underneath the API: the store reports StoreError.
    engine = build_engine(normalize_database_url(database_url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: SecurityEventRow.__table__.drop(sync))
    finally:
        await engine.dispose()
    caplog.set_level(logging.ERROR, logger="chargewarden.api")
    response = await api.client.get("/api/security-events", headers=api.auth(OperatorRole.VIEWER))
    body = assert_problem(response, 503)
    assert "database" in body["detail"]
    assert SecurityEventRow.__tablename__ not in response.text  # no driver detail leaks
    assert "database error" in caplog.text


# --------------------------------------------------------------------------------- operators


async def test_create_operator_stores_only_the_hash(store: Any) -> None:
    record, token = await create_operator(
        store, "new.op@example", OperatorRole.OPERATOR, actor="root"
    )
    assert record.name == "new.op@example" and record.role == OperatorRole.OPERATOR
    stored = await store.operators.get("new.op@example")
    assert stored is not None
    assert token not in repr(stored)
    assert stored.token_hash != token
    audit = await store.audit.list(limit=10, offset=0, target="new.op@example")
    assert [(a.actor, a.action) for a in audit] == [("root", "operator.add")]
    assert token not in repr(audit)

    with pytest.raises(OperatorError, match="already exists"):
        await create_operator(store, "new.op@example", OperatorRole.VIEWER, actor="root")
    for bad in ("", "x" * 65, "has space", "semi;colon", "ünïcode", "a/b"):
        with pytest.raises(OperatorError):
            await create_operator(store, bad, OperatorRole.VIEWER, actor="root")
    with pytest.raises(OperatorError, match="role"):
        await create_operator(store, "someone", "superuser", actor="root")
    assert await store.operators.get("someone") is None


async def test_new_operator_token_works_immediately(api: Api) -> None:
    _, token = await create_operator(api.store, "late-viewer", "viewer", actor="root")
    response = await api.client.get("/api/stations", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
