"""Certificates in the store (SQLite and PostgreSQL), provisioning, hierarchy records and CRLs."""

from __future__ import annotations

import shutil
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from chargewarden.config import Settings, load_settings
from chargewarden.pki import PkiError
from chargewarden.pki.crl import make_crl_provider, write_crls
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.provision import provision_station
from chargewarden.pki.recording import record_hierarchy
from chargewarden.store import CertificateExists, CertificateNotFound, Store, StoreError
from chargewarden.store.records import CertificateRecord, CertificateRole

PASSPHRASE = b"test passphrase for the CA"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FP = "ab" * 32


def record(
    serial: str = "0A1B",
    *,
    fingerprint: str = FP,
    station: str | None = "CP-1",
    issuer: str = "cpo-station-ca",
    role: CertificateRole = CertificateRole.STATION,
    days: int = 365,
) -> CertificateRecord:
    return CertificateRecord(
        serial=serial,
        issuer_ca=issuer,
        role=role,
        subject_cn="SN-1",
        subject_o="CPO",
        fingerprint_sha256=fingerprint,
        not_before=T0,
        not_after=T0 + timedelta(days=days),
        pem="-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
        key_type="EC P-256",
        station_identity=station,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("template")
    Pki.init(load_settings(None, data_dir=data_dir), PASSPHRASE)
    return data_dir


@pytest.fixture
def settings(template: Path, tmp_path: Path) -> Settings:
    shutil.copytree(template, tmp_path / "data")
    return load_settings(None, data_dir=tmp_path / "data")


@pytest.fixture
def pki(settings: Settings) -> Pki:
    return Pki.load(settings, PASSPHRASE)


# --- the repository ------------------------------------------------------------------------


async def test_add_get_and_find_by_fingerprint(store: Store) -> None:
    added = await store.certificates.add(record("000a1b"))
    assert added.id is not None and added.created_at is not None
    assert added.serial == "A1B"  # upper-case, no leading zeros
    for spelling in ("a1b", "0x0A1B", "0a:1b"):
        assert await store.certificates.get(spelling) == added
    assert await store.certificates.find_by_fingerprint(FP.upper()) == added
    assert await store.certificates.get("FFFF") is None
    assert await store.certificates.find_by_fingerprint("cd" * 32) is None


async def test_the_same_certificate_is_recorded_once(store: Store) -> None:
    await store.certificates.add(record("1"))
    with pytest.raises(CertificateExists):
        await store.certificates.add(record("2"))  # same fingerprint
    with pytest.raises(CertificateExists):
        await store.certificates.add(record("1", fingerprint="cd" * 32))  # same issuer + serial


async def test_a_serial_used_by_two_issuers_needs_the_issuer(store: Store) -> None:
    await store.certificates.add(record("1"))
    await store.certificates.add(record("1", fingerprint="cd" * 32, issuer="imported:x"))
    with pytest.raises(StoreError, match="ambiguous"):
        await store.certificates.get("1")
    found = await store.certificates.get("1", issuer_ca="imported:x")
    assert found is not None and found.issuer_ca == "imported:x"
    with pytest.raises(StoreError, match="ambiguous"):
        await store.certificates.revoke("1", "superseded", T0)
    assert (await store.certificates.get("1", issuer_ca="cpo-station-ca")).revoked_at is None  # type: ignore[union-attr]


async def test_bad_values_fail_before_sql(store: Store) -> None:
    with pytest.raises(ValueError, match="hexadecimal"):
        await store.certificates.add(record("xyz"))
    with pytest.raises(ValueError, match="64 hex"):
        await store.certificates.add(record(fingerprint="abc"))
    with pytest.raises(ValueError, match="security profile|role|CertificateRole|not a valid"):
        await store.certificates.add(replace(record(), role="intermediate"))  # type: ignore[arg-type]


async def test_list_filters(store: Store) -> None:
    soon = await store.certificates.add(record("1", days=10))
    later = await store.certificates.add(record("2", fingerprint="cd" * 32, days=100))
    server = await store.certificates.add(
        record(
            "3",
            fingerprint="ef" * 32,
            station=None,
            issuer="cpo-server-ca",
            role=CertificateRole.SERVER,
            days=50,
        )
    )
    assert await store.certificates.list() == [soon, server, later]
    assert await store.certificates.list(station="CP-1") == [soon, later]
    assert await store.certificates.list(role=CertificateRole.SERVER) == [server]
    within = await store.certificates.list(expiring_within=timedelta(days=30), now=T0)
    assert within == [soon]
    # Already expired counts as expiring.
    assert await store.certificates.list(expiring_within=timedelta(0), now=T0 + timedelta(60)) == [
        soon,
        server,
    ]
    await store.certificates.revoke("1", "key-compromise", T0)
    assert await store.certificates.list(station="CP-1", include_revoked=False) == [later]


async def test_revoke_is_idempotent_and_keeps_the_first_reason(store: Store) -> None:
    await store.certificates.add(record("1"))
    first = await store.certificates.revoke("1", "key-compromise", T0)
    assert first.revoked_at == T0 and first.revocation_reason == "key-compromise"
    again = await store.certificates.revoke("01", "superseded", T0 + timedelta(hours=1))
    assert again == first
    with pytest.raises(CertificateNotFound):
        await store.certificates.revoke("FF", "superseded", T0)
    with pytest.raises(ValueError, match="reason"):
        await store.certificates.revoke("1", " ", T0)


async def test_revoked_since_and_for_issuer(store: Store) -> None:
    await store.certificates.add(record("1"))
    await store.certificates.add(record("2", fingerprint="cd" * 32))
    await store.certificates.add(
        record(
            "3",
            fingerprint="ef" * 32,
            issuer="cpo-server-ca",
            role=CertificateRole.SERVER,
            station=None,
        )
    )
    await store.certificates.revoke("1", "superseded", T0)
    await store.certificates.revoke("3", "superseded", T0 + timedelta(minutes=2))
    assert [r.serial for r in await store.certificates.revoked_since(T0)] == ["1", "3"]
    assert [r.serial for r in await store.certificates.revoked_since(T0 + timedelta(1 / 1440))] == [
        "3"
    ]
    assert [r.serial for r in await store.certificates.revoked_for_issuer("cpo-station-ca")] == [
        "1"
    ]


async def test_revoke_station_revokes_all_of_its_unrevoked_station_certificates(
    store: Store,
) -> None:
    await store.certificates.add(record("1"))
    await store.certificates.add(record("2", fingerprint="cd" * 32))
    await store.certificates.add(record("3", fingerprint="ef" * 32, station="CP-2"))
    await store.certificates.revoke("1", "superseded", T0)
    revoked = await store.certificates.revoke_station("CP-1", "key-compromise", T0)
    assert [r.serial for r in revoked] == ["2"]
    assert await store.certificates.revoke_station("CP-1", "key-compromise", T0) == []
    assert (await store.certificates.get("3")).revoked_at is None  # type: ignore[union-attr]


# --- the PKI with a store --------------------------------------------------------------------


async def test_record_hierarchy_is_idempotent(store: Store, pki: Pki) -> None:
    first = await record_hierarchy(store, pki)
    again = await record_hierarchy(store, pki)
    assert first == again
    roles = sorted(r.role for r in await store.certificates.list())
    assert roles == ["ca", "ca", "ca", "firmware", "root", "root", "server", "server"]
    root = await store.certificates.find_by_fingerprint(
        pki.root.certificate.fingerprint(hashes.SHA256()).hex()
    )
    assert root is not None and root.issuer_ca == "cpo-root" and root.role == "root"


async def test_SEC_10_provision_station_records_the_certificate_and_writes_private_files(
    store: Store, pki: Pki, tmp_path: Path
) -> None:
    out = tmp_path / "station"
    provisioned = await provision_station(
        pki, store, identity="CP-3", cn="SN-3", o="ChargeWarden CPO", out_dir=out
    )
    stored = await store.certificates.list(station="CP-3")
    assert stored == [provisioned.record]
    assert stored[0].role == "station" and stored[0].issuer_ca == "cpo-station-ca"
    assert stat.S_IMODE(provisioned.key_path.stat().st_mode) == 0o600
    assert b"-----BEGIN PRIVATE KEY-----" in provisioned.key_path.read_bytes()
    chain = x509.load_pem_x509_certificates(provisioned.chain_path.read_bytes())
    assert chain == [provisioned.certificate, pki.station_ca.certificate]
    root = x509.load_pem_x509_certificates(provisioned.root_path.read_bytes())
    assert root == [pki.root.certificate]
    chain[0].verify_directly_issued_by(chain[1])
    chain[1].verify_directly_issued_by(root[0])
    with pytest.raises(PkiError, match="already exists"):
        await provision_station(
            pki, store, identity="CP-3", cn="SN-3", o="ChargeWarden CPO", out_dir=out
        )
    assert len(await store.certificates.list(station="CP-3")) == 1


async def test_write_crls_regenerates_on_change_only(
    store: Store, pki: Pki, tmp_path: Path
) -> None:
    assert sorted(await write_crls(pki, store)) == [
        "cpo-root",
        "cpo-server-ca",
        "cpo-station-ca",
        "cpo-v2g-ca",
        "manufacturer-root",
    ]
    assert await write_crls(pki, store) == []
    provisioned = await provision_station(
        pki, store, identity="CP-3", cn="SN-3", o="ChargeWarden CPO", out_dir=tmp_path / "s"
    )
    await store.certificates.revoke(provisioned.record.serial, "key-compromise", datetime.now(UTC))
    assert await write_crls(pki, store) == ["cpo-station-ca"]
    crl = x509.load_der_x509_crl(pki.layout.crl("cpo-station-ca").read_bytes())
    assert [e.serial_number for e in crl] == [provisioned.certificate.serial_number]
    # Half-way to nextUpdate, a CRL is re-signed even without news.
    assert await write_crls(pki, store, datetime.now(UTC) + timedelta(days=4)) != []


async def test_crl_provider_follows_the_store_and_knows_only_our_cas(
    store: Store, pki: Pki, tmp_path: Path
) -> None:
    provide = make_crl_provider(pki, store)
    assert await provide("firmware-signer") is None
    assert await provide("nope") is None
    empty = x509.load_der_x509_crl(await provide("cpo-station-ca"))  # type: ignore[arg-type]
    assert list(empty) == []
    # Cached while nothing changes: the public endpoint must not make the CA sign every time.
    assert await provide("cpo-station-ca") == empty.public_bytes(serialization.Encoding.DER)
    provisioned = await provision_station(
        pki, store, identity="CP-3", cn="SN-3", o="ChargeWarden CPO", out_dir=tmp_path / "s"
    )
    await store.certificates.revoke(provisioned.record.serial, "superseded", datetime.now(UTC))
    crl = x509.load_der_x509_crl(await provide("cpo-station-ca"))  # type: ignore[arg-type]
    assert [e.serial_number for e in crl] == [provisioned.certificate.serial_number]
