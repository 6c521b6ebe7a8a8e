"""The CSR flow on the CSMS side, both versions, with a raw WebSocket station (CRT-01..03).

The station here is a plain client so each test controls every frame: what the CSR holds,
when the station answers, and what it answers. The simulator-driven end-to-end flows (with
TLS reconnects on the new certificate) are in test_certificate_lifecycle.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from rawstation import RawStation, add_station, boot, connect, make_csr, tampered
from tlskit import CPO, tls_settings
from wsclient import BOOT_16, BOOT_201

from chargewarden.app import RunningCsms, start_csms
from chargewarden.domain.certificate_signing import CertificateSigning
from chargewarden.domain.station_commands import CommandFailed, FailureKind, StationChannel
from chargewarden.pki.signer import SignedCertificate, SignerError, SigningRequest
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.events import CsmsEvent
from chargewarden.security.recorder import SecurityRecorder
from chargewarden.store.records import CertificateRequestState, RequestOrigin

V16, V201 = OcppVersion.V16, OcppVersion.V201
SUBPROTOCOL = {V16: "ocpp1.6", V201: "ocpp2.0.1"}
BOOT = {V16: BOOT_16, V201: BOOT_201}
TRIGGER = {V16: "ExtendedTriggerMessage", V201: "TriggerMessage"}


def sign_certificate(version: OcppVersion, csr: str) -> dict[str, Any]:
    if version is V16:
        return {"csr": csr}
    return {"csr": csr, "certificateType": "ChargingStationCertificate"}


async def trigger_and_answer(
    csms: RunningCsms, station: RawStation, identity: str, version: OcppVersion
) -> Any:
    assert csms.signing is not None
    requested = asyncio.create_task(csms.signing.request(identity, actor="test"))
    unique_id, payload = await station.expect_call(TRIGGER[version])
    wanted = "SignChargePointCertificate" if version is V16 else "SignChargingStationCertificate"
    assert payload == {"requestedMessage": wanted}
    await station.answer(unique_id, {"status": "Accepted"})
    return await requested


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_A_11_CRT_01_02_trigger_csr_sign_and_deliver(
    ca_csms: RunningCsms, version: OcppVersion
) -> None:
    identity = f"CSR-OK-{version.value}"
    await add_station(ca_csms, identity, version)
    async with connect(ca_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        request = await trigger_and_answer(ca_csms, station, identity, version)
        assert request.state is CertificateRequestState.TRIGGERED

        csr, key = make_csr(identity)
        reply = await station.call("SignCertificate", sign_certificate(version, csr))
        assert reply[2]["status"] == "Accepted"
        # CertificateSigned only after the SignCertificate answer (CRT-02), carrying the chain.
        unique_id, payload = await station.expect_call("CertificateSigned")
        chain = x509.load_pem_x509_certificates(payload["certificateChain"].encode())
        assert len(payload["certificateChain"]) <= 10000
        leaf = chain[0]
        assert leaf.public_key() == key.public_key()
        assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == identity
        assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == CPO
        assert leaf.issuer == chain[1].subject
        if version is V201:
            assert payload["certificateType"] == "ChargingStationCertificate"
        await station.answer(unique_id, {"status": "Accepted"})

        stored = None
        for _ in range(100):
            stored = await ca_csms.store.certificate_requests.get(request.id)
            if stored and stored.state is CertificateRequestState.ACCEPTED:
                break
            await asyncio.sleep(0.02)
        assert stored is not None and stored.state is CertificateRequestState.ACCEPTED
        assert stored.origin is RequestOrigin.OPERATOR and stored.delivery_attempts == 1
        certificate = await ca_csms.store.certificates.get_by_id(stored.certificate_id or -1)
        assert certificate is not None and certificate.station_identity == identity
        assert certificate.fingerprint_sha256 == leaf.fingerprint(hashes.SHA256()).hex()


def weak_rsa() -> Any:
    # Deliberately weak: the CSR policy must refuse it.
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


CSR_FAULTS = {
    "weak-key": lambda identity: make_csr(identity, key=weak_rsa())[0],
    "wrong-cn": lambda identity: make_csr("SOMEONE-ELSE")[0],
    "wrong-o": lambda identity: make_csr(identity, "Other CPO")[0],
    "missing-o": lambda identity: make_csr(identity, None)[0],
    "bad-signature": lambda identity: tampered(make_csr(identity)[0]),
    "ca-request": lambda identity: make_csr(identity, ca=True)[0],
    "garbage": lambda identity: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n",
}


@pytest.mark.parametrize("fault", sorted(CSR_FAULTS))
@pytest.mark.parametrize("version", [V16, V201])
async def test_CRT_02_bad_csr_rejected_with_reason_and_event(
    ca_csms: RunningCsms, version: OcppVersion, fault: str
) -> None:
    identity = f"CSR-BAD-{version.value}"
    await add_station(ca_csms, identity, version)
    async with connect(ca_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        reply = await station.call(
            "SignCertificate", sign_certificate(version, CSR_FAULTS[fault](identity))
        )
        assert reply[2]["status"] == "Rejected"
        await station.nothing_for(0.3)  # nothing is signed, nothing is sent
    requests = await ca_csms.store.certificate_requests.list(station_identity=identity)
    assert [r.state for r in requests] == [CertificateRequestState.REJECTED]
    assert requests[0].reason and requests[0].certificate_id is None
    events = await ca_csms.store.events.list(station=identity, limit=5)
    assert any(e.type == CsmsEvent.CSR_REJECTED for e in events)
    assert await ca_csms.store.certificates.list(station=identity) == []


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_A_14_CRT_03_certificate_refused_by_station_alerts_without_retry(
    ca_csms: RunningCsms, version: OcppVersion
) -> None:
    identity = f"CSR-REFUSED-{version.value}"
    await add_station(ca_csms, identity, version)
    async with connect(ca_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        csr, _ = make_csr(identity)
        assert (await station.call("SignCertificate", sign_certificate(version, csr)))[2] == {
            "status": "Accepted"
        }
        unique_id, _ = await station.expect_call("CertificateSigned")
        await station.answer(unique_id, {"status": "Rejected"})
        event_type = (
            "InvalidChargePointCertificate"
            if version is V16
            else "InvalidChargingStationCertificate"
        )
        reply = await station.call(
            "SecurityEventNotification",
            {"type": event_type, "timestamp": "2026-11-22T10:00:00Z", "techInfo": "bad chain"},
        )
        assert reply[0] == 3  # the station's event is answered
        await station.nothing_for(0.5)  # no automatic retry
    alerts = await ca_csms.store.alerts.list(station_identity=identity)
    # The station's own event may alert too (critical in 2.0.1); the flow alerts exactly once.
    assert [a.kind for a in alerts if not a.kind.startswith("security-event.")] == [
        "certificate.refused_by_station"
    ]
    requests = await ca_csms.store.certificate_requests.list(station_identity=identity)
    assert requests[0].state is CertificateRequestState.REFUSED_BY_STATION
    # Reconnecting does not resend a refused certificate either.
    async with connect(ca_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        await station.nothing_for(0.5)


@pytest.mark.parametrize("version", [V16, V201])
async def test_CRT_02_unanswered_certificate_is_sent_again_after_reconnect(
    ca_csms: RunningCsms, version: OcppVersion
) -> None:
    identity = f"CSR-RESEND-{version.value}"
    await add_station(ca_csms, identity, version)
    async with connect(ca_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        csr, _ = make_csr(identity)
        await station.call("SignCertificate", sign_certificate(version, csr))
        _, first = await station.expect_call("CertificateSigned")
        # The connection drops before the station answers.
    async with connect(ca_csms, identity, version) as ws:
        station = RawStation(ws)
        await boot(station, version)
        unique_id, second = await station.expect_call("CertificateSigned")
        assert second["certificateChain"] == first["certificateChain"]  # the same certificate
        await station.answer(unique_id, {"status": "Accepted"})
        for _ in range(100):
            requests = await ca_csms.store.certificate_requests.list(station_identity=identity)
            if requests[0].state is CertificateRequestState.ACCEPTED:
                break
            await asyncio.sleep(0.02)
    assert requests[0].state is CertificateRequestState.ACCEPTED
    assert len(await ca_csms.store.certificates.list(station=identity)) == 1


async def test_CRT_02_csrs_are_rate_limited_per_station(ca_csms: RunningCsms) -> None:
    identity = "CSR-FLOOD"
    await add_station(ca_csms, identity, V201)
    limit = ca_csms.settings.certificates.csrs_per_station_per_hour
    async with connect(ca_csms, identity, V201) as ws:
        station = RawStation(ws)
        await boot(station, V201)
        for _ in range(limit):
            reply = await station.call("SignCertificate", sign_certificate(V201, "garbage"))
            assert reply[2]["status"] == "Rejected"
        reply = await station.call("SignCertificate", sign_certificate(V201, make_csr(identity)[0]))
        assert reply[2]["status"] == "Rejected"
    newest = (await ca_csms.store.certificate_requests.list(station_identity=identity))[0]
    assert newest.reason and "last hour" in newest.reason
    events = await ca_csms.store.events.list(station=identity, limit=1)
    assert events[0].type == CsmsEvent.CSR_REJECTED
    assert events[0].tech_info is not None and "last hour" in events[0].tech_info


async def test_CRT_01_trigger_refused_or_offline_is_reported(ca_csms: RunningCsms) -> None:
    assert ca_csms.signing is not None
    await add_station(ca_csms, "CSR-OFFLINE", V16)
    with pytest.raises(CommandFailed) as offline:
        await ca_csms.signing.request("CSR-OFFLINE")
    assert offline.value.kind is FailureKind.OFFLINE
    async with connect(ca_csms, "CSR-OFFLINE", V16) as ws:
        station = RawStation(ws)
        await boot(station, V16)
        requested = asyncio.create_task(ca_csms.signing.request("CSR-OFFLINE"))
        unique_id, _ = await station.expect_call("ExtendedTriggerMessage")
        await station.answer(unique_id, {"status": "Rejected"})
        with pytest.raises(CommandFailed) as refused:
            await requested
    assert refused.value.kind is FailureKind.REFUSED
    requests = await ca_csms.store.certificate_requests.list(station_identity="CSR-OFFLINE")
    assert [r.state for r in requests] == [CertificateRequestState.FAILED]


async def test_CRT_02_unanswered_certificate_given_up_after_max_attempts_with_alert(
    tmp_path: Path, pki_template: Path
) -> None:
    settings = tls_settings(
        tmp_path, pki_template, allow_profile_0=False, certificates={"max_delivery_attempts": 1}
    )
    csms = await start_csms(settings, with_api=False)
    try:
        identity = "CSR-GIVEUP"
        await add_station(csms, identity, V201)
        async with connect(csms, identity, V201) as ws:
            station = RawStation(ws)
            await boot(station, V201)
            csr, _ = make_csr(identity)
            await station.call("SignCertificate", sign_certificate(V201, csr))
            await station.expect_call("CertificateSigned")  # and never answered
        async with connect(csms, identity, V201) as ws:
            station = RawStation(ws)
            await boot(station, V201)
            await station.nothing_for(0.5)  # not sent a second time
        (request,) = await csms.store.certificate_requests.list(station_identity=identity)
        assert request.state is CertificateRequestState.FAILED
        assert request.reason == "CertificateSigned unanswered after 1 attempts"
        alerts = await csms.store.alerts.list(station_identity=identity)
        assert [a.kind for a in alerts] == ["certificate.delivery_failed"]
    finally:
        await csms.stop()


class UnavailableSigner:
    """An external signer (a CertificateSigner) whose CA cannot be reached."""

    async def sign(self, request: SigningRequest) -> SignedCertificate:
        raise SignerError("the external CA did not answer")


async def test_CRT_02_signer_failure_rejects_the_csr_and_alerts(ca_csms: RunningCsms) -> None:
    assert ca_csms.signing is not None
    identity = "CSR-NOSIGNER"
    await add_station(ca_csms, identity, V201)
    signing = CertificateSigning(
        ca_csms.store,
        UnavailableSigner(),
        StationChannel(ca_csms.registry, 5.0),
        SecurityRecorder(ca_csms.store),
        ca_csms.alerts,
        ca_csms.settings.certificates,
        CPO,
    )
    follow_ups: list[object] = []
    accepted = await signing.on_csr(identity, make_csr(identity)[0], None, None, follow_ups.append)
    assert accepted is False and follow_ups == []  # nothing to deliver
    (request,) = await ca_csms.store.certificate_requests.list(station_identity=identity)
    assert request.state is CertificateRequestState.REJECTED
    assert request.reason == "signer failed: the external CA did not answer"
    alerts = await ca_csms.store.alerts.list(station_identity=identity)
    assert [a.kind for a in alerts] == ["certificate.signer_failed"]
    assert await ca_csms.store.certificates.list(station=identity) == []
