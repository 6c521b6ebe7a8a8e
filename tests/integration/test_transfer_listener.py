"""The file-transfer listener: HTTPS with the CSMS certificate, the same TLS rules as wss."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from firmwarekit import files_client
from tlskit import client_context, tls_settings

from chargewarden.app import RunningCsms, start_csms
from chargewarden.pki.material import csms_root_pem


@pytest.fixture
async def running(tmp_path: Path, pki_template: Path) -> AsyncIterator[RunningCsms]:
    csms = await start_csms(tls_settings(tmp_path, pki_template), with_api=False)
    try:
        yield csms
    finally:
        await csms.stop()


async def test_SEC_06_files_served_over_https_with_the_csms_certificate(
    running: RunningCsms,
) -> None:
    assert running.files_url is not None and running.files_url.startswith("https://localhost:")
    async with files_client(running) as client:
        response = await client.get(f"{running.files_url}/healthz")
    assert response.status_code == 200


async def test_SEC_07_files_listener_refuses_tls_below_1_2(running: RunningCsms) -> None:
    assert running.files is not None
    try:
        context = client_context(
            csms_root_pem(running.settings), maximum_version=ssl.TLSVersion.TLSv1_1
        )
    except ssl.SSLError:
        pytest.skip("this OpenSSL cannot even build a TLS < 1.2 client")
    host, port = running.files.server.address
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname="localhost"), 5
        )
        writer.close()


async def test_files_listener_is_off_without_a_ca(tmp_path: Path) -> None:
    from chargewarden.config import load_settings

    settings = load_settings(
        None, data_dir=tmp_path, ws_port=0, api_port=0, files={"port": 0}
    ).model_copy(update={"wss_port": None})
    csms = await start_csms(settings, with_api=False)
    try:
        assert csms.files is None and csms.firmware is None and csms.files_url is None
    finally:
        await csms.stop()


async def test_firmware_job_left_from_before_fails_when_file_transfer_is_off(
    tmp_path: Path,
) -> None:
    from jobkit import wait_job

    from chargewarden.app import open_store
    from chargewarden.config import load_settings
    from chargewarden.store.job_records import JobKind, JobRecord, JobState

    settings = load_settings(None, data_dir=tmp_path, ws_port=0, api_port=0).model_copy(
        update={"wss_port": None}
    )
    store = await open_store(settings)
    try:
        job = await store.jobs.add(
            JobRecord(
                kind=JobKind.UPDATE_FIRMWARE,
                state=JobState.PENDING,
                step="send",
                actor="test",
                station_identity="CP-1",
                params={"update": 1},
            )  # fmt: skip
        )
    finally:
        await store.close()
    csms = await start_csms(settings, with_api=False)
    try:
        done = await wait_job(csms, job.id)
    finally:
        await csms.stop()
    assert done.state is JobState.FAILED and "file transfer" in (done.message or "")
