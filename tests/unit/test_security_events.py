"""Security event catalogue per OCPP version and the CSMS's own events (EVT-01, EVT-02, EVT-03)."""

from __future__ import annotations

import pytest
from ocpp.v201.enums import SecurityEventType

from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.events import (
    CsmsEvent,
    EventClass,
    classify,
    csms_event_critical,
    station_event_types,
)

V16, V201 = OcppVersion.V16, OcppVersion.V201

# Security Whitepaper ed.3 §8, verbatim.
WHITEPAPER_CRITICAL = {
    "FirmwareUpdated",
    "SettingSystemTime",
    "StartupOfTheDevice",
    "ResetOrReboot",
    "SecurityLogWasCleared",
    "MemoryExhaustion",
    "TamperDetectionActivated",
}
WHITEPAPER_NOT_CRITICAL = {
    "FailedToAuthenticateAtCentralSystem",
    "CentralSystemFailedToAuthenticate",
    "ReconfigurationOfSecurityParameters",
    "InvalidMessages",
    "AttemptedReplayAttacks",
    "InvalidFirmwareSignature",
    "InvalidFirmwareSigningCertificate",
    "InvalidCentralSystemCertificate",
    "InvalidChargePointCertificate",
    "InvalidTLSVersion",
    "InvalidTLSCipherSuite",
}
V201_NOT_CRITICAL = {
    "FailedToAuthenticateAtCsms",
    "CsmsFailedToAuthenticate",
    "ReconfigurationOfSecurityParameters",
    "InvalidMessages",
    "AttemptedReplayAttacks",
}


@pytest.mark.parametrize("event_type", sorted(WHITEPAPER_CRITICAL))
def test_evt_02_v16_critical_types(event_type: str) -> None:
    assert classify(V16, event_type) == EventClass(known=True, critical=True)


@pytest.mark.parametrize("event_type", sorted(WHITEPAPER_NOT_CRITICAL))
def test_evt_02_v16_non_critical_types(event_type: str) -> None:
    assert classify(V16, event_type) == EventClass(known=True, critical=False)


def test_evt_02_v16_catalogue_is_the_whitepaper_list() -> None:
    standard = station_event_types(V16) - {
        "FailedToAuthenticateAtCentral System",
        "Central SystemFailedToAuthenticate",
    }
    assert standard == WHITEPAPER_CRITICAL | WHITEPAPER_NOT_CRITICAL
    assert len(standard) == 18


def test_evt_02_v16_edition_1_spellings_are_known() -> None:
    for legacy in ("FailedToAuthenticateAtCentral System", "Central SystemFailedToAuthenticate"):
        assert classify(V16, legacy) == EventClass(known=True, critical=False)


def test_evt_02_v201_catalogue_matches_appendix_and_ocpp_package() -> None:
    assert station_event_types(V201) == {str(member) for member in SecurityEventType}
    assert len(station_event_types(V201)) == 20


@pytest.mark.parametrize("event_type", sorted(str(m) for m in SecurityEventType))
def test_evt_02_v201_all_critical_but_five(event_type: str) -> None:
    expected = event_type not in V201_NOT_CRITICAL
    assert classify(V201, event_type) == EventClass(known=True, critical=expected)


def test_evt_02_versions_differ_where_the_specs_differ() -> None:
    # 1.6 ed.3 marks firmware/certificate/TLS events non-critical; 2.0.1 marks them critical.
    for event_type in ("InvalidFirmwareSignature", "InvalidTLSVersion", "InvalidTLSCipherSuite"):
        assert not classify(V16, event_type).critical
        assert classify(V201, event_type).critical
    # Names that belong to the other version are not recognised.
    assert not classify(V16, "InvalidCsmsCertificate").known
    assert not classify(V201, "InvalidCentralSystemCertificate").known
    assert not classify(V201, "FailedToAuthenticateAtCentralSystem").known
    assert not classify(V16, "MaintenanceLoginFailed").known


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize(
    "event_type", ["", "VendorSpecificThing", "firmwareupdated", "FirmwareUpdated ", "x" * 50]
)
def test_evt_01_unknown_types_are_labelled_not_refused(
    version: OcppVersion, event_type: str
) -> None:
    # Unknown types are still stored and answered; classify only labels them.
    assert classify(version, event_type) == EventClass(known=False, critical=False)


def test_evt_03_csms_events_have_stable_names() -> None:
    values = [str(e) for e in CsmsEvent]
    assert len(values) == len(set(values))
    assert CsmsEvent.INVALID_CREDENTIALS == "InvalidCredentials"
    assert CsmsEvent.RATE_LIMITED == "RateLimited"
    for name in (
        "UnknownStation",
        "InvalidIdentity",
        "MissingCredentials",
        "UsernameMismatch",
        "ProfileTransportMismatch",
        "ProfileZeroDisabled",
        "InvalidMessages",
        "OversizedMessage",
        "NoCommonSubprotocol",
        "VersionMismatch",
        "InvalidClientCertificate",
        "CertificateIdentityMismatch",
        "RevokedCertificate",
    ):
        assert CsmsEvent(name) == name


@pytest.mark.parametrize(
    ("event", "critical"),
    [
        (CsmsEvent.UNKNOWN_STATION, False),
        (CsmsEvent.INVALID_CREDENTIALS, False),
        (CsmsEvent.USERNAME_MISMATCH, False),
        (CsmsEvent.MISSING_CREDENTIALS, False),
        (CsmsEvent.INVALID_MESSAGES, False),
        (CsmsEvent.RATE_LIMITED, True),
        (CsmsEvent.PROFILE_TRANSPORT_MISMATCH, True),
        (CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH, True),
        (CsmsEvent.REVOKED_CERTIFICATE, True),
    ],
)
def test_evt_03_csms_event_criticality(event: CsmsEvent, critical: bool) -> None:
    assert csms_event_critical(event) is critical


def test_evt_03_every_csms_event_is_classified() -> None:
    for event in CsmsEvent:
        assert isinstance(csms_event_critical(event), bool)
