"""What the station edge reports as it works: admissions, refusals, handshakes, station calls.

An interface, so the gateway knows nothing of Prometheus (chargewarden.metrics implements it)
and runs without any of it in tests and benchmarks. Every method is called on the connection
path: implementations only bump counters, never await and never touch the store.
"""

from __future__ import annotations

from typing import Protocol

from chargewarden.rpc.versions import OcppVersion

# Outcomes of a TLS handshake.
TLS_OK = "ok"
TLS_REFUSED = "refused"  # OpenSSL refused it: version, suite, client certificate (an event)
TLS_DROPPED = "dropped"  # the peer went away, reset or timed out (network noise, no event)

# Refusals that are not a security-event type of their own.
STORE_UNAVAILABLE = "StoreUnavailable"


class GatewayObserver(Protocol):
    def admitted(self, profile: int) -> None:
        """A station connection was let in on security profile ``profile``."""
        ...

    def refused(self, reason: str) -> None:
        """A connection was refused; ``reason`` is the CsmsEvent type (or STORE_UNAVAILABLE)."""
        ...

    def tls_handshake(self, outcome: str, seconds: float) -> None: ...

    def station_call(
        self, version: OcppVersion, action: str, outcome: str, seconds: float
    ) -> None:
        """A station-initiated CALL was answered: outcome "ok" or the CALLERROR code."""
        ...


class NoObserver:
    """Reports nowhere."""

    def admitted(self, profile: int) -> None:
        return None

    def refused(self, reason: str) -> None:
        return None

    def tls_handshake(self, outcome: str, seconds: float) -> None:
        return None

    def station_call(
        self, version: OcppVersion, action: str, outcome: str, seconds: float
    ) -> None:
        return None
