"""`kill -9` of the server at each step of a rotation and of an upgrade (issue 5).

The CSMS is a real `chargewarden serve` process; the station is a raw WebSocket client, so the
test decides exactly what the station has received, answered and applied when the server dies.
After a restart the job finishes correctly, and at no moment is the station locked out: it is
let in with whatever credential and profile it actually holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rawstation import (
    AUTH_KEY,
    BOOT,
    PASSWORD,
    SUBPROTOCOL,
    V16,
    V201,
    RawStation,
    register_test_station,
)
from test_certificate_crash import free_port
from test_jobs_rotation import ROTATION_CALL, rotation_answer
from tlskit import CPO
from websockets.asyncio.client import connect
from wsclient import basic

from chargewarden.api.local_token import cli_file
from chargewarden.config import load_settings
from chargewarden.pki.material import csms_root_pem
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store import Store
from chargewarden.store.job_records import JobRecord, JobState

IDENTITY = {V16: "KILL-16", V201: "KILL-201"}
OLD = {V16: bytes.fromhex(AUTH_KEY), V201: PASSWORD.encode()}
SWITCH = {V16: "ChangeConfiguration", V201: "Reset"}
UPGRADE_CALLS = {
    V16: ("InstallCertificate", "ChangeConfiguration"),
    V201: ("InstallCertificate", "GetVariables", "SetNetworkProfile", "SetVariables", "Reset"),
}


class Server:
    """`chargewarden serve` on fixed ports, killed and restarted by the test."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ws_port, self.wss_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from test_certificate_crash import CLI

        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEWARDEN_")}
        env |= {
            "CHARGEWARDEN_CPO_NAME": CPO,
            "CHARGEWARDEN_LOG_LEVEL": "WARNING",
            "CHARGEWARDEN_JOBS__POLL_SECONDS": "0.2",
        }
        argv = [
            str(CLI), "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
            "--ws-port", str(self.ws_port), "--wss-port", str(self.wss_port), "--api-port", "0",
            "--files-port", "0",
            "--public-hostname", "localhost",
        ]  # fmt: skip
        cli_file(self.data_dir).unlink(missing_ok=True)
        self.process = subprocess.Popen(  # noqa: S603 - our own console script
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    async def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        for _ in range(300):
            if cli_file(self.data_dir).exists():
                break
            await asyncio.sleep(0.1)
        access = json.loads(cli_file(self.data_dir).read_text())
        async with httpx.AsyncClient(base_url=access["api_url"], timeout=15) as client:
            response = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {access['token']}"}
            )
        assert response.status_code < 300, response.text
        return response.json()

    async def station(
        self, version: OcppVersion, secret: bytes | None = None, *, tls: bool = False
    ) -> RawStation:
        """Connect (retrying while the server starts) and boot."""
        identity = IDENTITY[version]
        extra: dict[str, Any] = {}
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            settings = load_settings(None, data_dir=self.data_dir)
            context.load_verify_locations(cadata=csms_root_pem(settings).decode())
            url = f"wss://127.0.0.1:{self.wss_port}/ocpp/{identity}"
            extra = {"ssl": context, "server_hostname": "localhost"}
        else:
            url = f"ws://127.0.0.1:{self.ws_port}/ocpp/{identity}"
        for _ in range(300):
            try:
                ws = await connect(
                    url,
                    subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
                    additional_headers={"Authorization": basic(identity, secret or OLD[version])},
                    open_timeout=15,
                    **extra,
                )
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the CSMS did not come up")
        station = RawStation(ws)
        assert (await station.call("BootNotification", BOOT[version]))[2]["status"] == "Accepted"
        return station


@pytest.fixture
async def server(tmp_path: Path, pki_template: Path) -> AsyncIterator[Server]:
    shutil.copytree(pki_template, tmp_path / "pki")
    settings = load_settings(None, data_dir=tmp_path)
    async with await Store.open(settings.effective_database_url) as store:
        for version, identity in IDENTITY.items():
            await register_test_station(store, identity, version)
    running = Server(tmp_path)
    running.start()
    try:
        yield running
    finally:
        running.stop()


async def stored_job(server: Server, job_id: int) -> JobRecord:
    settings = load_settings(None, data_dir=server.data_dir)
    async with await Store.open(settings.effective_database_url) as store:
        job = await store.jobs.get(job_id)
    assert job is not None
    return job


async def finished(server: Server, job_id: int) -> dict[str, Any]:
    for _ in range(300):
        body = await server.api("GET", f"/api/jobs/{job_id}")
        job = body.get("job", body)
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


async def refused(
    server: Server, version: OcppVersion, secret: bytes | None = None, *, tls: bool = False
) -> bool:
    try:
        station = await server.station(version, secret, tls=tls)
    except Exception:  # noqa: BLE001 - any refusal (401 on the handshake)
        return True
    await station.ws.close()
    return False


def job_id(body: dict[str, Any]) -> int:
    return int(body.get("job", body)["id"])


def secret_in(version: OcppVersion, payload: dict[str, Any]) -> bytes:
    if version is V16:
        return bytes.fromhex(payload["value"])
    return str(payload["setVariableData"][0]["attributeValue"]).encode()


def positive(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What a willing station answers to each call of an upgrade."""
    if action == "GetVariables":
        item = payload["getVariableData"][0]
        result = {"attributeStatus": "Accepted", "attributeValue": "1"}
        return {"getVariableResult": [result | {k: item[k] for k in ("component", "variable")}]}
    if action == "SetVariables":
        item = payload["setVariableData"][0]
        result = {"attributeStatus": "Accepted"}
        return {"setVariableResult": [result | {k: item[k] for k in ("component", "variable")}]}
    return {"status": "Accepted"}


async def walk_upgrade(
    station: RawStation, version: OcppVersion, until: str | None = None
) -> tuple[str, dict[str, Any]] | None:
    """Answer the upgrade's calls willingly; stop at ``until`` and return it unanswered."""
    for action in UPGRADE_CALLS[version]:
        unique_id, payload = await station.expect_call(action, timeout=20)
        if action == until:
            return unique_id, payload
        await station.answer(unique_id, positive(action, payload))
    return None


BOTH = pytest.mark.parametrize("version", [V16, V201])


# ---- rotation -------------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize("applied", [False, True], ids=["not-applied", "applied"])
async def test_kill_after_change_sent_before_answer(
    server: Server, version: OcppVersion, applied: bool
) -> None:
    station = await server.station(version)
    path = f"/api/stations/{IDENTITY[version]}/rotate-password"
    job = job_id(await server.api("POST", path))
    _, payload = await station.expect_call(ROTATION_CALL[version])
    sent = secret_in(version, payload)
    server.kill()
    await station.ws.close()
    server.start()
    if applied:
        # It took the secret before the CSMS died: it comes back with it and is let in.
        station = await server.station(version, sent)
        final = sent
    else:
        # It never acted on it: back with the old secret, let in, and given a fresh one.
        station = await server.station(version)
        unique_id, payload = await station.expect_call(ROTATION_CALL[version], timeout=20)
        final = secret_in(version, payload)
        assert final != sent
        await station.answer(unique_id, rotation_answer(version, "Accepted"))
    result = await finished(server, job)
    await station.ws.close()
    assert result["state"] == "succeeded", result
    assert not await refused(server, version, final)
    assert await refused(server, version)


@BOTH
async def test_kill_right_after_the_station_accepted(server: Server, version: OcppVersion) -> None:
    station = await server.station(version)
    path = f"/api/stations/{IDENTITY[version]}/rotate-password"
    job = job_id(await server.api("POST", path))
    unique_id, payload = await station.expect_call(ROTATION_CALL[version])
    new = secret_in(version, payload)
    await station.answer(unique_id, rotation_answer(version, "Accepted"))
    server.kill()  # whether or not the CSMS recorded the answer
    await station.ws.close()
    server.start()
    station = await server.station(version, new)
    result = await finished(server, job)
    await station.ws.close()
    assert result["state"] == "succeeded", result
    assert await refused(server, version)


@BOTH
async def test_kill_while_waiting_for_an_offline_station(
    server: Server, version: OcppVersion
) -> None:
    path = f"/api/stations/{IDENTITY[version]}/rotate-password"
    job = job_id(await server.api("POST", path))
    for _ in range(100):
        if (await stored_job(server, job)).state is JobState.WAITING:
            break
        await asyncio.sleep(0.1)
    server.kill()
    server.start()
    station = await server.station(version)
    unique_id, payload = await station.expect_call(ROTATION_CALL[version], timeout=20)
    await station.answer(unique_id, rotation_answer(version, "Accepted"))
    result = await finished(server, job)
    await station.ws.close()
    assert result["state"] == "succeeded", result
    assert not await refused(server, version, secret_in(version, payload))


# ---- upgrade 1→2 ------------------------------------------------------------------------------


@BOTH
async def test_kill_during_install_root_then_upgrade_completes(
    server: Server, version: OcppVersion
) -> None:
    station = await server.station(version)
    path = f"/api/stations/{IDENTITY[version]}/upgrade"
    job = job_id(await server.api("POST", path, {"to": 2}))
    await station.expect_call("InstallCertificate")
    server.kill()
    await station.ws.close()
    server.start()
    station = await server.station(version)  # still profile 1: nothing was committed
    await walk_upgrade(station, version)
    await station.ws.close()
    station = await server.station(version, tls=True)
    result = await finished(server, job)
    await station.ws.close()
    assert result["state"] == "succeeded", result
    assert await refused(server, version)  # profile 1 refused from now on


@BOTH
@pytest.mark.parametrize("switched", [False, True], ids=["not-switched", "switched"])
async def test_kill_during_the_switch(server: Server, version: OcppVersion, switched: bool) -> None:
    station = await server.station(version)
    path = f"/api/stations/{IDENTITY[version]}/upgrade"
    job = job_id(await server.api("POST", path, {"to": 2}))
    await walk_upgrade(station, version, until=SWITCH[version])
    server.kill()
    await station.ws.close()
    server.start()
    if switched:
        station = await server.station(version, tls=True)  # let in on the pending profile 2
    else:
        station = await server.station(version)  # still let in on profile 1, and told again
        unique_id, payload = await station.expect_call(SWITCH[version], timeout=20)
        await station.answer(unique_id, positive(SWITCH[version], payload))
        await station.ws.close()
        station = await server.station(version, tls=True)
    result = await finished(server, job)
    await station.ws.close()
    assert result["state"] == "succeeded", result
    assert await refused(server, version)


@BOTH
async def test_kill_while_waiting_for_the_reconnect(server: Server, version: OcppVersion) -> None:
    station = await server.station(version)
    path = f"/api/stations/{IDENTITY[version]}/upgrade"
    job = job_id(await server.api("POST", path, {"to": 2}))
    await walk_upgrade(station, version)
    for _ in range(100):
        if (await stored_job(server, job)).step == "await-reconnect":
            break
        await asyncio.sleep(0.1)
    server.kill()
    await station.ws.close()
    server.start()
    station = await server.station(version, tls=True)
    result = await finished(server, job)
    await station.ws.close()
    assert result["state"] == "succeeded", result
    assert await refused(server, version)
