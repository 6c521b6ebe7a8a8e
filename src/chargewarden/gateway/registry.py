"""Where live station connections are found.

Command routing goes through this interface so that a multi-node deployment can replace the
in-memory registry with one that forwards to the node holding the connection (DESIGN.md,
Scale-out). Policy for several connections of one identity: the newest wins and the older one
is closed with code 4000 ("replaced by a newer connection").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chargewarden.rpc.versions import OcppVersion


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    identity: str
    ocpp_version: OcppVersion
    security_profile: int
    connected_since: datetime
    peer: str
    transport: str  # "ws" or "wss"
    # SHA-256 of the client certificate (profile 3), so a revocation can close the connection.
    certificate_fingerprint: str | None = None


class StationLink(Protocol):
    """A live connection as the rest of the CSMS sees it."""

    @property
    def info(self) -> ConnectionInfo: ...

    async def call(
        self, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload.

        Raises chargewarden.rpc.session.CallTimeout, CallErrorReceived, or ConnectionGone.
        """
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class ConnectionRegistry(Protocol):
    def register(self, link: StationLink) -> StationLink | None:
        """Add a link; return the link it replaced (the caller closes it)."""
        ...

    def unregister(self, link: StationLink) -> None:
        """Remove the link if it is still the registered one for its identity."""
        ...

    def get(self, identity: str) -> StationLink | None: ...

    def all(self) -> list[ConnectionInfo]: ...

    def links(self) -> list[StationLink]: ...


class InMemoryRegistry:
    """Single-node registry."""

    def __init__(self) -> None:
        self._links: dict[str, StationLink] = {}

    def register(self, link: StationLink) -> StationLink | None:
        identity = link.info.identity
        previous = self._links.get(identity)
        self._links[identity] = link
        return previous if previous is not link else None

    def unregister(self, link: StationLink) -> None:
        identity = link.info.identity
        if self._links.get(identity) is link:
            del self._links[identity]

    def get(self, identity: str) -> StationLink | None:
        return self._links.get(identity)

    def all(self) -> list[ConnectionInfo]:
        return sorted((link.info for link in self._links.values()), key=lambda i: i.identity)

    def links(self) -> list[StationLink]:
        return list(self._links.values())

    def __len__(self) -> int:
        return len(self._links)
