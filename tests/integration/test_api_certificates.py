"""Certificate lifecycle and alert routes against a real CSMS (store, gateway, API on sockets).

The station is a raw WebSocket client that answers the CSMS's certificate calls with
schema-valid payloads from a little certificate store of its own, so each test controls what
the station reports and how it answers. The simulator-driven flows over TLS live in
test_simulator_certificate_flows.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from answering_station import AnsweringStation, CallErrorAnswer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rawstation import add_station, connect, make_csr
from tlskit import tls_settings
from wsclient import BOOT_16, BOOT_201

from chargewarden.api.operators import create_operator
from chargewarden.app import RunningCsms, start_csms
from chargewarden.config import Settings, load_settings
from chargewarden.pki.hashdata import normalize_serial
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.records import AlertSeverity, OperatorRole

PROBLEM = "application/problem+json"
V16, V201 = OcppVersion.V16, OcppVersion.V201
BOOT = {V16: BOOT_16, V201: BOOT_201}
ROOT_TYPE = {
    V16: {
        "csms-root": "CentralSystemRootCertificate",
        "manufacturer-root": "ManufacturerRootCertificate",
    },
    V201: {"csms-root": "CSMSRootCertificate", "manufacturer-root": "ManufacturerRootCertificate"},
}
TRIGGER = {V16: "ExtendedTriggerMessage", V201: "TriggerMessage"}


# ------------------------------------------------------------------------------ the station


# ---------------------------------------------------------------------------------- fixtures


@dataclass
class Server:
    csms: RunningCsms
    client: httpx.AsyncClient
    tokens: dict[OperatorRole, str]

    def auth(self, role: OperatorRole) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    @contextlib.asynccontextmanager
    async def station(
        self, identity: str, version: OcppVersion = V201
    ) -> AsyncIterator[AnsweringStation]:
        await add_station(self.csms, identity, version)
        async with connect(self.csms, identity, version) as ws:
            station = AnsweringStation(ws, version)
            try:
                reply = await station.call("BootNotification", BOOT[version])
                assert reply["status"] == "Accepted"
                yield station
            finally:
                await station.close()


async def serve(settings: Settings) -> AsyncIterator[Server]:
    csms = await start_csms(settings, with_api=True)
    try:
        tokens = {}
        for role in OperatorRole:
            _, tokens[role] = await create_operator(csms.store, f"{role}-1", role, actor="test")
        async with httpx.AsyncClient(base_url=str(csms.api_url), timeout=30) as client:
            yield Server(csms, client, tokens)
    finally:
        await csms.stop()


@pytest.fixture
async def server(tmp_path: Path, pki_template: Path) -> AsyncIterator[Server]:
    """A CSMS with its CA (signing, renewal and built-in roots available)."""
    settings = tls_settings(tmp_path, pki_template, allow_profile_0=False, call_timeout=2.0)
    async for running in serve(settings):
        yield running


@pytest.fixture
async def plain_server(csms_settings: dict[str, Any]) -> AsyncIterator[Server]:
    """A CSMS without TLS, hence without its CA."""
    # load_settings drops None flags, so wss_port=None has to be set afterwards.
    settings = load_settings(None, **csms_settings).model_copy(update={"wss_port": None})
    async for running in serve(settings):
        yield running


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["detail"] and body["title"]
    if slug is not None:
        assert body["type"] == f"urn:chargewarden:problem:{slug}", body
    assert "Traceback" not in response.text
    return body


def leaf_pem() -> str:
    """A self-signed certificate that is not a CA (no BasicConstraints CA:TRUE)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-a-ca")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------------------------- auth

ROUTES = [
    ("GET", "/api/stations/CP-1/certificate-requests", None),
    ("POST", "/api/stations/CP-1/certificate-requests", {}),
    ("GET", "/api/certificate-requests/1", None),
    ("GET", "/api/stations/CP-1/installed-certificates", None),
    ("POST", "/api/stations/CP-1/installed-certificates/refresh", None),
    ("POST", "/api/stations/CP-1/installed-certificates", {"kind": "csms-root"}),
    ("DELETE", "/api/stations/CP-1/installed-certificates/0A", None),
    ("GET", "/api/certificates/renewal-candidates", None),
    ("GET", "/api/alerts", None),
]
WRITES = [route for route in ROUTES if route[0] != "GET"]


async def test_every_route_needs_a_token(server: Server) -> None:
    await add_station(server.csms, "CP-1", V201)
    for method, path, body in ROUTES:
        for headers in ({}, {"Authorization": "Bearer cw_not-a-real-token"}):
            response = await server.client.request(method, path, json=body, headers=headers)
            assert_problem(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_viewer_cannot_write(server: Server) -> None:
    await add_station(server.csms, "CP-1", V201)
    for method, path, body in WRITES:
        response = await server.client.request(
            method, path, json=body, headers=server.auth(OperatorRole.VIEWER)
        )
        assert_problem(response, 403)
    audit = await server.csms.store.audit.list(target="CP-1")
    assert not [e for e in audit if e.action.startswith("station.certificate")]


async def test_routes_are_in_the_openapi_document(server: Server) -> None:
    doc = (await server.client.get("/api/openapi.json")).json()
    for path in (
        "/api/stations/{identity}/certificate-requests",
        "/api/certificate-requests/{request_id}",
        "/api/stations/{identity}/installed-certificates",
        "/api/stations/{identity}/installed-certificates/refresh",
        "/api/stations/{identity}/installed-certificates/{serial}",
        "/api/certificates/renewal-candidates",
        "/api/alerts",
    ):
        assert path in doc["paths"], path
    delete = doc["paths"]["/api/stations/{identity}/installed-certificates/{serial}"]["delete"]
    assert PROBLEM in delete["responses"]["409"]["content"]


# -------------------------------------------------------------------- unknown and offline


async def test_unknown_station_is_404(server: Server) -> None:
    headers = server.auth(OperatorRole.ADMIN)
    for method, path, body in ROUTES:
        if "CP-1" not in path:
            continue
        response = await server.client.request(
            method, path.replace("CP-1", "NOBODY"), json=body, headers=headers
        )
        assert_problem(response, 404, "unknown-station")
    response = await server.client.get(
        "/api/certificates/renewal-candidates", params={"station": "NOBODY"}, headers=headers
    )
    assert_problem(response, 404, "unknown-station")
    response = await server.client.get("/api/certificate-requests/999", headers=headers)
    assert_problem(response, 404, "unknown-request")


async def test_offline_station_is_409(server: Server) -> None:
    await add_station(server.csms, "OFF-1", V201)
    headers = server.auth(OperatorRole.ADMIN)
    for method, path, body in WRITES:
        response = await server.client.request(
            method, path.replace("CP-1", "OFF-1"), json=body, headers=headers
        )
        body_out = assert_problem(response, 409, "station-offline")
        assert "offline" in body_out["detail"]
    response = await server.client.get(
        "/api/stations/OFF-1/installed-certificates", headers=headers
    )
    assert_problem(response, 404, "no-snapshot")


async def test_non_ca_certificate_is_refused_with_422(server: Server) -> None:
    async with server.station("CP-PEM") as station:
        response = await server.client.post(
            "/api/stations/CP-PEM/installed-certificates",
            json={"kind": "csms-root", "pem": leaf_pem()},
            headers=server.auth(OperatorRole.OPERATOR),
        )
        assert "CA" in assert_problem(response, 422, "invalid-certificate")["detail"]
        response = await server.client.post(
            "/api/stations/CP-PEM/installed-certificates",
            json={"kind": "csms-root", "pem": "-----BEGIN CERTIFICATE-----\nnope\n"},
            headers=server.auth(OperatorRole.OPERATOR),
        )
        assert_problem(response, 422, "invalid-certificate")
        assert station.received == []  # nothing went to the station


# ------------------------------------------------------------- install, list, delete (CRT-04..06)


@pytest.mark.parametrize("version", [V16, V201])
async def test_install_list_delete_round_trip(server: Server, version: OcppVersion) -> None:
    identity = f"CP-RT-{version.value}"
    operator = server.auth(OperatorRole.OPERATOR)
    base = f"/api/stations/{identity}/installed-certificates"
    async with server.station(identity, version) as station:
        for kind in ("csms-root", "manufacturer-root"):
            response = await server.client.post(base, json={"kind": kind}, headers=operator)
            assert response.status_code == 200, response.text
            assert response.json() == {"status": "Accepted"}
        assert [t for t, _ in station.installed] == [
            ROOT_TYPE[version]["csms-root"],
            ROOT_TYPE[version]["manufacturer-root"],
        ]

        response = await server.client.post(base + "/refresh", headers=operator)
        assert response.status_code == 200, response.text
        listed = response.json()
        assert listed["station"] == identity
        by_kind = {c["kind"]: c for c in listed["certificates"]}
        assert set(by_kind) == {"csms-root", "manufacturer-root"}
        manufacturer = by_kind["manufacturer-root"]
        assert manufacturer["certificate_type"] == ROOT_TYPE[version]["manufacturer-root"]
        assert manufacturer["hash_algorithm"] == "SHA256"
        assert manufacturer == {
            "certificate_type": manufacturer["certificate_type"],
            "kind": "manufacturer-root",
            "hash_algorithm": "SHA256",
            "issuer_name_hash": station.installed[1][1]["issuerNameHash"],
            "issuer_key_hash": station.installed[1][1]["issuerKeyHash"],
            "serial_number": station.installed[1][1]["serialNumber"],
        }

        stored = await server.client.get(base, headers=server.auth(OperatorRole.VIEWER))
        assert stored.status_code == 200 and stored.json() == listed

        # Serial as openssl prints it: upper case with colons.
        serial = manufacturer["serial_number"].upper()
        serial = serial.zfill(len(serial) + len(serial) % 2)
        pretty = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2))
        response = await server.client.delete(f"{base}/{pretty}", headers=operator)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "Accepted"}
        deletes = [p for a, p in station.received if a == "DeleteCertificate"]
        # Exactly the hash data the station reported, not recomputed.
        assert deletes == [
            {
                "certificateHashData": {
                    k: manufacturer[v]
                    for k, v in (
                        ("hashAlgorithm", "hash_algorithm"),
                        ("issuerNameHash", "issuer_name_hash"),
                        ("issuerKeyHash", "issuer_key_hash"),
                        ("serialNumber", "serial_number"),
                    )
                }
            }
        ]
        after = (await server.client.get(base, headers=operator)).json()
        assert [c["kind"] for c in after["certificates"]] == ["csms-root"]

        response = await server.client.delete(
            f"{base}/{manufacturer['serial_number']}", headers=operator
        )
        assert_problem(response, 404, "certificate-not-found")

    audit = await server.csms.store.audit.list(target=identity)
    actions = [entry.action for entry in audit]
    assert actions.count("station.certificate.install") == 2
    assert actions.count("station.certificate.delete") == 1
    assert all(e.actor == "operator-1" for e in audit if e.action.startswith("station.cert"))


async def test_last_csms_root_is_kept_unless_an_admin_forces(server: Server) -> None:
    base = "/api/stations/CP-ROOT/installed-certificates"
    async with server.station("CP-ROOT") as station:
        response = await server.client.post(
            base, json={"kind": "csms-root"}, headers=server.auth(OperatorRole.OPERATOR)
        )
        assert response.json() == {"status": "Accepted"}
        serial = station.installed[0][1]["serialNumber"]

        response = await server.client.delete(
            f"{base}/{serial}", headers=server.auth(OperatorRole.OPERATOR)
        )
        assert "last CSMS root" in assert_problem(response, 409, "conflict")["detail"]
        response = await server.client.delete(
            f"{base}/{serial}", params={"force": "true"}, headers=server.auth(OperatorRole.OPERATOR)
        )
        assert_problem(response, 403)
        assert "DeleteCertificate" not in station.actions()

        response = await server.client.delete(
            f"{base}/{serial}", params={"force": "true"}, headers=server.auth(OperatorRole.ADMIN)
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "Accepted"}
        assert station.installed == []

    deletes = [
        e
        for e in await server.csms.store.audit.list(target="CP-ROOT")
        if e.action == "station.certificate.delete"
    ]
    assert len(deletes) == 1 and deletes[0].details["forced"] is True
    assert deletes[0].actor == "admin-1"
    assert normalize_serial(deletes[0].details["serial"]) == normalize_serial(serial)


async def test_station_failures_map_to_problems(server: Server) -> None:
    refresh = "/api/stations/CP-FAIL/installed-certificates/refresh"
    headers = server.auth(OperatorRole.OPERATOR)
    async with server.station("CP-FAIL") as station:
        station.override["GetInstalledCertificateIds"] = CallErrorAnswer("broken")
        assert_problem(
            await server.client.post(refresh, headers=headers), 502, "station-call-error"
        )
        station.override["GetInstalledCertificateIds"] = {"status": "Maybe"}
        assert_problem(await server.client.post(refresh, headers=headers), 502, "invalid-response")
        station.override["GetInstalledCertificateIds"] = "silent"
        assert_problem(await server.client.post(refresh, headers=headers), 504, "station-timeout")

        response = await server.client.post(
            "/api/stations/CP-FAIL/installed-certificates",
            json={"kind": "v2g-root"},
            headers=headers,
        )
        assert_problem(response, 422, "no-builtin-root")
        response = await server.client.delete(
            "/api/stations/CP-FAIL/installed-certificates/not-hex", headers=headers
        )
        assert_problem(response, 422, "invalid-request")


async def test_1_6_station_cannot_take_a_v2g_root(server: Server) -> None:
    root = (await server.client.get("/pki/csms-root.pem")).text
    async with server.station("CP-16", V16) as station:
        response = await server.client.post(
            "/api/stations/CP-16/installed-certificates",
            json={"kind": "v2g-root", "pem": root},
            headers=server.auth(OperatorRole.OPERATOR),
        )
        assert_problem(response, 422, "unsupported")
        response = await server.client.post(
            "/api/stations/CP-16/certificate-requests",
            json={"certificate_type": "V2GCertificate"},
            headers=server.auth(OperatorRole.OPERATOR),
        )
        assert_problem(response, 422, "unsupported")
        assert "InstallCertificate" not in station.actions()


# ------------------------------------------------------------- certificate requests (CRT-01)


@pytest.mark.parametrize("version", [V16, V201])
async def test_certificate_request_flow_and_renewal_candidates(
    server: Server, version: OcppVersion
) -> None:
    identity = f"CP-CSR-{version.value}"
    operator, viewer = server.auth(OperatorRole.OPERATOR), server.auth(OperatorRole.VIEWER)
    async with server.station(identity, version) as station:
        response = await server.client.post(
            f"/api/stations/{identity}/certificate-requests", json={}, headers=operator
        )
        assert response.status_code == 202, response.text
        request = response.json()
        assert request["state"] == "triggered" and request["origin"] == "operator"
        assert request["actor"] == "operator-1" and request["station"] == identity
        assert request["certificate_type"] == "ChargingStationCertificate"
        assert request["certificate_serial"] is None and "chain_pem" not in request
        assert station.received[-1][0] == TRIGGER[version]

        csr, _ = make_csr(identity)
        payload = {"csr": csr}
        if version is V201:
            payload["certificateType"] = "ChargingStationCertificate"
        assert (await station.call("SignCertificate", payload))["status"] == "Accepted"
        await asyncio.wait_for(station.signed.wait(), 10)

        async def accepted() -> dict[str, Any] | None:
            one = await server.client.get(
                f"/api/certificate-requests/{request['id']}", headers=viewer
            )
            body = one.json()
            return body if body["state"] == "accepted" else None

        detail = await eventually(accepted)
        assert detail["certificate_serial"] and detail["delivery_attempts"] == 1
        assert detail["chain_pem"].startswith("-----BEGIN CERTIFICATE-----")
        listed = (
            await server.client.get(
                f"/api/stations/{identity}/certificate-requests", headers=viewer
            )
        ).json()
        assert [r["id"] for r in listed] == [request["id"]]
        assert "chain_pem" not in listed[0]
        assert listed[0]["certificate_serial"] == detail["certificate_serial"]

        # Renewal candidates: due only within a long enough horizon.
        candidates = "/api/certificates/renewal-candidates"
        soon = await server.client.get(candidates, params={"station": identity}, headers=viewer)
        assert soon.status_code == 200 and soon.json() == []
        late = await server.client.get(
            candidates, params={"station": identity, "within_days": 36500}, headers=viewer
        )
        (candidate,) = late.json()
        assert candidate["serial"] == detail["certificate_serial"]
        assert candidate["station"] == identity
        assert candidate["certificate_type"] == "ChargingStationCertificate"
        assert candidate["id"] == detail["certificate_id"]

        renewal = await server.client.post(
            f"/api/stations/{identity}/certificate-requests",
            json={"replaces_certificate_id": candidate["id"]},
            headers=operator,
        )
        assert renewal.status_code == 202, renewal.text
        assert renewal.json()["replaces_certificate_id"] == candidate["id"]
        # A renewal under way is no longer a candidate.
        late = await server.client.get(
            candidates, params={"station": identity, "within_days": 36500}, headers=viewer
        )
        assert late.json() == []

    requests = [
        e
        for e in await server.csms.store.audit.list(target=identity)
        if e.action == "station.certificate.request"
    ]
    assert len(requests) == 2 and all(e.actor == "operator-1" for e in requests)


async def test_certificate_request_refused_or_misdirected(server: Server) -> None:
    operator = server.auth(OperatorRole.OPERATOR)
    async with server.station("CP-NO", V16) as station:
        response = await server.client.post(
            "/api/stations/CP-NO/certificate-requests",
            json={"replaces_certificate_id": 12345},
            headers=operator,
        )
        assert_problem(response, 422, "invalid-request")

        station.override["ExtendedTriggerMessage"] = {"status": "Rejected"}
        response = await server.client.post(
            "/api/stations/CP-NO/certificate-requests", json={}, headers=operator
        )
        assert "Rejected" in assert_problem(response, 409, "station-refused")["detail"]
        (failed,) = (
            await server.client.get("/api/stations/CP-NO/certificate-requests", headers=operator)
        ).json()
        assert failed["state"] == "failed" and "Rejected" in failed["reason"]

        response = await server.client.post(
            "/api/stations/CP-NO/certificate-requests",
            json={"certificate_type": "SomethingElse"},
            headers=operator,
        )
        assert_problem(response, 422, "invalid-request")


async def test_without_the_ca_signing_routes_are_503(plain_server: Server) -> None:
    await add_station(plain_server.csms, "CP-PLAIN", V201)
    headers = plain_server.auth(OperatorRole.OPERATOR)
    response = await plain_server.client.post(
        "/api/stations/CP-PLAIN/certificate-requests", json={}, headers=headers
    )
    assert "CA" in assert_problem(response, 503)["detail"]
    response = await plain_server.client.get(
        "/api/certificates/renewal-candidates", headers=headers
    )
    assert_problem(response, 503)
    response = await plain_server.client.post(
        "/api/stations/CP-PLAIN/installed-certificates",
        json={"kind": "csms-root"},
        headers=headers,
    )
    assert_problem(response, 422, "no-builtin-root")


# ------------------------------------------------------------------------------------ alerts


async def test_alerts_are_listed_newest_first(server: Server) -> None:
    viewer = server.auth(OperatorRole.VIEWER)
    assert (await server.client.get("/api/alerts", headers=viewer)).json() == []
    alerts = server.csms.alerts
    await alerts.raise_alert(
        AlertSeverity.WARNING,
        "certificate.delivery_failed",
        "first",
        station="CP-A",
        details={"request": 1},
    )
    await alerts.raise_alert(
        AlertSeverity.CRITICAL, "certificate.refused_by_station", "second", station="CP-B"
    )

    response = await server.client.get("/api/alerts", headers=viewer)
    assert response.status_code == 200, response.text
    items = response.json()
    assert [a["message"] for a in items] == ["second", "first"]
    assert items[0]["severity"] == "critical" and items[0]["station"] == "CP-B"
    assert items[1]["details"] == {"request": 1} and items[1]["kind"] == (
        "certificate.delivery_failed"
    )
    assert items[1]["delivered_at"] is None and items[1]["delivery_attempts"] == 0

    only_a = (
        await server.client.get("/api/alerts", params={"station": "CP-A"}, headers=viewer)
    ).json()
    assert [a["message"] for a in only_a] == ["first"]
    page = (
        await server.client.get("/api/alerts", params={"limit": 1, "offset": 1}, headers=viewer)
    ).json()
    assert [a["message"] for a in page] == ["first"]
    assert_problem(await server.client.get("/api/alerts", params={"limit": 0}, headers=viewer), 422)
