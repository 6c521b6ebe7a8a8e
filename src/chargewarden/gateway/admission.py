"""Admission: the one place that decides whether a station connection is let in.

Pure: no sockets, no database, no hashing. The gateway gathers the facts, calls `admit()`, and
acts on the verdict. Password verification is slow and cached elsewhere, so `admit()` asks for
it as a step (`CheckPassword`) instead of doing it: the gateway verifies and calls again with
the result. Every branch is unit-tested without a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.basic_auth import BasicCredentials, username_matches
from chargewarden.security.events import CsmsEvent
from chargewarden.security.verifier import CredentialMatch
from chargewarden.store.records import StationRecord

WWW_AUTHENTICATE = 'Basic realm="OCPP", charset="UTF-8"'


@dataclass(frozen=True, slots=True)
class Transport:
    """What the network edge knows about the connection."""

    scheme: Literal["ws", "wss"]
    peer: str


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    identity: str
    offered_subprotocols: tuple[str, ...]
    credentials: BasicCredentials | None
    # An Authorization header was sent but could not be parsed as Basic credentials.
    malformed_authorization: bool = False


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    allow_profile_0: bool = False


@dataclass(frozen=True, slots=True)
class Accept:
    identity: str
    profile: int
    # None: no common subprotocol; the handshake completes without one and is closed (RPC-01).
    version: OcppVersion | None
    credential: CredentialMatch | None = None
    # The first connection at the station's pending profile commits the upgrade (SEC-11).
    commits_pending_profile: bool = False
    # Set when version is None: why no subprotocol was chosen, for the security event.
    close_event: CsmsEvent | None = None
    close_reason: str = ""


@dataclass(frozen=True, slots=True)
class Reject:
    status: int
    event: CsmsEvent
    # For the operator (security event, log); never sent to the station in detail.
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CheckPassword:
    """Admission needs the password checked against the station's stored hashes."""

    password: bytes


Verdict = Accept | Reject | CheckPassword


def _unauthorized(event: CsmsEvent, reason: str) -> Reject:
    return Reject(401, event, reason, (("WWW-Authenticate", WWW_AUTHENTICATE),))


def _transport_profiles(transport: Transport) -> frozenset[int]:
    # Profiles 2/3 (TLS) arrive with issue 3's listener; a plain ws connection can only be 0/1.
    if transport.scheme == "ws":
        return frozenset({0, 1})
    return frozenset({2})


def _allowed_profiles(station: StationRecord) -> frozenset[int]:
    allowed = {station.security_profile}
    if station.pending_profile is not None and station.pending_profile > station.security_profile:
        allowed.add(station.pending_profile)
    return frozenset(allowed)


def select_version(station: StationRecord, offered: Sequence[str]) -> OcppVersion | None:
    """The station's registered version, if it offered that subprotocol.

    The version is a property of the station, not of the URL or of what it happens to offer:
    a 1.6 station offering only ocpp2.0.1 is a misconfiguration, not a version change.
    """
    wanted = station.ocpp_version.subprotocol
    return station.ocpp_version if wanted in offered else None


def admit(
    station: StationRecord | None,
    transport: Transport,
    request: ConnectRequest,
    policy: AdmissionPolicy,
    password_match: CredentialMatch | None = None,
) -> Verdict:
    if station is None:
        return Reject(404, CsmsEvent.UNKNOWN_STATION, "no station is registered with this identity")

    allowed = _allowed_profiles(station)
    possible = _transport_profiles(transport) & allowed
    if not possible:
        return _unauthorized(
            CsmsEvent.PROFILE_TRANSPORT_MISMATCH,
            f"station is on security profile {station.security_profile}"
            + (f" (pending {station.pending_profile})" if station.pending_profile else "")
            + f" but connected over {transport.scheme}",
        )

    if possible == {0}:
        if not policy.allow_profile_0:
            return _unauthorized(
                CsmsEvent.PROFILE_ZERO_DISABLED,
                "station is on security profile 0, which is disabled in the configuration",
            )
        return _choose_version(station, request, profile=0, credential=None)

    profile = max(possible - {0})
    if request.credentials is None:
        reason = (
            "Authorization header is not valid Basic credentials"
            if request.malformed_authorization
            else "no Authorization header"
        )
        return _unauthorized(CsmsEvent.MISSING_CREDENTIALS, reason)

    if not username_matches(request.credentials, request.identity):
        return _unauthorized(
            CsmsEvent.USERNAME_MISMATCH, "Basic auth username differs from the identity"
        )

    if password_match is None:
        return CheckPassword(request.credentials.password)
    if password_match is CredentialMatch.NONE:
        return _unauthorized(CsmsEvent.INVALID_CREDENTIALS, "password does not match")
    return _choose_version(station, request, profile=profile, credential=password_match)


def _choose_version(
    station: StationRecord,
    request: ConnectRequest,
    *,
    profile: int,
    credential: CredentialMatch | None,
) -> Accept:
    commits = profile != station.security_profile and profile == station.pending_profile
    version = select_version(station, request.offered_subprotocols)
    if version is not None:
        return Accept(request.identity, profile, version, credential, commits)
    other = [name for name in request.offered_subprotocols if OcppVersion.from_subprotocol(name)]
    if other:
        event, reason = (
            CsmsEvent.VERSION_MISMATCH,
            f"station is registered for OCPP {station.ocpp_version} but offered {', '.join(other)}",
        )
    else:
        offered = ", ".join(request.offered_subprotocols[:5]) or "none"
        event, reason = (
            CsmsEvent.NO_COMMON_SUBPROTOCOL,
            f"no supported subprotocol offered ({offered})",
        )
    # A connection that is closed at once commits nothing.
    return Accept(request.identity, profile, None, credential, False, event, reason[:200])
