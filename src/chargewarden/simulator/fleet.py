"""Many simulated stations in one process (load tests, the demo, `chargewarden sim fleet`)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.connect import TlsMaterialError, station_ssl_context
from chargewarden.simulator.runner import ConnectOutcome, StationRunner

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StationResult:
    identity: str
    first_outcome: ConnectOutcome | None
    last_outcome: ConnectOutcome | None
    ever_admitted: bool
    booted: bool  # an Accepted boot at the moment the report was taken
    sent: int
    received: int


@dataclass(frozen=True)
class FleetReport:
    stations: tuple[StationResult, ...]

    @property
    def total(self) -> int:
        return len(self.stations)

    @property
    def admitted(self) -> int:
        """Stations the CSMS admitted at least once."""
        return sum(1 for s in self.stations if s.ever_admitted)

    @property
    def refused(self) -> int:
        """Stations that tried and were never admitted."""
        return sum(1 for s in self.stations if s.last_outcome is not None and not s.ever_admitted)

    @property
    def booted(self) -> int:
        return sum(1 for s in self.stations if s.booted)

    def refusal_reasons(self) -> Counter[str]:
        """Why never-admitted stations were refused, e.g. {"401: bad credentials": 3}."""
        return Counter(
            f"{s.last_outcome.http_status}: {s.last_outcome.reason}"
            for s in self.stations
            if s.last_outcome is not None and not s.ever_admitted
        )


def fleet_report(runners: Sequence[StationRunner]) -> FleetReport:
    """Snapshot of a running (or finished) fleet; usable for live progress output."""
    return FleetReport(
        tuple(
            StationResult(
                identity=r.config.identity,
                first_outcome=r.state.first_outcome,
                last_outcome=r.state.last_outcome,
                ever_admitted=r.state.admitted_connections > 0,
                booted=r.state.booted.is_set(),
                sent=r.state.sent,
                received=r.state.received,
            )
            for r in runners
        )
    )


async def run_fleet(
    configs: list[StationConfig],
    stop: asyncio.Event,
    *,
    concurrency_of_connects: int = 50,
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = 10.0,
    on_started: Callable[[list[StationRunner]], None] | None = None,
) -> FleetReport:
    """Run every station until `stop` is set; the report is taken just before they close.

    At most `concurrency_of_connects` handshakes are in progress at once (first connects and
    reconnect storms alike), which staggers the fleet instead of opening every socket in the
    same instant. `on_started` receives the runners, e.g. to print `fleet_report` periodically.

    `ssl_context`, when given, is used by every station; otherwise stations with the same TLS
    material (the same bytes) share one context built by `station_ssl_context`.
    """
    if concurrency_of_connects < 1:
        raise ValueError("concurrency_of_connects must be at least 1")
    limiter = asyncio.Semaphore(concurrency_of_connects)
    shared = _SharedContexts()
    runners = [
        StationRunner(
            config,
            ssl_context=ssl_context if ssl_context is not None else shared.get(config),
            connect_timeout=connect_timeout,
            connect_limiter=limiter,
        )
        for config in configs
    ]
    if on_started is not None:
        on_started(runners)
    inner_stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_run_logged(r, inner_stop), name=r.config.identity) for r in runners
    ]
    try:
        await stop.wait()
        # Snapshot before closing, so "booted" reflects the fleet at its steady state.
        report = fleet_report(runners)
    finally:
        inner_stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return report


class _SharedContexts:
    """One TLS context per distinct TLS material, so a fleet sharing a CSMS root (or the
    system store, or in tests one client certificate) loads it once, not once per station."""

    def __init__(self) -> None:
        self._contexts: dict[tuple[bytes | None, ...], ssl.SSLContext | None] = {}

    def get(self, config: StationConfig) -> ssl.SSLContext | None:
        if not config.uses_tls or config.state_dir is not None:
            return None  # a station with a state directory builds its own from what it holds
        key = (config.csms_root_pem, config.client_cert_pem, config.client_key_pem)
        if key not in self._contexts:
            try:
                self._contexts[key] = station_ssl_context(config)
            except TlsMaterialError as exc:
                raise TlsMaterialError(
                    exc.field, f"{exc.problem} (station {config.identity})"
                ) from None
        return self._contexts[key]


async def _run_logged(runner: StationRunner, stop: asyncio.Event) -> None:
    # One station's bug must not end the fleet, but must be visible when it happens.
    try:
        await runner.run(stop)
    except Exception:
        logger.exception("station %s stopped with an error", runner.config.identity)


def fleet_configs(
    prefix: str,
    count: int,
    *,
    start: int = 1,
    auth_key_for: Callable[[str], bytes] | None = None,
    password_for: Callable[[str], str] | None = None,
    client_chain_for: Callable[[str], tuple[bytes, bytes]] | None = None,
    state_root: Path | None = None,
    **params: Any,
) -> list[StationConfig]:
    """`count` configs with identities f"{prefix}{i:05d}" from `start`; `params` are the other
    StationConfig fields (ocpp_version, url, security_profile, ...). Per-station secrets come
    from `auth_key_for` / `password_for`, since a fleet sharing one password is unrealistic
    (whitepaper A01.FR.06), and per-station profile-3 certificates from `client_chain_for`
    (identity → (certificate chain PEM, key PEM); a CSMS binds a certificate to one station).
    `state_root`: each station keeps its keys and certificates in `state_root / identity`."""
    configs: list[StationConfig] = []
    for i in range(start, start + count):
        identity = f"{prefix}{i:05d}"
        extra: dict[str, Any] = {}
        if auth_key_for is not None:
            extra["auth_key"] = auth_key_for(identity)
        if password_for is not None:
            extra["password"] = password_for(identity)
        if client_chain_for is not None:
            extra["client_cert_pem"], extra["client_key_pem"] = client_chain_for(identity)
        if state_root is not None:
            extra["state_dir"] = Path(state_root) / identity
        configs.append(StationConfig(identity=identity, **params, **extra))
    return configs
