"""What a station needs before it is told to raise its profile (whitepaper A05.FR.02-04):
our CSMS root for profiles 2 and 3, and its own certificate, signed over OCPP, for profile 3."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from chargewarden.domain.station_commands import CommandFailed, FailureKind, RootCertificateKind
from chargewarden.store.job_records import JobRecord
from chargewarden.store.records import CertificateRequestState, StationRecord
from chargewarden.workflows.steps import Advance, Fail, Outcome, Wait, WorkflowDeps

# The signing flow finishes within seconds; a one-row read a second per waiting job is cheap,
# and the upgrade should not wait a whole poll period for its next step.
CERTIFICATE_POLL_SECONDS = 1.0


def offline(step: str, stage: int) -> Wait:
    return Wait(
        step, f"station is offline; the upgrade to profile {stage} goes on when it connects"
    )


async def install_csms_roots(
    deps: WorkflowDeps, job: JobRecord, station: StationRecord, stage: int
) -> Outcome:
    """InstallCertificate for every root our server certificates chain to; a rerun is harmless."""
    if deps.registry.get(station.identity) is None:
        return offline(job.step, stage)
    roots = deps.csms_roots()
    assert roots is not None and deps.station_certificates is not None
    for certificate in x509.load_pem_x509_certificates(roots):
        pem = certificate.public_bytes(Encoding.PEM).decode()
        try:
            status = await deps.station_certificates.install(
                station.identity, RootCertificateKind.CSMS_ROOT, pem, actor=job.actor
            )
        except CommandFailed as exc:
            if exc.kind is FailureKind.OFFLINE:
                return offline(job.step, stage)
            return Fail(f"installing the CSMS root failed: {exc}")
        if status != "Accepted":
            return Fail(f"station answered InstallCertificate(CSMS root) with {status}")
    return Advance("set-pending", "CSMS root installed on the station")


async def station_certificate(
    deps: WorkflowDeps, job: JobRecord, station: StationRecord, stage: int
) -> Outcome:
    """Trigger the CSR flow (certificate issue's CertificateSigning) and wait for its end."""
    signing = deps.signing
    assert signing is not None
    now = deps.clock()
    poll = timedelta(seconds=min(CERTIFICATE_POLL_SECONDS, deps.settings.poll_seconds))
    request_id = job.context.get("request_id")
    if request_id is None:
        if deps.registry.get(station.identity) is None:
            return offline(job.step, stage)
        try:
            # Returns the open request instead of a second one, so a rerun is harmless.
            request = await signing.request(station.identity, actor=job.actor)
        except CommandFailed as exc:
            if exc.kind is FailureKind.OFFLINE:
                return offline(job.step, stage)
            return Fail(f"asking the station for a CSR failed: {exc}")
        return Wait(
            "certificate",
            f"waiting for the station's CSR and its certificate (request {request.id})",
            wake_at=now + poll,
            deadline=now + timedelta(seconds=deps.settings.certificate_wait_seconds),
            context={"request_id": request.id},
        )
    request = await deps.store.certificate_requests.get(int(request_id))
    if request is None:
        return Fail(f"certificate request {request_id} disappeared")
    if request.state is CertificateRequestState.ACCEPTED:
        return Advance("set-pending", f"station installed its certificate (request {request_id})")
    if not request.state.open:
        why = f": {request.reason}" if request.reason else ""
        return Fail(f"certificate request {request_id} ended {request.state}{why}")
    if job.deadline is not None and now >= job.deadline:
        waited = deps.settings.certificate_wait_seconds
        return Fail(f"no certificate installed within {waited:.0f} s")
    return Wait(
        "certificate",
        f"waiting for the station's CSR and its certificate (request {request_id}, "
        f"{request.state})",
        wake_at=now + poll,
    )
