"""Firmware routes (FW-01..03) against a real CSMS with its CA and file-transfer listener.

Releases are registered through ``FirmwareReleases`` (what `chargewarden firmware add` does),
signed by the CSMS's development firmware signer. Stations are raw WebSocket clients, so each
test gives every answer and status report itself. Every API response a test sees is kept: none
may contain a download URL or its token.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rawstation import V16, V201, RawStation, add_station, boot, connect
from test_api_certificates import Server, assert_problem, serve
from tlskit import tls_settings

from chargewarden.config import load_settings
from chargewarden.pki.firmware import digest_file, sign_digest
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.records import OperatorRole
from chargewarden.store.transfer_records import FirmwareReleaseRecord

VIEWER, OPERATOR = OperatorRole.VIEWER, OperatorRole.OPERATOR
UPDATES = "/api/firmware/updates"
RELEASES = "/api/firmware/releases"
UPDATE_ACTION = {V16: "SignedUpdateFirmware", V201: "UpdateFirmware"}
STATUS_ACTION = {V16: "SignedFirmwareStatusNotification", V201: "FirmwareStatusNotification"}
DEADLINE = 30.0


class Api:
    """The server's API as one role sees it; every response body is kept for the leak check."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.seen: list[str] = []

    async def request(
        self, method: str, path: str, role: OperatorRole | None = OPERATOR, **kwargs: Any
    ) -> httpx.Response:
        headers = self.server.auth(role) if role is not None else {}
        response = await self.server.client.request(method, path, headers=headers, **kwargs)
        self.seen.append(response.text)
        return response

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json()

    async def until(self, path: str, done: Any) -> Any:
        """GET ``path`` until ``done(body)``; fails after DEADLINE."""
        deadline = time.monotonic() + DEADLINE
        while True:
            body = await self.ok("GET", path)
            if done(body):
                return body
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.1)

    def assert_no_leak(self, *secrets: str) -> None:
        for text in self.seen:
            assert "/files/firmware/" not in text, text
            for secret in secrets:
                assert secret not in text, text


@pytest.fixture
async def server(tmp_path: Path, pki_template: Path) -> AsyncIterator[Server]:
    settings = tls_settings(tmp_path, pki_template, allow_profile_0=False, call_timeout=2.0)
    async for running in serve(settings):
        assert running.csms.firmware is not None, "file transfer should be on"
        yield running


@pytest.fixture
def api(server: Server) -> Api:
    return Api(server)


async def register_release(
    server: Server, tmp_path: Path, name: str = "acme-2.1.0"
) -> FirmwareReleaseRecord:
    """What `firmware add` does, with an image signed by the development firmware signer."""
    csms = server.csms
    assert csms.firmware is not None and csms.pki is not None
    image = tmp_path / f"{name}.bin"
    image.write_bytes(b"ACME" + bytes(range(256)) * 512 + name.encode())
    signer = csms.pki.firmware_signer
    signature = sign_digest(digest_file(image)[0], signer.key)  # type: ignore[arg-type]
    return await csms.firmware.releases.register(
        image, signature, signer.pem, name=name, actor="test"
    )


@contextlib.asynccontextmanager
async def online(server: Server, identity: str, version: OcppVersion) -> AsyncIterator[RawStation]:
    await add_station(server.csms, identity, version)
    async with connect(server.csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        yield station


async def report(station: RawStation, version: OcppVersion, status: str, request_id: int) -> None:
    reply = await station.call(STATUS_ACTION[version], {"status": status, "requestId": request_id})
    assert reply[0] == 3, reply


# ------------------------------------------------------------------------------ auth, reading


async def test_FW_01_every_route_needs_a_token_and_viewers_cannot_start_updates(
    api: Api, server: Server, tmp_path: Path
) -> None:
    await register_release(server, tmp_path)
    for method, path in [
        ("GET", RELEASES),
        ("GET", f"{RELEASES}/acme-2.1.0"),
        ("GET", UPDATES),
        ("GET", f"{UPDATES}/1"),
        ("POST", UPDATES),
    ]:
        assert_problem(await api.request(method, path, role=None), 401)
    await add_station(server.csms, "FW-VIEW", V16)
    body = {"release": "acme-2.1.0", "station": "FW-VIEW"}
    assert_problem(await api.request("POST", UPDATES, role=VIEWER, json=body), 403)
    assert await api.ok("GET", UPDATES, role=VIEWER) == []
    assert (await api.ok("GET", RELEASES, role=VIEWER))["total"] == 1


async def test_FW_02_registered_releases_are_listed_without_file_paths(
    api: Api, server: Server, tmp_path: Path
) -> None:
    first = await register_release(server, tmp_path, "acme-2.1.0")
    await register_release(server, tmp_path, "acme-2.2.0")
    page = await api.ok("GET", RELEASES, role=VIEWER)
    assert page["total"] == 2 and [r["name"] for r in page["items"]] == ["acme-2.2.0", "acme-2.1.0"]
    assert (await api.ok("GET", RELEASES, params={"limit": 1, "offset": 1}))["items"][0][
        "name"
    ] == "acme-2.1.0"
    one = await api.ok("GET", f"{RELEASES}/acme-2.1.0", role=VIEWER)
    assert one["sha256"] == first.sha256 and one["size"] == first.size
    assert one["algorithm"] == "ECDSA-SHA256" and "CN=" in one["signer_subject"]
    assert one["signature"] == first.signature
    assert one["signing_certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert one["filename"] == "acme-2.1.0.bin" and one["actor"] == "test"
    data_dir = str(server.csms.settings.data_dir)
    for text in api.seen:
        assert data_dir not in text and "firmware/" + first.sha256 not in text
    assert_problem(await api.request("GET", f"{RELEASES}/nope"), 404, "unknown-release")


# ------------------------------------------------------------------------------ refusals


async def test_FW_01_update_requests_that_cannot_start(
    api: Api, server: Server, tmp_path: Path
) -> None:
    await register_release(server, tmp_path)
    await add_station(server.csms, "FW-REF", V201)

    async def start(body: dict[str, Any]) -> httpx.Response:
        return await api.request("POST", UPDATES, json=body)

    assert_problem(await start({"release": "nope", "station": "FW-REF"}), 404, "unknown-release")
    assert_problem(
        await start({"release": "acme-2.1.0", "station": "NOBODY"}), 404, "unknown-station"
    )
    assert_problem(
        await start({"release": "acme-2.1.0", "stations": ["FW-REF", "NOBODY"]}),
        404,
        "unknown-station",
    )
    # A fleet needs a selection, or an explicit all: true.
    no_selection = assert_problem(await start({"release": "acme-2.1.0"}), 422, "invalid-request")
    assert "all: true" in no_selection["detail"]
    for bad in (
        {"release": "acme-2.1.0", "station": "FW-REF", "all": True},
        {"release": "acme-2.1.0", "stations": ["FW-REF"], "all": True},
        {
            "release": "acme-2.1.0",
            "station": "FW-REF",
            "at": "2030-01-02T00:00:00Z",
            "install_at": "2030-01-01T00:00:00Z",
        },
    ):
        assert_problem(await start(bad), 422, "invalid-request")
    for bad in (
        {"release": "acme-2.1.0", "station": "FW-REF", "at": "2030-01-01T00:00:00"},  # no offset
        {"release": "acme-2.1.0", "station": "FW-REF", "retries": -1},
        {"release": "acme-2.1.0", "station": "FW-REF", "retries": True},
        {"release": "acme-2.1.0", "all": True, "concurrency": 0},
        {"release": "acme-2.1.0", "station": "FW-REF", "url": "http://evil"},
    ):
        assert_problem(await start(bad), 422)
    # One update at a time per station.
    started = await api.ok(
        "POST", UPDATES, 202, json={"release": "acme-2.1.0", "station": "FW-REF"}
    )
    assert started["update_id"] is not None
    assert_problem(await start({"release": "acme-2.1.0", "station": "FW-REF"}), 409, "conflict")
    assert_problem(await start({"release": "acme-2.1.0", "all": True}), 409, "conflict")
    assert_problem(await api.request("GET", f"{UPDATES}/999999"), 404, "unknown-update")
    assert_problem(
        await api.request("GET", UPDATES, params={"station": "NOBODY"}), 404, "unknown-station"
    )
    assert_problem(
        await api.request("GET", UPDATES, params={"release": "nope"}), 404, "unknown-release"
    )
    api.assert_no_leak()


async def test_FW_01_updates_unavailable_without_file_transfer(
    tmp_path: Path, csms_settings: dict[str, Any]
) -> None:
    # No TLS, hence no CA and no file-transfer listener.
    settings = load_settings(None, **csms_settings).model_copy(update={"wss_port": None})
    async for server in serve(settings):
        api = Api(server)
        assert server.csms.firmware is None
        body = {"release": "acme-2.1.0", "all": True}
        assert_problem(await api.request("POST", UPDATES, json=body), 503, "unavailable")
        # Reading needs only the store.
        assert (await api.ok("GET", RELEASES))["total"] == 0
        assert await api.ok("GET", UPDATES) == []


# ------------------------------------------------------------------------------ end to end


@pytest.mark.parametrize("version", [V16, V201], ids=["1.6", "2.0.1"])
async def test_TC_080_signed_update_followed_to_installed(
    api: Api, server: Server, tmp_path: Path, version: OcppVersion
) -> None:
    release = await register_release(server, tmp_path)
    identity = f"FW-OK-{version.value}"
    async with online(server, identity, version) as station:
        started = await api.ok(
            "POST",
            UPDATES,
            202,
            json={"release": release.name, "station": identity, "retries": 2, "retry_interval": 30},
        )
        update_id, job_id = started["update_id"], started["job"]["id"]
        assert started["job"]["kind"] == "update-firmware" and started["skipped"] == []
        unique_id, request = await station.expect_call(UPDATE_ACTION[version], timeout=DEADLINE)
        # FW-01: the request carries the signing certificate, signature and our HTTPS URL.
        assert request["requestId"] == update_id
        assert request["retries"] == 2 and request["retryInterval"] == 30
        firmware = request["firmware"]
        assert firmware["signature"] == release.signature
        assert firmware["signingCertificate"] == release.signing_certificate_pem
        location = firmware["location"]
        assert location.startswith("https://") and "/files/firmware/" in location
        token = location.split("/files/firmware/")[1].split("/")[0]
        await station.answer(unique_id, {"status": "Accepted"})
        for status in ("Downloading", "Downloaded", "SignatureVerified", "Installing"):
            await report(station, version, status, update_id)
        await api.until(f"{UPDATES}/{update_id}", lambda u: u["station_status"] == "Installing")
        await report(station, version, "Installed", update_id)
        done = await api.until(f"{UPDATES}/{update_id}", lambda u: u["state"] == "installed")
    assert done["release"] == release.name and done["job_id"] == job_id
    assert done["response_status"] == "Accepted" and done["station_status"] == "Installed"
    assert [(h["kind"], h["status"]) for h in done["history"]] == [
        ("answer", "Accepted"),
        ("status", "Downloading"),
        ("status", "Downloaded"),
        ("status", "SignatureVerified"),
        ("status", "Installing"),
        ("status", "Installed"),
    ]
    job = await api.until(f"/api/jobs/{job_id}", lambda j: j["state"] == "succeeded")
    assert "Installed" in job["message"]
    listed = await api.ok("GET", UPDATES, role=VIEWER, params={"station": identity})
    assert [u["id"] for u in listed] == [update_id]
    by_release = await api.ok("GET", UPDATES, params={"release": release.name})
    assert [u["id"] for u in by_release] == [update_id]
    await api.ok("GET", "/api/jobs", params={"station": identity})
    api.assert_no_leak(token)


async def test_FW_03_invalid_signature_fails_the_update_with_a_critical_alert(
    api: Api, server: Server, tmp_path: Path
) -> None:
    release = await register_release(server, tmp_path)
    async with online(server, "FW-BAD", V201) as station:
        started = await api.ok(
            "POST", UPDATES, 202, json={"release": release.name, "station": "FW-BAD"}
        )
        update_id = started["update_id"]
        unique_id, request = await station.expect_call("UpdateFirmware", timeout=DEADLINE)
        await station.answer(unique_id, {"status": "Accepted"})
        await report(station, V201, "Downloaded", update_id)
        await report(station, V201, "InvalidSignature", update_id)
        failed = await api.until(f"{UPDATES}/{update_id}", lambda u: u["state"] == "failed")
    assert failed["station_status"] == "InvalidSignature" and "InvalidSignature" in failed["reason"]
    alerts = await api.until(
        "/api/alerts", lambda items: any(a["station"] == "FW-BAD" for a in items)
    )
    alert = next(a for a in alerts if a["station"] == "FW-BAD")
    assert alert["severity"] == "critical" and "InvalidSignature" in alert["message"]
    token = request["firmware"]["location"].split("/files/firmware/")[1].split("/")[0]
    api.assert_no_leak(token)


async def test_FW_01_fleet_update_by_names_and_for_all(
    api: Api, server: Server, tmp_path: Path
) -> None:
    release = await register_release(server, tmp_path)
    for identity, version in (("FW-F1", V16), ("FW-F2", V201), ("FW-F3", V16)):
        await add_station(server.csms, identity, version)
    named = await api.ok(
        "POST",
        UPDATES,
        202,
        json={
            "release": release.name,
            "stations": ["FW-F1", "FW-F2"],
            "concurrency": 1,
            "at": "2030-01-01T00:00:00+01:00",
            "install_at": "2030-01-02T00:00:00Z",
        },
    )
    assert named["job"]["kind"] == "fleet" and named["update_id"] is None
    assert named["job"]["params"]["concurrency"] == 1
    fleet = await api.ok("GET", f"/api/jobs/{named['job']['id']}")
    assert sum(fleet["children"].values()) == 2
    updates = await api.ok("GET", UPDATES)
    assert sorted(u["station"] for u in updates) == ["FW-F1", "FW-F2"]
    assert all(u["retrieve_at"].startswith("2029-12-31T23:00:00") for u in updates)
    assert all(u["install_at"].startswith("2030-01-02T00:00:00") for u in updates)
    assert all(u["job_id"] is not None and u["state"] == "pending" for u in updates)
    # "all" covers the rest; stations with an update under way are left out and said why.
    # "version" is accepted as another name of ocpp_version.
    rest = await api.ok("POST", UPDATES, 202, json={"release": release.name, "all": True})
    assert len(rest["skipped"]) == 2 and all("already has job" in s for s in rest["skipped"])
    only_16 = await api.request("POST", UPDATES, json={"release": release.name, "version": "1.6"})
    assert_problem(only_16, 409, "conflict")  # FW-F1 and FW-F3 (1.6) are all busy now
    assert len(await api.ok("GET", UPDATES, params={"limit": 2})) == 2
    api.assert_no_leak()
