"""Helpers for job tests: wait for a job's state, connect with a given secret, read secrets."""

from __future__ import annotations

import asyncio
from typing import Any

from rawstation import AUTH_KEY, PASSWORD, SUBPROTOCOL, V16
from websockets.exceptions import InvalidStatus
from wsclient import basic, open_station

from chargewarden.app import RunningCsms
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.job_records import JobRecord, JobState


def old_secret(version: OcppVersion) -> bytes:
    return bytes.fromhex(AUTH_KEY) if version is V16 else PASSWORD.encode()


async def wait_job(
    csms: RunningCsms, job_id: int | None, *states: JobState, timeout: float = 20.0
) -> JobRecord:
    assert job_id is not None
    wanted = states or (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
    job = None
    for _ in range(int(timeout / 0.05)):
        job = await csms.store.jobs.get(job_id)
        if job is not None and job.state in wanted:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {wanted}: {job}")


async def admission_status(
    csms: RunningCsms, identity: str, version: OcppVersion, secret: bytes
) -> int:
    """101 when a connection with this secret is let in, else the HTTP status of the refusal."""
    try:
        async with open_station(
            csms, identity, basic(identity, secret), (SUBPROTOCOL[version],)
        ) as ws:
            await ws.close()
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def secret_text(value: Any) -> list[str]:
    """Forms a secret may take in text: as is, hex of bytes, both hex cases."""
    if isinstance(value, bytes):
        return [value.hex().upper(), value.hex()]
    return [str(value)]
