"""`chargewarden logs fetch | list | get` (LOG-01) against a real `chargewarden serve` process,
with raw stations that answer GetLog, upload over HTTPS and report, as chargers do."""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from rawstation import V16, V201
from test_cli_certificates import acli, assert_ok, assert_one_line_error, cli
from test_cli_jobs import answer, online, serving
from test_logs_retrieval import SECURITY_LOG, report, token_of

from chargewarden.config import load_settings
from chargewarden.pki.material import csms_root_pem

BINARY = bytes(range(256)) * 4


@pytest.fixture
def data_dir(tmp_path: Path, pki_template: Path) -> Path:
    shutil.copytree(pki_template, tmp_path / "pki")
    return tmp_path


def request_id(output: str) -> int:
    found = re.search(r"\(requestId (\d+)\)", output)
    assert found, output
    return int(found.group(1))


async def upload(data_dir: Path, url: str, content: bytes) -> int:
    root = csms_root_pem(load_settings(None, data_dir=data_dir)).decode("ascii")
    async with httpx.AsyncClient(verify=ssl.create_default_context(cadata=root)) as client:
        return (await client.put(url, content=content, timeout=15)).status_code


def test_bad_flags_and_no_server_are_one_line(tmp_path: Path) -> None:
    cases = [
        (("logs", "fetch", "CP-1"), "--type security or --type diagnostics"),
        (("logs", "fetch", "CP-1", "--type", "kernel"), "--type must be security or diagnostics"),
        (
            ("logs", "fetch", "CP-1", "--type", "security", "--since", "2025-01-01T00:00:00"),
            "--since: give a time zone",
        ),
        (("logs", "fetch", "CP-1", "--type", "security", "--until", "soon"), "not an ISO 8601"),
        (("logs", "list", "--type", "kernel"), "--type must be"),
        (("logs", "list"), "is `chargewarden serve` running"),
        (("logs", "get", "1"), "is `chargewarden serve` running"),
    ]
    with ThreadPoolExecutor(max_workers=7) as pool:
        results = list(pool.map(lambda case: cli(*case[0], data_dir=tmp_path), cases))
    for (_command, fragment), result in zip(cases, results, strict=True):
        assert_one_line_error(result, fragment)


async def test_TC_079_fetch_waits_for_the_file_then_list_and_get_it(data_dir: Path) -> None:
    async with serving(data_dir, ("CL-16", V16, 1), ("CL-201", V201, 1)) as serve:
        async with online(serve, "CL-16", V16) as station:
            task = asyncio.create_task(
                acli("logs", "fetch", "CL-16", "--type", "security", data_dir=data_dir)
            )
            payload = await answer(station, "GetLog", {"status": "Accepted", "filename": "s.log"})
            location = payload["log"]["remoteLocation"]
            await report(station, "Uploading", payload["requestId"])
            assert await upload(data_dir, location, SECURITY_LOG) == 201
            await report(station, "Uploaded", payload["requestId"])
            result = await task
        out = assert_ok(result)
        fetched = request_id(out)
        assert fetched == payload["requestId"]
        assert "started job" in out and "fetch the security log of CL-16" in out
        assert f"security log stored: {len(SECURITY_LOG)} bytes" in out
        assert f"chargewarden logs get {fetched} --out FILE" in out
        token = token_of(location)
        assert token not in result.stdout + result.stderr

        # 2.0.1, diagnostics, --no-wait; the station uploads something binary.
        async with online(serve, "CL-201", V201) as station:
            started = assert_ok(
                await acli(
                    "logs",
                    "fetch",
                    "CL-201",
                    "--type",
                    "diagnostics",
                    "--no-wait",
                    data_dir=data_dir,
                )
            )
            second = request_id(started)
            assert "follow it with: chargewarden jobs show" in started
            payload = await answer(station, "GetLog", {"status": "Accepted"})
            assert payload["logType"] == "DiagnosticsLog"
            assert await upload(data_dir, payload["log"]["remoteLocation"], BINARY) == 201
            await report(station, "Uploaded", second)

            listed = assert_ok(await acli("logs", "list", data_dir=data_dir))
            assert re.search(
                rf"^{fetched}\s+CL-16\s+security\s+uploaded\s+Uploaded\s", listed, re.M
            )
            only = assert_ok(await acli("logs", "list", "--station", "CL-16", data_dir=data_dir))
            assert "CL-201" not in only

            # Text to stdout; binary only with --out (0600).
            printed = await acli("logs", "get", str(fetched), data_dir=data_dir)
            assert assert_ok(printed) == SECURITY_LOG.decode()
            assert_one_line_error(
                await acli("logs", "get", str(second), data_dir=data_dir), "binary", "--out FILE"
            )
            target = data_dir / "diag.bin"
            wrote = assert_ok(
                await acli("logs", "get", str(second), "--out", str(target), data_dir=data_dir)
            )
            assert f"wrote {len(BINARY)} bytes to {target}" in wrote
            assert target.read_bytes() == BINARY
            assert stat.S_IMODE(target.stat().st_mode) == 0o600

            # A refusal is one line and exit 1; nothing to get for it.
            task = asyncio.create_task(
                acli("logs", "fetch", "CL-201", "--type", "security", data_dir=data_dir)
            )
            await answer(station, "GetLog", {"status": "Rejected"})
            rejected = await task
        assert_one_line_error(rejected, "failed: station answered GetLog Rejected")
        refused = request_id(rejected.stdout)
        assert_one_line_error(
            await acli("logs", "get", str(refused), data_dir=data_dir),
            f"log request {refused} has no stored file",
            "refused",
        )
        assert_one_line_error(
            await acli("logs", "get", "4242", data_dir=data_dir), "no log request 4242"
        )
        assert_one_line_error(
            await acli("logs", "fetch", "NOPE", "--type", "security", data_dir=data_dir),
            "no station 'NOPE'",
        )
    assert token not in serve.log.read_text()
