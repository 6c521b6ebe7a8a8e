"""Admission decisions without a network: every branch of gateway.admission.admit()."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from chargewarden.gateway.admission import (
    Accept,
    AdmissionPolicy,
    CheckPassword,
    ClientCertificate,
    ConnectRequest,
    Reject,
    Transport,
    admit,
)
from chargewarden.pki.certinfo import CertificateFacts
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.basic_auth import BasicCredentials
from chargewarden.security.events import CsmsEvent
from chargewarden.security.verifier import CredentialMatch
from chargewarden.store.records import StationRecord

WS = Transport("ws", "192.0.2.10")
WSS = Transport("wss", "192.0.2.10")
POLICY = AdmissionPolicy(allow_profile_0=False)
STATION = StationRecord(
    identity="CP-1", ocpp_version=OcppVersion.V16, security_profile=1, credential_hash="$argon2id$x"
)


def request(
    identity: str = "CP-1",
    username: bytes | None = b"CP-1",
    password: bytes = b"secret",
    offered: tuple[str, ...] = ("ocpp1.6",),
) -> ConnectRequest:
    credentials = None if username is None else BasicCredentials(username, password)
    return ConnectRequest(identity=identity, offered_subprotocols=offered, credentials=credentials)


def test_rpc_02_unknown_identity_is_404_with_event() -> None:
    verdict = admit(None, WS, request(), POLICY)
    assert isinstance(verdict, Reject)
    assert verdict.status == 404
    assert verdict.event is CsmsEvent.UNKNOWN_STATION


def test_sec_03_password_is_checked_only_after_every_cheaper_check() -> None:
    verdict = admit(STATION, WS, request(password=b"\x00\xff:x"), POLICY)
    assert verdict == CheckPassword(b"\x00\xff:x")


def test_sec_03_correct_password_admits_on_profile_1() -> None:
    verdict = admit(STATION, WS, request(), POLICY, CredentialMatch.CURRENT)
    assert isinstance(verdict, Accept)
    assert (verdict.profile, verdict.version) == (1, OcppVersion.V16)
    assert not verdict.commits_pending_profile


def test_sec_03_wrong_password_is_401_with_challenge_and_event() -> None:
    verdict = admit(STATION, WS, request(), POLICY, CredentialMatch.NONE)
    assert isinstance(verdict, Reject)
    assert verdict.status == 401
    assert verdict.event is CsmsEvent.INVALID_CREDENTIALS
    assert ("WWW-Authenticate", 'Basic realm="OCPP", charset="UTF-8"') in verdict.headers


def test_sec_03_missing_credentials_is_401() -> None:
    verdict = admit(STATION, WS, request(username=None), POLICY)
    assert isinstance(verdict, Reject)
    assert (verdict.status, verdict.event) == (401, CsmsEvent.MISSING_CREDENTIALS)


def test_sec_03_malformed_authorization_is_401_and_says_so() -> None:
    malformed = replace(request(username=None), malformed_authorization=True)
    verdict = admit(STATION, WS, malformed, POLICY)
    assert isinstance(verdict, Reject)
    assert verdict.event is CsmsEvent.MISSING_CREDENTIALS
    assert "not valid Basic" in verdict.reason


def test_sec_03_username_must_equal_identity() -> None:
    verdict = admit(STATION, WS, request(username=b"CP-2"), POLICY, CredentialMatch.CURRENT)
    assert isinstance(verdict, Reject)
    assert (verdict.status, verdict.event) == (401, CsmsEvent.USERNAME_MISMATCH)


@pytest.mark.parametrize("profile", [2, 3])
def test_sec_01_tls_profile_station_arriving_on_ws_is_refused(profile: int) -> None:
    station = replace(STATION, security_profile=profile)
    verdict = admit(station, WS, request(), POLICY, CredentialMatch.CURRENT)
    assert isinstance(verdict, Reject)
    assert (verdict.status, verdict.event) == (401, CsmsEvent.PROFILE_TRANSPORT_MISMATCH)
    assert "over ws" in verdict.reason


def test_sec_01_profile_1_station_arriving_on_wss_is_refused() -> None:
    verdict = admit(STATION, WSS, request(), POLICY, CredentialMatch.CURRENT)
    assert isinstance(verdict, Reject)
    assert verdict.event is CsmsEvent.PROFILE_TRANSPORT_MISMATCH


def test_sec_02_profile_0_refused_unless_enabled() -> None:
    station = replace(STATION, security_profile=0, credential_hash=None)
    refused = admit(station, WS, request(username=None), POLICY)
    assert isinstance(refused, Reject)
    assert refused.event is CsmsEvent.PROFILE_ZERO_DISABLED
    admitted = admit(station, WS, request(username=None), AdmissionPolicy(allow_profile_0=True))
    assert isinstance(admitted, Accept)
    assert admitted.profile == 0


def test_sec_11_pending_profile_admits_and_commits_then_lower_is_refused() -> None:
    upgrading = replace(STATION, security_profile=1, pending_profile=2)
    on_wss = admit(upgrading, WSS, request(), POLICY, CredentialMatch.CURRENT)
    assert isinstance(on_wss, Accept)
    assert on_wss.profile == 2 and on_wss.commits_pending_profile
    # Until the commit the old profile still works, so the station cannot be locked out.
    on_ws = admit(upgrading, WS, request(), POLICY, CredentialMatch.CURRENT)
    assert isinstance(on_ws, Accept) and on_ws.profile == 1
    committed = replace(upgrading, security_profile=2, pending_profile=None)
    after = admit(committed, WS, request(), POLICY, CredentialMatch.CURRENT)
    assert isinstance(after, Reject)
    assert after.event is CsmsEvent.PROFILE_TRANSPORT_MISMATCH


def test_upg_03_a_lower_pending_profile_is_never_honoured() -> None:
    station = replace(STATION, security_profile=2, pending_profile=1)
    verdict = admit(station, WS, request(), POLICY, CredentialMatch.CURRENT)
    assert isinstance(verdict, Reject)


def test_rpc_01_no_common_subprotocol_accepts_without_version_and_says_why() -> None:
    verdict = admit(
        STATION, WS, request(offered=("ocpp9", "chat")), POLICY, CredentialMatch.CURRENT
    )
    assert isinstance(verdict, Accept)
    assert verdict.version is None
    assert verdict.close_event is CsmsEvent.NO_COMMON_SUBPROTOCOL
    assert "ocpp9" in verdict.close_reason


def test_rpc_01_the_station_version_wins_over_what_else_is_offered() -> None:
    verdict = admit(
        STATION, WS, request(offered=("ocpp2.0.1", "ocpp1.6")), POLICY, CredentialMatch.CURRENT
    )
    assert isinstance(verdict, Accept) and verdict.version is OcppVersion.V16


def test_rpc_01_other_ocpp_version_offered_is_a_version_mismatch() -> None:
    verdict = admit(STATION, WS, request(offered=("ocpp2.0.1",)), POLICY, CredentialMatch.CURRENT)
    assert isinstance(verdict, Accept)
    assert verdict.version is None and verdict.close_event is CsmsEvent.VERSION_MISMATCH


def test_pending_credential_also_admits_during_rotation() -> None:
    verdict = admit(STATION, WS, request(), POLICY, CredentialMatch.PENDING)
    assert isinstance(verdict, Accept) and verdict.credential is CredentialMatch.PENDING


# ---- profiles 2 and 3 ----------------------------------------------------------------------

P3 = replace(STATION, security_profile=3, credential_hash=None, serial_number="SN-1")
P3_POLICY = AdmissionPolicy(allow_profile_0=False, cpo_name="Example CPO")


def certificate(
    cn: str | None = "SN-1",
    o: str | None = "Example CPO",
    issued_to: str | None = "CP-1",
    revoked: bool = False,
) -> ClientCertificate:
    facts = CertificateFacts(
        subject_cn=cn,
        subject_o=o,
        serial_hex="1A2B",
        issuer="CN=Station CA",
        fingerprint_sha256="00" * 32,
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2028, 1, 1, tzinfo=UTC),
        is_ca=False,
    )
    return ClientCertificate(facts, issued_to, revoked, "keyCompromise" if revoked else None)


def wss(cert: ClientCertificate | None = None) -> Transport:
    return Transport("wss", "192.0.2.10", cert)


def test_sec_06_profile_2_is_basic_auth_over_wss() -> None:
    station = replace(STATION, security_profile=2)
    assert admit(station, wss(), request(), POLICY) == CheckPassword(b"secret")
    verdict = admit(station, wss(), request(), POLICY, CredentialMatch.CURRENT)
    assert isinstance(verdict, Accept) and verdict.profile == 2


def test_sec_09_profile_3_admits_the_right_certificate_without_basic_auth() -> None:
    verdict = admit(P3, wss(certificate()), request(username=None), P3_POLICY)
    assert isinstance(verdict, Accept)
    assert verdict.profile == 3 and verdict.credential is None


def test_sec_01_profile_3_station_with_only_basic_auth_is_refused() -> None:
    verdict = admit(P3, wss(), request(), P3_POLICY, CredentialMatch.CURRENT)
    assert isinstance(verdict, Reject)
    assert verdict.event is CsmsEvent.PROFILE_TRANSPORT_MISMATCH
    assert "without a client certificate" in verdict.reason


@pytest.mark.parametrize(
    ("cert", "event", "words"),
    [
        (certificate(revoked=True), CsmsEvent.REVOKED_CERTIFICATE, "revoked"),
        (certificate(cn="SN-2"), CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH, "CN 'SN-2'"),
        (certificate(cn="SN-1x"), CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH, "serial number"),
        (certificate(o="Other CPO"), CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH, "O 'Other CPO'"),
        (
            certificate(issued_to="CP-2"),
            CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH,
            "issued to station CP-2",
        ),
    ],
)
def test_sec_09_sec_10_wrong_certificates_are_refused_with_the_reason(
    cert: ClientCertificate, event: CsmsEvent, words: str
) -> None:
    verdict = admit(P3, wss(cert), request(username=None), P3_POLICY)
    assert isinstance(verdict, Reject)
    assert (verdict.status, verdict.event) == (403, event)
    assert words in verdict.reason


def test_sec_09_station_cpo_name_overrides_the_global_one() -> None:
    station = replace(P3, cpo_name="Station Own CPO")
    verdict = admit(
        station, wss(certificate(o="Station Own CPO")), request(username=None), P3_POLICY
    )
    assert isinstance(verdict, Accept)


def test_sec_09_cn_defaults_to_the_identity() -> None:
    station = replace(P3, serial_number=None)
    verdict = admit(station, wss(certificate(cn="CP-1")), request(username=None), P3_POLICY)
    assert isinstance(verdict, Accept)


def test_upg_02_pending_profile_3_admits_a_certificate_and_commits() -> None:
    upgrading = replace(STATION, security_profile=2, pending_profile=3, serial_number="SN-1")
    verdict = admit(upgrading, wss(certificate()), request(username=None), P3_POLICY)
    assert isinstance(verdict, Accept)
    assert verdict.profile == 3 and verdict.commits_pending_profile
