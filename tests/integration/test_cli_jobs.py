"""`chargewarden station rotate-password | upgrade` and `chargewarden jobs ...` against a real
`chargewarden serve` process (found through its run file, as an operator would), with raw
WebSocket stations whose every answer the test gives."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from rawstation import (
    AUTH_KEY,
    PASSWORD,
    SUBPROTOCOL,
    V16,
    V201,
    RawStation,
    boot,
    register_test_station,
)
from test_cli_certificates import (
    CLI,
    CLI_TIMEOUT,
    Serve,
    acli,
    assert_ok,
    assert_one_line_error,
    clean_env,
    cli,
    free_port,
)
from test_jobs_rotation import rotation_answer
from websockets.asyncio.client import ClientConnection, connect
from wsclient import basic

from chargewarden.config import load_settings
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store import Store

Station = tuple[str, OcppVersion, int]  # identity, version, profile


@pytest.fixture
def data_dir(tmp_path: Path, pki_template: Path) -> Path:
    shutil.copytree(pki_template, tmp_path / "pki")
    return tmp_path


@contextlib.asynccontextmanager
async def serving(data_dir: Path, *stations: Station) -> AsyncIterator[Serve]:
    """`chargewarden serve` with these stations registered first (the store is the server's
    alone once it runs)."""
    url = load_settings(None, data_dir=data_dir).effective_database_url
    async with await Store.open(url) as store:
        for identity, version, profile in stations:
            await register_test_station(store, identity, version, profile)
    serve = Serve(data_dir, free_port())
    try:
        await asyncio.to_thread(serve.wait_for_access)
        yield serve
    finally:
        await asyncio.to_thread(serve.stop)


@contextlib.asynccontextmanager
async def online(serve: Serve, identity: str, version: OcppVersion) -> AsyncIterator[RawStation]:
    """A booted raw station on the server's ws:// listener."""
    secret = bytes.fromhex(AUTH_KEY) if version is V16 else PASSWORD.encode()
    ws: ClientConnection = await connect(
        f"ws://127.0.0.1:{serve.ws_port}/ocpp/{identity}",
        subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
        additional_headers={"Authorization": basic(identity, secret)},
        open_timeout=15,
    )
    try:
        station = RawStation(ws)
        await boot(station, version)
        yield station
    finally:
        await ws.close()


async def answer(station: RawStation, action: str, reply: dict[str, Any]) -> dict[str, Any]:
    unique_id, payload = await station.expect_call(action, timeout=30)
    await station.answer(unique_id, reply)
    return payload


def job_id(output: str, fleet: bool = False) -> int:
    found = re.search(r"started fleet job (\d+)" if fleet else r"started job (\d+)", output)
    assert found, output
    return int(found.group(1))


# ------------------------------------------------------------------------ no server, bad flags


def test_bad_flags_and_no_server_are_one_line(tmp_path: Path) -> None:
    # Checked before the server is looked for: these never reach it.
    flags = [
        (("station", "rotate-password"), "give a station ID, or --all"),
        (("station", "rotate-password", "CP-1", "--all"), "not both"),
        (("station", "rotate-password", "CP-1", "--profile", "1"), "not with an ID"),
        (("station", "rotate-password", "CP-1", "--concurrency", "2"), "not with an ID"),
        (("station", "rotate-password", "--all", "--version", "3.0"), "expected 1.6 or 2.0.1"),
        (("station", "rotate-password", "--all", "--profile", "4"), "--profile must be 0 to 3"),
        (("station", "rotate-password", "--all", "--concurrency", "0"), "--concurrency must"),
        (("station", "upgrade", "CP-1"), "--to 2 or --to 3"),
        (("station", "upgrade", "CP-1", "--to", "4"), "--to must be 2 or 3, not 4"),
        (("station", "upgrade", "CP-1", "--to", "1"), "--to must be 2 or 3, not 1"),
        (("station", "upgrade", "--all", "--to", "2", "--slot", "1"), "--slot is for one"),
        (("station", "upgrade", "CP-1", "--to", "2", "--slot", "101"), "--slot must be 0 to 100"),
        (("station", "upgrade", "CP-1", "--all", "--to", "2"), "not both"),
    ]
    no_server = [
        (command, "is `chargewarden serve` running")
        for command in (
            ("station", "rotate-password", "CP-1"),
            ("station", "rotate-password", "--all", "--profile", "1"),
            ("station", "upgrade", "CP-1", "--to", "2"),
            ("jobs", "list"),
            ("jobs", "show", "1"),
            ("jobs", "cancel", "1"),
        )
    ]
    cases = flags + no_server
    # Real processes, several at once: each pays the interpreter's start-up.
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda case: cli(*case[0], data_dir=tmp_path), cases))
    for (_command, fragment), result in zip(cases, results, strict=True):
        assert_one_line_error(result, fragment)


# --------------------------------------------------------------- rotation and the jobs commands


async def test_rotation_waits_for_the_outcome_and_jobs_show_list_cancel(data_dir: Path) -> None:
    stations = [
        ("CJ-16", V16, 1),
        ("CJ-201", V201, 1),
        ("CJ-OFF", V201, 1),
        ("CJ-P3", V16, 3),
    ]
    async with serving(data_dir, *stations) as serve:
        # Accepted: the trail as it happens, then success.
        async with online(serve, "CJ-16", V16) as station:
            task = asyncio.create_task(
                acli("station", "rotate-password", "CJ-16", data_dir=data_dir)
            )
            payload = await answer(station, "ChangeConfiguration", {"status": "Accepted"})
            result = await task
        out = assert_ok(result)
        accepted = job_id(out)
        assert f"waiting for job {accepted} (Ctrl-C stops waiting, not the job)" in out
        assert "prepare: done - new credential generated" in out
        assert f"job {accepted} succeeded: station accepted the new credential" in out
        secret = payload["value"]
        for form in (secret, secret.lower()):
            assert form not in result.stdout + result.stderr

        # Rejected: the reason, on one line, exit 1.
        async with online(serve, "CJ-201", V201) as station:
            task = asyncio.create_task(
                acli("station", "rotate-password", "CJ-201", data_dir=data_dir)
            )
            await answer(station, "SetVariables", rotation_answer(V201, "Rejected"))
            rejected = await task
        line = assert_one_line_error(
            rejected, "failed: station answered Rejected", "old credential"
        )
        rejected_id = job_id(rejected.stdout)
        assert f"job {rejected_id} failed" in line

        # Unknown station, wrong profile: the server's reason.
        assert_one_line_error(
            await acli("station", "rotate-password", "NOPE", data_dir=data_dir), "no station 'NOPE'"
        )
        assert_one_line_error(
            await acli("station", "rotate-password", "CJ-P3", data_dir=data_dir),
            "CJ-P3 is on security profile 3",
            "client certificate",
        )

        # Offline, --no-wait: the id at once; a second job is a conflict; cancel.
        started = assert_ok(
            await acli("station", "rotate-password", "CJ-OFF", "--no-wait", data_dir=data_dir)
        )
        offline = job_id(started)
        assert f"follow it with: chargewarden jobs show {offline} --follow" in started
        assert_one_line_error(
            await acli("station", "upgrade", "CJ-OFF", "--to", "2", data_dir=data_dir),
            f"already has job {offline}",
        )
        shown = assert_ok(await acli("jobs", "show", str(offline), data_dir=data_dir))
        assert "waiting-for-station" in shown and "station is offline" in shown
        assert "trail (UTC):" in shown and "prepare: created - started by local-cli" in shown
        cancelled = assert_ok(await acli("jobs", "cancel", str(offline), data_dir=data_dir))
        assert f"job {offline} cancelled: cancelled before the new credential was sent" in cancelled
        assert_one_line_error(
            await acli("jobs", "cancel", str(offline), data_dir=data_dir),
            "already finished (cancelled)",
        )

        listing = assert_ok(await acli("jobs", "list", data_dir=data_dir))
        for identity, state in (
            ("CJ-16", "succeeded"),
            ("CJ-201", "failed"),
            ("CJ-OFF", "cancelled"),
        ):
            assert re.search(rf"{identity}\s+{state}", listing), listing
        only = assert_ok(
            await acli(
                "jobs",
                "list",
                "--station",
                "CJ-16",
                "--state",
                "succeeded",
                "--kind",
                "rotate-password",
                data_dir=data_dir,
            )
        )
        assert "CJ-16" in only and "CJ-201" not in only and "CJ-OFF" not in only
        assert "no jobs" in assert_ok(
            await acli("jobs", "list", "--state", "running", data_dir=data_dir)
        )
        assert_one_line_error(
            await acli("jobs", "list", "--station", "NOPE", data_dir=data_dir),
            "no station with identity 'NOPE'",
        )

        # --follow on finished jobs: the verdict as exit code.
        followed = assert_ok(
            await acli("jobs", "show", str(accepted), "--follow", data_dir=data_dir)
        )
        assert "awaiting-answer: succeeded" in followed
        assert_one_line_error(
            await acli("jobs", "show", str(rejected_id), "--follow", data_dir=data_dir),
            f"job {rejected_id} failed",
        )
        for command in (("jobs", "show", "999"), ("jobs", "cancel", "999")):
            assert_one_line_error(await acli(*command, data_dir=data_dir), "no job 999")
        assert serve.process.poll() is None


# ------------------------------------------------------------------------------------ fleets


async def answering(station: RawStation, action: str, reply: dict[str, Any]) -> None:
    """Answer every ``action`` call with ``reply`` until cancelled."""
    while True:
        await answer(station, action, reply)


async def test_fleet_rotation_shows_progress_and_a_summary(data_dir: Path) -> None:
    stations = [("F-1", V16, 1), ("F-2", V16, 1), ("F-P3", V16, 3), ("F-201", V201, 1)]
    fleet_16 = ("station", "rotate-password", "--all", "--version", "1.6", "--concurrency", "1")
    async with serving(data_dir, *stations) as serve:
        async with online(serve, "F-1", V16) as one, online(serve, "F-2", V16) as two:
            # F-2 refuses: the fleet fails, and the summary says which station and why.
            helpers = [
                asyncio.create_task(answering(one, "ChangeConfiguration", {"status": "Accepted"})),
                asyncio.create_task(answering(two, "ChangeConfiguration", {"status": "Rejected"})),
            ]
            try:
                failed = await acli(*fleet_16, data_dir=data_dir)
            finally:
                for helper in helpers:
                    helper.cancel()
            line = assert_one_line_error(failed, "failed: 2/2 finished, 1 succeeded, 1 failed")
            first = job_id(failed.stdout, fleet=True)
            assert f"job {first} failed" in line
            assert "left out: station F-P3 is on security profile 3" in failed.stdout
            assert "F-201" not in failed.stdout  # not a 1.6 station: not selected at all
            assert "stations that did not succeed:" in failed.stdout
            assert re.search(
                r"F-2\s+failed\s+awaiting-answer\s+station answered Rejected", failed.stdout
            )
            assert not re.search(r"F-1\s+succeeded", failed.stdout)

            # Both accept (the connections outlive the rotation): the fleet succeeds.
            helpers = [
                asyncio.create_task(answering(s, "ChangeConfiguration", {"status": "Accepted"}))
                for s in (one, two)
            ]
            try:
                result = await acli(*fleet_16, data_dir=data_dir)
            finally:
                for helper in helpers:
                    helper.cancel()
        out = assert_ok(result)
        fleet = job_id(out, fleet=True)
        assert (
            f"started fleet job {fleet}: rotate-password on 2 station(s), at most 1 at once" in out
        )
        assert "2/2 finished, 2 succeeded" in out and "did not succeed" not in out
        assert f"job {fleet} succeeded: 2/2 finished" in out

        shown = assert_ok(await acli("jobs", "show", str(fleet), data_dir=data_dir))
        assert "fleet: rotate-password" in shown and "progress" in shown and "stations:" in shown
        assert re.search(r"F-1\s+succeeded", shown) and re.search(r"F-2\s+succeeded", shown)

        # An upgrade fleet of offline stations, not waited for, then cancelled.
        started = assert_ok(
            await acli(
                "station",
                "upgrade",
                "--all",
                "--profile",
                "1",
                "--to",
                "2",
                "--version",
                "2.0.1",
                "--no-wait",
                data_dir=data_dir,
            )
        )
        upgrade = job_id(started, fleet=True)
        assert "upgrade-profile to 2 on 1 station(s)" in started
        listing = assert_ok(await acli("jobs", "list", data_dir=data_dir))
        assert "fleet: upgrade-profile to 2" in listing and "fleet: rotate-password" in listing
        assert "F-201" not in listing  # children only with --parent or --station
        children = assert_ok(
            await acli("jobs", "list", "--parent", str(upgrade), data_dir=data_dir)
        )
        assert re.search(r"upgrade-profile to 2\s+F-201", children), children
        cancelled = assert_ok(await acli("jobs", "cancel", str(upgrade), data_dir=data_dir))
        assert f"job {upgrade} cancelled" in cancelled
        assert_one_line_error(
            await acli("station", "rotate-password", "--all", "--profile", "3", data_dir=data_dir),
            "no station is eligible",
        )


# ------------------------------------------------------------- upgrade refused, Ctrl-C


async def test_upgrade_refused_by_the_station_and_ctrl_c_leaves_the_job_running(
    data_dir: Path,
) -> None:
    async with serving(data_dir, ("U-16", V16, 1), ("U-OFF", V201, 1), ("U-P2", V16, 2)) as serve:
        async with online(serve, "U-16", V16) as station:
            task = asyncio.create_task(
                acli("station", "upgrade", "U-16", "--to", "2", data_dir=data_dir)
            )
            await answer(station, "InstallCertificate", {"status": "Accepted"})
            switch = await answer(station, "ChangeConfiguration", {"status": "Rejected"})
            refused = await task
        assert switch == {"key": "SecurityProfile", "value": "2"}
        assert_one_line_error(
            refused,
            "failed: station answered ChangeConfiguration with Rejected",
            "stays on profile 1",
        )
        assert "install-root: done - CSMS root installed on the station" in refused.stdout
        assert_one_line_error(
            await acli("station", "upgrade", "U-P2", "--to", "2", data_dir=data_dir),
            "already on security profile 2",
        )

        # Ctrl-C while waiting stops the watching, not the job.
        process = await asyncio.create_subprocess_exec(
            str(CLI),
            "station",
            "rotate-password",
            "U-OFF",
            "--data-dir",
            str(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        assert process.stdout is not None
        seen = ""
        while "waiting for job" not in seen:
            line = await asyncio.wait_for(process.stdout.readline(), CLI_TIMEOUT)
            assert line, seen
            seen += line.decode()
        waiting = job_id(seen)
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
        assert process.returncode == 130, (seen, out, err)
        assert f"chargewarden jobs show {waiting} --follow" in err.decode()
        assert "Traceback" not in err.decode()
        shown = assert_ok(await acli("jobs", "show", str(waiting), data_dir=data_dir))
        assert "waiting-for-station" in shown and "cancel" not in shown


async def test_PWD_03_station_hold_and_release(data_dir: Path) -> None:
    settings = load_settings(None, data_dir=data_dir)
    async with await Store.open(settings.effective_database_url) as store:
        await register_test_station(store, "HOLD-1", V16, 1)
        await register_test_station(store, "HOLD-P3", V16, 3)
    held = cli("station", "hold", "HOLD-1", data_dir=data_dir)
    assert_ok(held)
    assert "held" in held.stdout and "auto_rotate_held" in held.stdout
    async with await Store.open(settings.effective_database_url) as store:
        record = await store.stations.get("HOLD-1")
        assert record is not None and record.needs_credential_update
        assert (await store.audit.list(target="HOLD-1"))[0].action == "station.hold"
    released = cli("station", "hold", "HOLD-1", "--release", data_dir=data_dir)
    assert_ok(released)
    async with await Store.open(settings.effective_database_url) as store:
        record = await store.stations.get("HOLD-1")
        assert record is not None and not record.needs_credential_update
    assert_one_line_error(cli("station", "hold", "HOLD-P3", data_dir=data_dir), "profile 3")
    assert_one_line_error(cli("station", "hold", "NOPE", data_dir=data_dir), "no station")
