"""What the HTTP API needs from the rest of the CSMS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from chargewarden.gateway.registry import ConnectionRegistry

if TYPE_CHECKING:
    from chargewarden.config import Settings
    from chargewarden.domain.certificate_signing import CertificateSigning
    from chargewarden.domain.renewal import CertificateRenewal
    from chargewarden.domain.root_rollover import RootRollover
    from chargewarden.domain.station_certificates import StationCertificates
    from chargewarden.metrics import CsmsMetrics
    from chargewarden.store import Store
    from chargewarden.workflows.firmware_service import FirmwareService
    from chargewarden.workflows.logs import LogService
    from chargewarden.workflows.service import JobService


@dataclass
class ApiContext:
    store: Store
    registry: ConnectionRegistry
    # Default seconds to wait for a station's answer to a CALL sent through the API.
    call_timeout: float = 30.0
    # Public PKI documents (no auth): the DER CRL of one of our CAs by name (None: unknown CA),
    # see pki.crl.make_crl_provider; and the CSMS root PEM, see pki.crl.make_csms_root_provider.
    crl_provider: Callable[[str], Awaitable[bytes | None]] | None = None
    csms_root_provider: Callable[[], Awaitable[bytes | None]] | None = None
    # Certificate lifecycle; signing and renewal are None when the CSMS runs without its CA.
    station_certificates: StationCertificates | None = None
    signing: CertificateSigning | None = None
    renewal: CertificateRenewal | None = None
    # Built-in roots an operator may install on stations without supplying a file.
    builtin_roots: Callable[[str], bytes | None] | None = None
    # CSMS root rollover (api/routes/rollover.py): None when the CSMS runs without its CA; the
    # settings say where the CA directory, and so the prepared rollover, is.
    rollover: RootRollover | None = None
    settings: Settings | None = None
    # Password rotation and profile upgrades (workflows/); None in API-only tests.
    jobs: JobService | None = None
    # Signed firmware and log retrieval (workflows/firmware.py, workflows/logs.py); None when
    # file transfer is off.
    firmware: FirmwareService | None = None
    logs: LogService | None = None
    # Prometheus metrics (GET /metrics); None: the route answers 404.
    metrics: CsmsMetrics | None = None
    # Readiness (GET /readyz): whether the station listeners are bound; None: no gateway here.
    listeners_ready: Callable[[], bool] | None = None


def get_context(request: Request) -> ApiContext:
    """FastAPI dependency: the context the app was created with."""
    ctx: ApiContext = request.app.state.ctx
    return ctx
