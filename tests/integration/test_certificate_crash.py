"""Durable before the wire: a CSMS killed mid-flow still delivers exactly one certificate.

The server runs as a real process (`chargewarden serve`) and is killed with SIGKILL after it
committed the certificate and sent CertificateSigned, before the station answered. After a
restart the station, reconnecting, receives the very same certificate again; the store holds
one certificate for it and one request, accepted.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rawstation import AUTH_KEY, RawStation, make_csr, register_test_station
from tlskit import CPO
from websockets.asyncio.client import connect
from wsclient import BOOT_16, basic

from chargewarden.config import load_settings
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store import Store
from chargewarden.store.records import CertificateRequestState

CLI = Path(sys.executable).parent / "chargewarden"
IDENTITY = "CRASH-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEWARDEN_")}
    env |= {"CHARGEWARDEN_CPO_NAME": CPO, "CHARGEWARDEN_LOG_LEVEL": "WARNING"}
    argv = [
        str(CLI),
        "serve",
        "--data-dir",
        str(data_dir),
        "--host",
        "127.0.0.1",
        "--ws-port",
        str(port),
        "--wss-port",
        "0",
        "--api-port",
        "0",
        "--files-port",
        "0",
        "--public-hostname",
        "localhost",
    ]
    return subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def open_when_up(port: int) -> Any:
    for _ in range(300):
        try:
            return await connect(
                f"ws://127.0.0.1:{port}/ocpp/{IDENTITY}",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers={"Authorization": basic(IDENTITY, bytes.fromhex(AUTH_KEY))},
                open_timeout=15,
            )
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError("the CSMS did not come up")


@pytest.fixture
async def data_dir(tmp_path: Path, pki_template: Path) -> Path:
    shutil.copytree(pki_template, tmp_path / "pki")
    settings = load_settings(None, data_dir=tmp_path)
    async with await Store.open(settings.effective_database_url) as store:
        await register_test_station(store, IDENTITY, OcppVersion.V16)
    return tmp_path


async def test_CRT_02_server_killed_after_issuing_still_delivers_exactly_one_certificate(
    data_dir: Path,
) -> None:
    port = free_port()
    server = start_server(data_dir, port)
    try:
        ws = await open_when_up(port)
        station = RawStation(ws)
        assert (await station.call("BootNotification", BOOT_16))[2]["status"] == "Accepted"
        csr, _ = make_csr(IDENTITY)
        assert (await station.call("SignCertificate", {"csr": csr}))[2]["status"] == "Accepted"
        _, first = await station.expect_call("CertificateSigned")
        server.send_signal(signal.SIGKILL)  # before the station answers
        server.wait(timeout=10)
        await ws.close()

        server = start_server(data_dir, port)
        async with await open_when_up(port) as ws:
            station = RawStation(ws)
            assert (await station.call("BootNotification", BOOT_16))[2]["status"] == "Accepted"
            unique_id, second = await station.expect_call("CertificateSigned", timeout=20)
            assert second["certificateChain"] == first["certificateChain"]
            await station.answer(unique_id, {"status": "Accepted"})
            await asyncio.sleep(0.5)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    settings = load_settings(None, data_dir=data_dir)
    async with await Store.open(settings.effective_database_url) as store:
        certificates = await store.certificates.list(station=IDENTITY)
        requests = await store.certificate_requests.list(station_identity=IDENTITY)
    assert len(certificates) == 1
    assert [r.state for r in requests] == [CertificateRequestState.ACCEPTED]
    assert requests[0].delivery_attempts == 2
    assert json.dumps(second["certificateChain"]).count("BEGIN CERTIFICATE") == 2
