"""The demo's certificate phase: a renewal for a 1.6 and a 2.0.1 station, and a refused CSR.

Runs against the demo stations already connected: each profile-3 station is asked for a CSR,
gets its new certificate, reconnects with it and is admitted; a station whose CSR carries the
wrong organisation is refused with the reason recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from chargewarden.app import RunningCsms
from chargewarden.domain.station_commands import CommandFailed
from chargewarden.store.records import CertificateRequestRecord, CertificateRequestState

WAIT_SECONDS = 20.0
DEMO_ACTOR = "demo"


async def _settled(running: RunningCsms, request_id: int) -> CertificateRequestRecord | None:
    """The request once it has left triggered/issued, or None after WAIT_SECONDS."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                request = await running.store.certificate_requests.get(request_id)
                if request is not None and not request.state.open:
                    return request
                await asyncio.sleep(0.1)
    return None


async def _reconnected_with(running: RunningCsms, identity: str, fingerprint: str) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                link = running.registry.get(identity)
                if link is not None and link.info.certificate_fingerprint == fingerprint:
                    return True
                await asyncio.sleep(0.1)
    return False


async def _request_and_settle(
    running: RunningCsms, identity: str
) -> tuple[int, CertificateRequestRecord | None] | str:
    """Trigger the station's CSR and wait for the outcome; a string says why it failed."""
    assert running.signing is not None
    try:
        request = await running.signing.request(identity, actor=DEMO_ACTOR)
    except CommandFailed as exc:
        return str(exc)
    assert request.id is not None
    return request.id, await _settled(running, request.id)


async def renew(running: RunningCsms, identity: str) -> tuple[bool, str]:
    """Renew the station's certificate over OCPP; (as expected, what happened)."""
    outcome = await _request_and_settle(running, identity)
    if isinstance(outcome, str):
        return False, outcome
    request_id, settled = outcome
    if settled is None or settled.state is not CertificateRequestState.ACCEPTED:
        state = settled.state if settled else "no answer"
        return False, f"request {request_id}: {state} {settled.reason if settled else ''}"
    certificate = await running.store.certificates.get_by_id(settled.certificate_id or -1)
    assert certificate is not None
    if not await _reconnected_with(running, identity, certificate.fingerprint_sha256):
        return False, f"new certificate {certificate.serial} issued, station did not reconnect"
    return True, (
        f"new certificate {certificate.serial[:12]}…, expires {certificate.not_after:%Y-%m-%d}; "
        "reconnected with it, old one retired"
    )


async def refused_csr(running: RunningCsms, identity: str) -> tuple[bool, str]:
    """Ask a station whose CSR is defective; the CSMS must refuse to sign it."""
    outcome = await _request_and_settle(running, identity)
    if isinstance(outcome, str):
        return False, outcome
    request_id, settled = outcome
    if settled is None or settled.state is not CertificateRequestState.REJECTED:
        return False, f"request {request_id} was not refused"
    return True, f"CSR refused: {settled.reason}"


async def run_certificate_phase(
    running: RunningCsms,
    renewals: list[str],
    defective: list[str],
    progress: Callable[[str], None],
) -> list[tuple[str, str, bool, str]]:
    """(identity, result, as expected, why) per station."""
    if running.signing is None:
        return []
    progress("renewing the profile-3 stations' certificates over OCPP")
    rows = []
    for identity in renewals:
        ok, why = await renew(running, identity)
        rows.append((identity, "renewed" if ok else "NOT renewed", ok, why))
    for identity in defective:
        ok, why = await refused_csr(running, identity)
        rows.append((identity, "CSR refused" if ok else "CSR NOT refused", ok, why))
    return rows
