"""The certificate lifecycle end to end: our CSMS and our simulator over real TLS, both versions.

TC_074 / TC_A_11 / TC_A_12: a profile-3 station is asked for a CSR, gets its new certificate,
reconnects with it and is admitted; the old certificate is retired. TC_075 / TC_076 /
TC_M_01–05 / TC_M_12–21: roots installed, listed and deleted in every hash algorithm.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from rawstation import add_station, register_test_station
from simkit import Running, until
from tlskit import CPO, foreign_ca

from chargewarden.app import RunningCsms
from chargewarden.demo_tls import issue_for_station, tls_config
from chargewarden.domain.station_certificates import InvalidCertificateFile
from chargewarden.domain.station_commands import CommandFailed, FailureKind, RootCertificateKind
from chargewarden.pki.hashdata import normalize_serial
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.store.records import CertificateRequestState

V16, V201 = OcppVersion.V16, OcppVersion.V201


async def profile_3_station(
    csms: RunningCsms, identity: str, version: OcppVersion, state_dir: Path, **extra: object
) -> StationConfig:
    await register_test_station(csms.store, identity, version, 3)
    client = await issue_for_station(csms, identity)
    config = tls_config(csms, identity, version, 3, client=client)
    return replace(config, cpo_name=CPO, state_dir=state_dir, **extra)  # type: ignore[arg-type]


def live_fingerprint(csms: RunningCsms, identity: str) -> str | None:
    link = csms.registry.get(identity)
    return link.info.certificate_fingerprint if link is not None else None


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_074_TC_A_11_renewed_certificate_used_on_reconnect_and_old_one_retired(
    ca_csms: RunningCsms, version: OcppVersion, tmp_path: Path
) -> None:
    assert ca_csms.signing is not None
    identity = f"LIFE-{version.value}"
    config = await profile_3_station(ca_csms, identity, version, tmp_path / "station")
    async with Running(config) as runner:
        (old,) = await ca_csms.store.certificates.list(station=identity)
        assert live_fingerprint(ca_csms, identity) == old.fingerprint_sha256

        request = await ca_csms.signing.request(identity, actor="test")

        async def accepted() -> bool:
            stored = await ca_csms.store.certificate_requests.get(request.id or -1)
            return stored is not None and stored.state is CertificateRequestState.ACCEPTED

        await until(accepted)
        stored = await ca_csms.store.certificate_requests.get(request.id or -1)
        assert stored is not None and stored.certificate_id is not None
        new = await ca_csms.store.certificates.get_by_id(stored.certificate_id)
        assert new is not None and new.subject_cn == identity and new.subject_o == CPO
        # The station reconnects with the new certificate and is admitted with it.
        await until(lambda: live_fingerprint(ca_csms, identity) == new.fingerprint_sha256)
        current = runner.core.certificates.client_certificate
        assert current is not None
        assert current.fingerprint(hashes.SHA256()).hex() == new.fingerprint_sha256

        async def old_retired() -> bool:
            record = await ca_csms.store.certificates.get(old.serial)
            return record is not None and record.revoked

        await until(old_retired)
        retired = await ca_csms.store.certificates.get(old.serial)
        assert retired is not None and "superseded" in (retired.revocation_reason or "")


@pytest.mark.parametrize("version", [V16, V201])
async def test_CRT_02_simulator_csr_with_wrong_o_is_rejected(
    ca_csms: RunningCsms, version: OcppVersion, tmp_path: Path
) -> None:
    assert ca_csms.signing is not None
    identity = f"LIFE-BAD-{version.value}"
    config = await profile_3_station(
        ca_csms, identity, version, tmp_path / "station", csr_fault="wrong-o"
    )
    async with Running(config) as runner:
        request = await ca_csms.signing.request(identity, actor="test")

        async def rejected() -> bool:
            stored = await ca_csms.store.certificate_requests.get(request.id or -1)
            return stored is not None and stored.state is CertificateRequestState.REJECTED

        await until(rejected)
        assert runner.state.connected
    stored = await ca_csms.store.certificate_requests.get(request.id or -1)
    assert stored is not None and stored.reason and "organization (O)" in stored.reason
    assert len(await ca_csms.store.certificates.list(station=identity)) == 1  # only the old one


def pem_of(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


KINDS = {
    V16: [RootCertificateKind.CSMS_ROOT, RootCertificateKind.MANUFACTURER_ROOT],
    V201: list(RootCertificateKind),
}


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA384", "SHA512"])
@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_075_TC_076_install_list_delete_every_type_and_hash_algorithm(
    ca_csms: RunningCsms, version: OcppVersion, algorithm: str, tmp_path: Path
) -> None:
    certs = ca_csms.station_certificates
    identity = f"ROOTS-{version.value}-{algorithm}"
    config = await profile_3_station(
        ca_csms, identity, version, tmp_path / "station", hash_algorithm=algorithm
    )
    roots = {kind: foreign_ca()[0] for kind in KINDS[version]}
    async with Running(config):
        for kind, root in roots.items():
            assert await certs.install(identity, kind, pem_of(root), actor="test") == "Accepted"
        snapshot = await certs.installed(identity)
        serials = {normalize_serial(e.hash_data["serialNumber"]) for e in snapshot.entries}
        for root in roots.values():
            assert format(root.serial_number, "x") in serials
        assert {e.hash_data["hashAlgorithm"] for e in snapshot.entries} == {algorithm}
        assert await ca_csms.store.installed_certificates.latest(identity) == snapshot

        for root in roots.values():
            serial = format(root.serial_number, "X")
            assert await certs.delete(identity, serial, force=False, actor="test") == "Accepted"
        remaining = await certs.installed(identity)
        left = {normalize_serial(e.hash_data["serialNumber"]) for e in remaining.entries}
        assert not left & {format(r.serial_number, "x") for r in roots.values()}
        with pytest.raises(CommandFailed) as missing:
            await certs.delete(identity, "0DEADBEEF", force=False, actor="test")
        assert missing.value.kind is FailureKind.NOT_FOUND


@pytest.mark.parametrize("version", [V16, V201])
async def test_CRT_06_last_csms_root_is_kept_unless_forced(
    ca_csms: RunningCsms, version: OcppVersion, tmp_path: Path
) -> None:
    certs = ca_csms.station_certificates
    identity = f"LASTROOT-{version.value}"
    config = await profile_3_station(ca_csms, identity, version, tmp_path / "station")
    async with Running(config):
        snapshot = await certs.installed(identity)
        csms_roots = [e for e in snapshot.entries if "Root" in e.certificate_type]
        assert len(csms_roots) == 1  # the factory-installed CSMS root
        serial = csms_roots[0].hash_data["serialNumber"]
        with pytest.raises(CommandFailed) as refused:
            await certs.delete(identity, serial, force=False, actor="test")
        assert refused.value.kind is FailureKind.CONFLICT
        assert "last CSMS root" in str(refused.value)
        assert await certs.delete(identity, serial, force=True, actor="test") == "Accepted"
    audit = await ca_csms.store.audit.list(limit=5)
    assert any(a.action == "station.certificate.delete" and a.details["forced"] for a in audit)


async def test_CRT_04_installing_a_non_ca_pem_is_refused_before_sending(
    ca_csms: RunningCsms,
) -> None:
    await add_station(ca_csms, "NOT-A-CA", V201)
    with pytest.raises(InvalidCertificateFile):
        await ca_csms.station_certificates.install(
            "NOT-A-CA", RootCertificateKind.CSMS_ROOT, "garbage", actor="test"
        )
