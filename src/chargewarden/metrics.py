"""Prometheus metrics of one CSMS, on a registry of its own.

Not prometheus_client's global default registry: tests and several CSMS instances in one
process would otherwise share (and collide on) every series.

Two kinds of numbers:

* counted as it happens, by the gateway through `GatewayObserver` (admissions and refusals,
  station calls, TLS handshakes): a counter increment, no I/O, on the connection path;
* read when Prometheus scrapes: live connections straight from the connection registry (memory),
  certificate expiry and jobs from the store. prometheus_client collects synchronously, so the
  async /metrics route awaits `refresh()` (two aggregate queries) before `render()`.

Labels are low-cardinality by construction: never a station identity, a peer address or
anything secret; actions are bounded to those the OCPP version defines (rpc.router).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from chargewarden.gateway.observer import STORE_UNAVAILABLE, TLS_DROPPED, TLS_OK, TLS_REFUSED
from chargewarden.gateway.registry import ConnectionRegistry
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.events import CsmsEvent
from chargewarden.store.job_records import JobKind, JobState

if TYPE_CHECKING:
    from chargewarden.store import Store

ADMITTED, REFUSED = "admitted", "refused"
PROFILES = (0, 1, 2, 3)
# Refusals a healthy CSMS may never see: created at zero so that rate() and increase() see the
# first one too (a series that appears at 1 loses that increment).
ADMISSION_REFUSALS = (
    CsmsEvent.UNKNOWN_STATION,
    CsmsEvent.INVALID_IDENTITY,
    CsmsEvent.MISSING_CREDENTIALS,
    CsmsEvent.USERNAME_MISMATCH,
    CsmsEvent.INVALID_CREDENTIALS,
    CsmsEvent.PROFILE_TRANSPORT_MISMATCH,
    CsmsEvent.PROFILE_ZERO_DISABLED,
    CsmsEvent.RATE_LIMITED,
    CsmsEvent.NO_COMMON_SUBPROTOCOL,
    CsmsEvent.VERSION_MISMATCH,
    CsmsEvent.INVALID_CLIENT_CERTIFICATE,
    CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH,
    CsmsEvent.REVOKED_CERTIFICATE,
    CsmsEvent.TLS_VERSION_REFUSED,
    CsmsEvent.TLS_CIPHER_REFUSED,
    CsmsEvent.TLS_HANDSHAKE_FAILED,
    STORE_UNAVAILABLE,
)
# Handling a CALL includes a store write (BootNotification, StatusNotification): milliseconds.
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A handshake queued behind a reconnect storm may take seconds; the timeout is 30 s.
TLS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Station certificates by time left, exclusive buckets: (label, upper bound in days).
EXPIRY_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("expired", 0),
    ("lt7d", 7),
    ("lt30d", 30),
    ("lt90d", 90),
    ("ge90d", None),
)


def profile_label(profile: int) -> str:
    return f"profile{profile}"


def expiry_buckets(total: int, within: list[int]) -> dict[str, int]:
    """Exclusive buckets from cumulative counts (``within[i]``: expired by bound ``i``)."""
    buckets: dict[str, int] = {}
    below = 0
    for (label, _), count in zip(EXPIRY_BUCKETS, [*within, total], strict=True):
        buckets[label] = count - below
        below = count
    return buckets


class _Connections:
    """Live connections by profile and version, read from the registry at each scrape."""

    def __init__(self, connections: ConnectionRegistry) -> None:
        self._connections = connections

    def collect(self) -> Iterable[Metric]:
        tally = Tally(
            (link.info.security_profile, link.info.ocpp_version)
            for link in self._connections.links()
        )
        family = GaugeMetricFamily(
            "chargewarden_connections",
            "Station connections open now, by security profile and OCPP version.",
            labels=["security_profile", "ocpp_version"],
        )
        for version in OcppVersion:
            for profile in PROFILES:
                family.add_metric([str(profile), version.value], tally[(profile, version)])
        yield family


@dataclass(eq=False)  # the registry keys collectors by identity
class _StoreView:
    """The store-derived gauges as of the last `CsmsMetrics.refresh()`."""

    certificates: dict[str, int] = field(default_factory=dict)
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)

    def collect(self) -> Iterable[Metric]:
        if self.certificates:
            certs = GaugeMetricFamily(
                "chargewarden_station_certificates",
                "Stations' newest unrevoked certificate per issuing CA, by time to expiry "
                "(exclusive buckets).",
                labels=["expires_in"],
            )
            for label, count in self.certificates.items():
                certs.add_metric([label], count)
            yield certs
        if self.jobs:
            jobs = GaugeMetricFamily(
                "chargewarden_jobs", "Durable jobs by kind and state.", labels=["kind", "state"]
            )
            for (kind, state), count in sorted(self.jobs.items()):
                jobs.add_metric([kind, state], count)
            yield jobs


class CsmsMetrics:
    """The CSMS's metrics; implements gateway.observer.GatewayObserver."""

    def __init__(self, connections: ConnectionRegistry) -> None:
        self.registry = CollectorRegistry()
        self._admissions = Counter(
            "chargewarden_admissions",
            "Station connection attempts decided: admitted (reason: the security profile) or "
            "refused (reason: the security event type).",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self._calls = Counter(
            "chargewarden_station_calls",
            "Station-initiated CALLs answered, by action and outcome (ok or the CALLERROR code).",
            ["ocpp_version", "action", "outcome"],
            registry=self.registry,
        )
        self._call_seconds = Histogram(
            "chargewarden_station_call_seconds",
            "Time to handle a station-initiated CALL (validation, handler, store), in seconds.",
            ["ocpp_version", "action"],
            buckets=CALL_BUCKETS,
            registry=self.registry,
        )
        self._tls_seconds = Histogram(
            "chargewarden_tls_handshake_seconds",
            "Duration of TLS handshakes on the wss listener, by outcome, in seconds.",
            ["outcome"],
            buckets=TLS_BUCKETS,
            registry=self.registry,
        )
        for profile in PROFILES:
            self._admissions.labels(ADMITTED, profile_label(profile))
        for reason in ADMISSION_REFUSALS:
            self._admissions.labels(REFUSED, str(reason))
        for outcome in (TLS_OK, TLS_REFUSED, TLS_DROPPED):
            self._tls_seconds.labels(outcome)
        self._store_view = _StoreView()
        self.registry.register(_Connections(connections))
        self.registry.register(self._store_view)

    # --- GatewayObserver: called on the connection path, counters only ---

    def admitted(self, profile: int) -> None:
        self._admissions.labels(ADMITTED, profile_label(profile)).inc()

    def refused(self, reason: str) -> None:
        self._admissions.labels(REFUSED, str(reason)).inc()

    def tls_handshake(self, outcome: str, seconds: float) -> None:
        self._tls_seconds.labels(outcome).observe(seconds)

    def station_call(
        self, version: OcppVersion, action: str, outcome: str, seconds: float
    ) -> None:
        self._calls.labels(version.value, action, outcome).inc()
        self._call_seconds.labels(version.value, action).observe(seconds)

    # --- scrape ---

    async def refresh(self, store: Store, now: datetime | None = None) -> None:
        """Read the store-derived numbers (two aggregate queries); StoreError if it fails."""
        now = now or datetime.now(UTC)
        bounds = [timedelta(days=days) for _, days in EXPIRY_BUCKETS if days is not None]
        total, within = await store.certificates.count_station_expiring(now, bounds)
        counted = await store.jobs.count_by_kind_and_state()
        # Every kind and state, zeros included: a series that vanishes reads as "no data".
        jobs = {(kind.value, state.value): 0 for kind in JobKind for state in JobState}
        jobs.update(counted)
        self._store_view.certificates = expiry_buckets(total, within)
        self._store_view.jobs = jobs

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (text format, or OpenMetrics if asked for) and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
