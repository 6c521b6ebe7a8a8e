"""Security event catalogue: station events of both versions and the CSMS's own (EVT-01..03).

Pure. Station events come from SecurityEventNotification; their criticality is the one the
specification gives, per version, because the two versions disagree (1.6 marks the certificate
and firmware events non-critical, 2.0.1 critical). Unknown types are still stored and answered
(EVT-01, whitepaper A04.FR.03): `classify` only labels them.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from chargewarden.rpc.versions import OcppVersion


class EventClass(NamedTuple):
    known: bool
    critical: bool


# OCPP 1.6 Security Whitepaper ed.3, §8 "Security Events" (type → critical).
_V16: MappingProxyType[str, bool] = MappingProxyType(
    {
        "FirmwareUpdated": True,
        "FailedToAuthenticateAtCentralSystem": False,
        "CentralSystemFailedToAuthenticate": False,
        "SettingSystemTime": True,
        "StartupOfTheDevice": True,
        "ResetOrReboot": True,
        "SecurityLogWasCleared": True,
        "ReconfigurationOfSecurityParameters": False,
        "MemoryExhaustion": True,
        "InvalidMessages": False,
        "AttemptedReplayAttacks": False,
        "TamperDetectionActivated": True,
        "InvalidFirmwareSignature": False,
        "InvalidFirmwareSigningCertificate": False,
        "InvalidCentralSystemCertificate": False,
        "InvalidChargePointCertificate": False,
        "InvalidTLSVersion": False,
        "InvalidTLSCipherSuite": False,
        # Edition 1 spelled these with a space; the ed.2 changelog removed it. Older firmware
        # still sends the old spelling, and it means the same event.
        "FailedToAuthenticateAtCentral System": False,
        "Central SystemFailedToAuthenticate": False,
    }
)

# OCPP 2.0.1 Part 2 Appendix 1 "Security Events" (v1.3/v1.4): everything critical except the
# five listed as "No". The ocpp package's v201 SecurityEventType has the same 20 names.
_V201_NOT_CRITICAL = frozenset(
    {
        "FailedToAuthenticateAtCsms",
        "CsmsFailedToAuthenticate",
        "ReconfigurationOfSecurityParameters",
        "InvalidMessages",
        "AttemptedReplayAttacks",
    }
)
_V201: MappingProxyType[str, bool] = MappingProxyType(
    {
        name: name not in _V201_NOT_CRITICAL
        for name in (
            "FirmwareUpdated",
            "FailedToAuthenticateAtCsms",
            "CsmsFailedToAuthenticate",
            "SettingSystemTime",
            "StartupOfTheDevice",
            "ResetOrReboot",
            "SecurityLogWasCleared",
            "ReconfigurationOfSecurityParameters",
            "MemoryExhaustion",
            "InvalidMessages",
            "AttemptedReplayAttacks",
            "TamperDetectionActivated",
            "InvalidFirmwareSignature",
            "InvalidFirmwareSigningCertificate",
            "InvalidCsmsCertificate",
            "InvalidChargingStationCertificate",
            "InvalidTLSVersion",
            "InvalidTLSCipherSuite",
            "MaintenanceLoginAccepted",
            "MaintenanceLoginFailed",
        )
    }
)

_CATALOGUE: MappingProxyType[OcppVersion, MappingProxyType[str, bool]] = MappingProxyType(
    {OcppVersion.V16: _V16, OcppVersion.V201: _V201}
)

UNKNOWN = EventClass(known=False, critical=False)


def station_event_types(version: OcppVersion) -> frozenset[str]:
    """Every standard station event type of a version (for the simulator and documentation)."""
    return frozenset(_CATALOGUE[version])


def classify(version: OcppVersion, event_type: str) -> EventClass:
    """Known/critical for a station-reported type. Exact, case-sensitive names as specified."""
    critical = _CATALOGUE[version].get(event_type)
    if critical is None:
        return UNKNOWN
    return EventClass(known=True, critical=critical)


class CsmsEvent(StrEnum):
    """Security events the CSMS raises itself (EVT-03, whitepaper A00.FR.408)."""

    # Admission
    UNKNOWN_STATION = "UnknownStation"
    INVALID_IDENTITY = "InvalidIdentity"
    MISSING_CREDENTIALS = "MissingCredentials"
    USERNAME_MISMATCH = "UsernameMismatch"
    INVALID_CREDENTIALS = "InvalidCredentials"
    PROFILE_TRANSPORT_MISMATCH = "ProfileTransportMismatch"
    PROFILE_ZERO_DISABLED = "ProfileZeroDisabled"
    RATE_LIMITED = "RateLimited"
    # Messages
    INVALID_MESSAGES = "InvalidMessages"
    OVERSIZED_MESSAGE = "OversizedMessage"
    NO_COMMON_SUBPROTOCOL = "NoCommonSubprotocol"
    VERSION_MISMATCH = "VersionMismatch"
    # TLS client certificates (profile 3)
    INVALID_CLIENT_CERTIFICATE = "InvalidClientCertificate"
    CERTIFICATE_IDENTITY_MISMATCH = "CertificateIdentityMismatch"
    REVOKED_CERTIFICATE = "RevokedCertificate"
    # TLS handshakes the CSMS refused before any HTTP (identity not yet known)
    TLS_VERSION_REFUSED = "InvalidTLSVersion"
    TLS_CIPHER_REFUSED = "InvalidTLSCipherSuite"
    TLS_HANDSHAKE_FAILED = "TlsHandshakeFailed"
    # Proxy mode (SEC-12): forwarded-certificate headers from a peer that is not a trusted proxy
    UNTRUSTED_PROXY_HEADERS = "UntrustedProxyHeaders"
    # Certificate lifecycle (CRT-02): a CSR the CSMS refused to sign
    CSR_REJECTED = "CsrRejected"
    # Firmware (FW-02): an image, signature or signing certificate the CSMS refused to register
    # or to send (chain, validity, revocation, signature, the stored file changed)
    FIRMWARE_REFUSED = "FirmwareRefused"
    # File transfer (FW-01, LOG-01): a download or upload with an unknown or expired token
    FILE_TOKEN_REFUSED = "FileTransferRefused"  # noqa: S105 - an event name
    # A one-time log upload token presented again, or for another station's request
    UPLOAD_TOKEN_REUSED = "UploadTokenReused"  # noqa: S105 - an event name


# Critical = an operator should look now. Single failed logins, scanners and misconfigurations
# are frequent and not critical (as FailedToAuthenticateAtCsms is not in 2.0.1); signs of an
# attack on a known station or of a stolen credential are.
_CSMS_CRITICAL: MappingProxyType[CsmsEvent, bool] = MappingProxyType(
    {
        CsmsEvent.UNKNOWN_STATION: False,  # scanners and unregistered stations
        CsmsEvent.INVALID_IDENTITY: False,
        CsmsEvent.MISSING_CREDENTIALS: False,
        CsmsEvent.USERNAME_MISMATCH: False,  # almost always a misconfigured station
        CsmsEvent.INVALID_CREDENTIALS: False,  # one per attempt; brute force → RateLimited
        # A station on profile ≥ 2 arriving over plain ws (or below its committed profile) is
        # what a downgrade attack looks like (SEC-11).
        CsmsEvent.PROFILE_TRANSPORT_MISMATCH: True,
        CsmsEvent.PROFILE_ZERO_DISABLED: False,
        # Raised once per block, not per attempt: someone is guessing or flooding.
        CsmsEvent.RATE_LIMITED: True,
        CsmsEvent.INVALID_MESSAGES: False,
        CsmsEvent.OVERSIZED_MESSAGE: False,
        CsmsEvent.NO_COMMON_SUBPROTOCOL: False,
        # Correct credentials but another protocol version: reflashed station or credentials
        # used by another device.
        CsmsEvent.VERSION_MISMATCH: True,
        CsmsEvent.INVALID_CLIENT_CERTIFICATE: True,
        CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH: True,  # a valid certificate of someone else
        CsmsEvent.REVOKED_CERTIFICATE: True,
        # Old TLS stacks and scanners are common; the station side reports its own refusals.
        CsmsEvent.TLS_VERSION_REFUSED: False,
        CsmsEvent.TLS_CIPHER_REFUSED: False,
        CsmsEvent.TLS_HANDSHAKE_FAILED: False,
        # Someone is trying to inject a client certificate past the proxy.
        CsmsEvent.UNTRUSTED_PROXY_HEADERS: True,
        # Usually a misconfigured CpoName or serial; the reason says which rule failed.
        CsmsEvent.CSR_REJECTED: False,
        # An image that does not verify is a tampered or mis-signed release: stop and look.
        CsmsEvent.FIRMWARE_REFUSED: True,
        # Expired links are routine (a station retrying late); scanners guess tokens.
        CsmsEvent.FILE_TOKEN_REFUSED: False,
        # A used token presented again means the URL leaked or is being replayed.
        CsmsEvent.UPLOAD_TOKEN_REUSED: True,
    }
)


def csms_event_critical(event: CsmsEvent) -> bool:
    # Fail closed: a new member someone forgot to classify alerts rather than stays silent.
    return _CSMS_CRITICAL.get(event, True)
