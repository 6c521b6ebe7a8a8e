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

from chargewarden.pki.certinfo import CertificateFacts
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.basic_auth import BasicCredentials, username_matches
from chargewarden.security.events import CsmsEvent
from chargewarden.security.verifier import CredentialMatch
from chargewarden.store.records import StationRecord

WWW_AUTHENTICATE = 'Basic realm="OCPP", charset="UTF-8"'


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A client certificate whose chain already verified (OpenSSL, or our check in proxy mode),
    with what the store knows about it."""

    facts: CertificateFacts
    # The station our store says it was issued to; None when we did not issue it (imported CA).
    issued_to: str | None = None
    revoked: bool = False
    revocation_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Transport:
    """What the network edge knows about the connection."""

    scheme: Literal["ws", "wss"]
    peer: str
    client_certificate: ClientCertificate | None = None

    def describe(self) -> str:
        if self.scheme == "ws":
            return "over ws"
        if self.client_certificate is None:
            return "over wss without a client certificate"
        return "over wss with a client certificate"


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
    # The O a profile-3 certificate must carry unless the station has its own CPO name.
    cpo_name: str = ""


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


def _forbidden(event: CsmsEvent, reason: str) -> Reject:
    return Reject(403, event, reason)


def _transport_profiles(transport: Transport) -> frozenset[int]:
    if transport.scheme == "ws":
        return frozenset({0, 1})
    if transport.client_certificate is None:
        return frozenset({2})
    # A verified certificate does not stop a profile-2 station from using Basic auth.
    return frozenset({2, 3})


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
            + f" but connected {transport.describe()}",
        )

    if 3 in possible:
        assert transport.client_certificate is not None
        refusal = _check_certificate(station, transport.client_certificate, policy)
        if refusal is not None:
            return refusal
        # Profile 3 authenticates by certificate only; a Basic header, if any, is ignored.
        return _choose_version(station, request, profile=3, credential=None)

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


def _check_certificate(
    station: StationRecord, certificate: ClientCertificate, policy: AdmissionPolicy
) -> Reject | None:
    """SEC-09/SEC-10: the certificate must name this station, its CPO, and not be revoked."""
    facts = certificate.facts
    if certificate.revoked:
        why = f" ({certificate.revocation_reason})" if certificate.revocation_reason else ""
        return _forbidden(
            CsmsEvent.REVOKED_CERTIFICATE, f"client certificate {facts.serial_hex} is revoked{why}"
        )
    if certificate.issued_to is not None and certificate.issued_to != station.identity:
        return _forbidden(
            CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH,
            f"client certificate {facts.serial_hex} was issued to station {certificate.issued_to}",
        )
    expected_cn = station.expected_serial
    if facts.subject_cn != expected_cn:
        return _forbidden(
            CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH,
            f"certificate CN {facts.subject_cn!r} is not the station's serial number "
            f"{expected_cn!r}",
        )
    expected_o = station.cpo_name or policy.cpo_name
    if facts.subject_o != expected_o:
        return _forbidden(
            CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH,
            f"certificate O {facts.subject_o!r} is not the CPO name {expected_o!r}",
        )
    return None


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
