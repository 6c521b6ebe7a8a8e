"""Certificate commands of the CLI against a real `chargewarden serve` process.

`serve` writes the local-cli token file (0600, in a 0700 directory) and removes it when it
stops; the station commands find the server through it. The station is a raw WebSocket client
answering the CSMS's certificate calls (AnsweringStation, from answering_station.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from answering_station import AnsweringStation
from rawstation import AUTH_KEY, make_csr, register_test_station
from tlskit import CPO
from websockets.asyncio.client import connect
from wsclient import BOOT_16, basic

from chargewarden.api.local_token import LOCAL_OPERATOR, publish_local_token
from chargewarden.config import load_settings
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.tokens import split_lookup, token_matches
from chargewarden.store import Store

CLI = Path(sys.executable).parent / "chargewarden"
IDENTITY = "CLI-CERT-1"
START_TIMEOUT = 60.0
CLI_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CHARGEWARDEN_")}
    env |= {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return env | extra


def cli(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [str(CLI), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=clean_env(**env),
        timeout=CLI_TIMEOUT,
        check=False,
    )


async def acli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess without blocking the loop (the station keeps answering)."""
    process = await asyncio.create_subprocess_exec(
        str(CLI),
        *args,
        "--data-dir",
        str(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
    assert process.returncode is not None
    return subprocess.CompletedProcess(list(args), process.returncode, out.decode(), err.decode())


def assert_ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


class Serve:
    """`chargewarden serve` as a process; stdout (which must never show the token) kept."""

    def __init__(self, data_dir: Path, ws_port: int) -> None:
        self.data_dir = data_dir
        self.ws_port = ws_port
        self.log = data_dir / f"serve-{ws_port}.log"
        argv = [
            str(CLI),
            "serve",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--ws-port",
            str(ws_port),
            "--wss-port",
            "0",
            "--api-port",
            "0",
            "--files-port",
            "0",
            "--public-hostname",
            "localhost",
        ]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own console script
                argv,
                env=clean_env(CHARGEWARDEN_CPO_NAME=CPO, CHARGEWARDEN_LOG_LEVEL="WARNING"),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def access_file(self) -> Path:
        return self.data_dir / "run" / "cli.json"

    def wait_for_access(self) -> dict[str, str]:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited: {self.log.read_text()}")
            if self.access_file.exists():
                return json.loads(self.access_file.read_text())
            if time.monotonic() > deadline:
                raise AssertionError("serve did not write its CLI access file")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@pytest.fixture
def data_dir(tmp_path: Path, pki_template: Path) -> Path:
    shutil.copytree(pki_template, tmp_path / "pki")
    return tmp_path


@pytest.fixture
def server(data_dir: Path) -> Iterator[Serve]:
    serve = Serve(data_dir, free_port())
    try:
        yield serve
    finally:
        serve.stop()


# ------------------------------------------------------------------------ the local token


def test_serve_writes_private_cli_access_and_removes_it_on_shutdown(
    server: Serve, data_dir: Path
) -> None:
    access = server.wait_for_access()
    assert set(access) == {"api_url", "token"}
    assert access["api_url"].startswith("http://127.0.0.1:")
    assert stat.S_IMODE(server.access_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.access_file.parent.stat().st_mode) == 0o700
    # Nothing but the file holds the token: not the server's output.
    response = httpx.get(
        access["api_url"] + "/api/alerts",
        headers={"Authorization": f"Bearer {access['token']}"},
        timeout=10,
    )
    assert response.status_code == 200 and response.json() == []
    assert "no alerts" in assert_ok(cli("alerts", data_dir=data_dir))
    assert_one_line_error(
        cli("station", "certificates", "NOBODY", data_dir=data_dir),
        "no station with identity 'NOBODY'",
    )

    assert server.stop() == 0
    assert not server.access_file.exists()
    assert access["token"] not in server.log.read_text()

    # A new start replaces the token: the old one no longer works.
    again = Serve(data_dir, free_port())
    try:
        fresh = again.wait_for_access()
        assert fresh["token"] != access["token"]
        old = httpx.get(
            fresh["api_url"] + "/api/alerts",
            headers={"Authorization": f"Bearer {access['token']}"},
            timeout=10,
        )
        assert old.status_code == 401
    finally:
        assert again.stop() == 0
    assert not again.access_file.exists()


async def test_replacing_the_local_token_revokes_the_previous_one(tmp_path: Path) -> None:
    async with await Store.open(load_settings(None, data_dir=tmp_path).effective_database_url) as (
        store
    ):
        first = await publish_local_token(store, tmp_path, "http://127.0.0.1:1")
        second = await publish_local_token(store, tmp_path, "http://127.0.0.1:1")
        record = await store.operators.get(LOCAL_OPERATOR)
        assert record is not None and record.role == "admin"
        assert token_matches(second.token, record.token_hash)
        assert not token_matches(first.token, record.token_hash)
        assert await store.operators.find_by_lookup(split_lookup(first.token) or "") is None
        assert json.loads(second.path.read_text())["token"] == second.token
        first.remove()  # not its file any more: left alone
        assert second.path.exists()
        second.remove()
        assert not second.path.exists()


def test_station_commands_without_a_server_are_one_line(tmp_path: Path) -> None:
    for command in (
        ("station", "certificates", "CP-1"),
        ("station", "install-root", "CP-1", "--type", "csms-root"),
        ("station", "delete-cert", "CP-1", "--serial", "0A"),
        ("station", "cert-requests", "CP-1"),
        ("cert", "renew", "--expiring", "30"),
        ("alerts",),
    ):
        assert_one_line_error(cli(*command, data_dir=tmp_path), "is `chargewarden serve` running")

    # A file left behind by a server that was killed: still one line.
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    stale = {"api_url": f"http://127.0.0.1:{free_port()}", "token": "cw_stale"}
    (run / "cli.json").write_text(json.dumps(stale))
    line = assert_one_line_error(
        cli("station", "certificates", "CP-1", data_dir=tmp_path),
        "cannot connect",
        "is `chargewarden serve` running",
    )
    assert "cw_stale" not in line

    # An explicit URL never receives the run file's token.
    assert_one_line_error(
        cli("alerts", "--api-url", "http://127.0.0.1:9", data_dir=tmp_path),
        "CHARGEWARDEN_API_TOKEN",
    )


# ----------------------------------------------------------- station commands, end to end


async def register(data_dir: Path) -> None:
    async with await Store.open(load_settings(None, data_dir=data_dir).effective_database_url) as (
        store
    ):
        await register_test_station(store, IDENTITY, OcppVersion.V16)


@pytest.fixture
async def station(data_dir: Path) -> AsyncIterator[tuple[Serve, AnsweringStation]]:
    await register(data_dir)
    serve = Serve(data_dir, free_port())
    try:
        await asyncio.to_thread(serve.wait_for_access)
        ws = await connect(
            f"ws://127.0.0.1:{serve.ws_port}/ocpp/{IDENTITY}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers={"Authorization": basic(IDENTITY, bytes.fromhex(AUTH_KEY))},
            open_timeout=15,
        )
        answering = AnsweringStation(ws, OcppVersion.V16)
        try:
            assert (await answering.call("BootNotification", BOOT_16))["status"] == "Accepted"
            yield serve, answering
        finally:
            await answering.close()
            await ws.close()
    finally:
        await asyncio.to_thread(serve.stop)


async def test_renew_install_list_and_delete_through_the_server(
    station: tuple[Serve, AnsweringStation], data_dir: Path
) -> None:
    serve, answering = station
    # The station gets its first certificate on its own initiative.
    csr, _ = make_csr(IDENTITY)
    assert (await answering.call("SignCertificate", {"csr": csr}))["status"] == "Accepted"
    await asyncio.wait_for(answering.signed.wait(), 15)
    answering.signed.clear()

    nothing_due = assert_ok(await acli("cert", "renew", "--expiring", "30", data_dir=data_dir))
    assert "no station certificates expire within 30 days" in nothing_due

    # Named explicitly, the station is renewed although nothing is due.
    renewed = assert_ok(await acli("cert", "renew", "--station", IDENTITY, data_dir=data_dir))
    assert IDENTITY in renewed and "CSR requested" in renewed
    assert "ExtendedTriggerMessage" in answering.actions()
    # Under way now: nothing left to renew for it.
    assert_one_line_error(
        await acli("cert", "renew", "--station", IDENTITY, data_dir=data_dir),
        "nothing to renew",
    )
    requests = assert_ok(await acli("station", "cert-requests", IDENTITY, data_dir=data_dir))
    assert "triggered" in requests and "accepted" in requests and "local-cli" in requests

    installed = assert_ok(
        await acli("station", "install-root", IDENTITY, "--type", "csms-root", data_dir=data_dir)
    )
    assert "installed csms-root" in installed
    listing = assert_ok(await acli("station", "certificates", IDENTITY, data_dir=data_dir))
    assert "CentralSystemRootCertificate" in listing and "csms-root" in listing
    serial = answering.installed[0][1]["serialNumber"]
    assert serial in listing

    assert_one_line_error(
        await acli("station", "delete-cert", IDENTITY, "--serial", serial, data_dir=data_dir),
        "last CSMS root",
    )
    deleted = assert_ok(
        await acli(
            "station", "delete-cert", IDENTITY, "--serial", serial, "--force", data_dir=data_dir
        )
    )
    assert f"deleted certificate {serial}" in deleted
    assert answering.installed == []
    assert "no alerts" in assert_ok(await acli("alerts", data_dir=data_dir))
    assert serve.process.poll() is None
