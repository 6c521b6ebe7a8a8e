"""The simulated station's own keys, certificates and root store, sans I/O (SIM-02, SIM-03).

Test CAs come from `chargewarden.pki.issue`; hash data is recomputed independently with
`chargewarden.pki.hashdata` to check what the station reports and matches.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from chargewarden.pki.hashdata import HashAlgorithm, certificate_hash_data
from chargewarden.pki.issue import issue_ca, issue_leaf, name
from chargewarden.pki.keys import PrivateKey
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.certificates import LeafType, StationCertificates
from chargewarden.simulator.config import CSR_FAULTS, StationConfig, TlsMaterialError
from chargewarden.simulator.fleet import fleet_configs
from chargewarden.simulator.rootstore import RootType

V16, V201 = OcppVersion.V16, OcppVersion.V201
NOW = datetime.now(UTC).replace(microsecond=0)
SERIAL = "SN-0001"
CPO = "Example CPO"


# ---- a throw-away PKI ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ca:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def make_root(cn: str = "Test CSMS Root", *, days: int = 30, start: datetime = NOW) -> Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_ca(
        name(cn, CPO), key.public_key(), key, issuer_cert=None,
        not_before=start - timedelta(days=1), not_after=start + timedelta(days=days),
        path_length=1,
    )  # fmt: skip
    return Ca(cert, key)


def make_sub_ca(root: Ca, cn: str = "Test Station CA") -> Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_ca(
        name(cn, CPO), key.public_key(), root.key, issuer_cert=root.cert,
        not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=20), path_length=0,
    )  # fmt: skip
    return Ca(cert, key)


@pytest.fixture(scope="module")
def root() -> Ca:
    return make_root()


@pytest.fixture(scope="module")
def sub_ca(root: Ca) -> Ca:
    return make_sub_ca(root)


def pem(*certificates: x509.Certificate) -> str:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates).decode()


def sign(
    csr_pem: str,
    issuer: Ca,
    *,
    cn: str | None = None,
    o: str | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    public_key: Any = None,
    client: bool = True,
) -> x509.Certificate:
    """What a CSMS's CA does with the CSR; each keyword fabricates one defect."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    subject = csr.subject
    return issue_leaf(
        issuer.cert,
        issuer.key,
        public_key or csr.public_key(),
        cn=cn or str(subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value),
        o=o or str(subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value),
        not_before=not_before or NOW - timedelta(minutes=5),
        not_after=not_after or NOW + timedelta(days=10),
        client=client,
        dns_names=() if client else ("station.example",),
    )


def config(version: OcppVersion = V201, **overrides: Any) -> StationConfig:
    params: dict[str, Any] = {
        "identity": "CP-1",
        "ocpp_version": version,
        "url": "wss://csms.example/ocpp",
        "serial_number": SERIAL,
        "cpo_name": CPO,
        "security_profile": 2,
        "password": "Station-Password-0123456789",
    }
    params.update(overrides)
    return StationConfig(**params)


def station(
    root: Ca | None = None, version: OcppVersion = V201, **overrides: Any
) -> StationCertificates:
    if root is not None:
        overrides.setdefault("csms_root_pem", root.pem)
    return StationCertificates(config(version, **overrides))


def subject(csr: x509.CertificateSigningRequest, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in csr.subject.get_attributes_for_oid(oid)]


def private_pem(certs: StationCertificates) -> bytes:
    material = certs.tls_material()
    assert material.client_key_pem is not None
    return material.client_key_pem


# ---- CSR (SIM-02) -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize("leaf_type", list(LeafType))
def test_csr_names_the_station_and_carries_a_fresh_key(
    root: Ca, version: OcppVersion, leaf_type: LeafType
) -> None:
    certs = station(root, version)
    text = certs.build_csr(leaf_type)
    assert text.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert "PRIVATE" not in text
    csr = x509.load_pem_x509_csr(text.encode())
    assert csr.is_signature_valid
    assert subject(csr, NameOID.COMMON_NAME) == [SERIAL]
    assert subject(csr, NameOID.ORGANIZATION_NAME) == [CPO]
    key = csr.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert certs.has_pending(leaf_type)
    # A second CSR is a new key pair (A02.FR.02), never the previous one.
    again = x509.load_pem_x509_csr(certs.build_csr(leaf_type).encode())
    assert again.public_key() != key


def test_csr_uses_the_current_cpo_name_the_serial_and_rsa_when_configured(root: Ca) -> None:
    certs = station(root, key_type="rsa-2048", serial_number="", identity="CP-ID-7")
    certs.cpo_name = "Renamed CPO"  # what CpoName / OrganizationName writes change
    csr = x509.load_pem_x509_csr(certs.build_csr().encode())
    assert subject(csr, NameOID.COMMON_NAME) == ["CP-ID-7"]  # serial defaults to the identity
    assert subject(csr, NameOID.ORGANIZATION_NAME) == ["Renamed CPO"]
    key = csr.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048


def test_private_key_is_never_in_a_repr(root: Ca, sub_ca: Ca) -> None:
    certs = station(root)
    csr = certs.build_csr()
    assert certs.accept_signed_chain(
        pem(sign(csr, sub_ca), sub_ca.cert), LeafType.CHARGING_STATION, NOW
    ).ok
    key_pem = private_pem(certs)
    assert b"BEGIN PRIVATE KEY" in key_pem  # PKCS#8, for the station's TLS stack only
    body = key_pem.decode().splitlines()[1]
    for text in (repr(certs), str(certs), repr(certs.tls_material()), repr(certs.config)):
        assert "PRIVATE" not in text and body not in text


@pytest.mark.parametrize("fault", CSR_FAULTS)
def test_each_csr_fault_produces_its_defect_and_only_that(root: Ca, fault: str) -> None:
    csr = x509.load_pem_x509_csr(station(root, csr_fault=fault).build_csr().encode())
    key = csr.public_key()
    cn, o = subject(csr, NameOID.COMMON_NAME), subject(csr, NameOID.ORGANIZATION_NAME)
    try:
        basic = csr.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    defects = {
        "weak-key": isinstance(key, rsa.RSAPublicKey) and key.key_size == 1024,
        "wrong-cn": cn != [SERIAL],
        "wrong-o": o != [CPO],
        "bad-signature": not csr.is_signature_valid,
        "ca-request": basic is not None and basic.ca,
    }
    assert defects == {f: f == fault for f in CSR_FAULTS}


# ---- CertificateSigned (SIM-02) ----------------------------------------------------------------


def test_signed_chain_becomes_the_client_certificate(root: Ca, sub_ca: Ca) -> None:
    certs = station(root)
    assert certs.client_certificate is None and certs.tls_material().client_cert_pem is None
    csr = certs.build_csr()
    leaf = sign(csr, sub_ca)
    generation = certs.generation
    check = certs.accept_signed_chain(pem(leaf, sub_ca.cert), LeafType.CHARGING_STATION, NOW)
    assert check.ok and check.reason == ""
    assert certs.client_certificate == leaf
    assert certs.chain() == [leaf, sub_ca.cert]
    assert not certs.has_pending()
    assert certs.generation == generation + 1  # the runner builds a new TLS context
    material = certs.tls_material()
    assert material.client_cert_pem is not None and material.client_key_pem is not None
    key = serialization.load_pem_private_key(material.client_key_pem, None)
    assert key.public_key() == leaf.public_key()
    # The same chain again: nothing is pending any more.
    again = certs.accept_signed_chain(pem(leaf, sub_ca.cert), LeafType.CHARGING_STATION, NOW)
    assert not again.ok and "pending" in again.reason


def test_v2g_certificate_is_kept_apart_from_the_client_certificate(root: Ca, sub_ca: Ca) -> None:
    certs = station(root)
    generation = certs.generation
    v2g = sign(certs.build_csr(LeafType.V2G), sub_ca, client=False)  # serverAuth: allowed
    assert certs.accept_signed_chain(pem(v2g, sub_ca.cert), LeafType.V2G, NOW).ok
    assert certs.chain(LeafType.V2G) == [v2g, sub_ca.cert]
    assert certs.client_certificate is None and certs.generation == generation


def _wrong_key(csr: str, sub_ca: Ca) -> x509.Certificate:
    return sign(csr, sub_ca, public_key=ec.generate_private_key(ec.SECP256R1()).public_key())


REJECTIONS = {
    "wrong key": (_wrong_key, "not for the key"),
    "expired": (
        lambda csr, ca: sign(
            csr, ca, not_before=NOW - timedelta(days=3), not_after=NOW - timedelta(days=1)
        ),
        "expired",
    ),
    "not yet valid": (
        lambda csr, ca: sign(
            csr, ca, not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=3)
        ),
        "not valid yet",
    ),
    "wrong CN": (lambda csr, ca: sign(csr, ca, cn="SN-9999"), "CN 'SN-9999'"),
    "wrong O": (lambda csr, ca: sign(csr, ca, o="Other CPO"), "O 'Other CPO'"),
    "unknown issuer": (
        lambda csr, ca: sign(csr, make_sub_ca(make_root("Stranger Root"))),
        "does not verify",
    ),
    "server certificate": (lambda csr, ca: sign(csr, ca, client=False), "does not verify"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_signed_chain_rejections(root: Ca, sub_ca: Ca, case: str) -> None:
    certs = station(root)
    make, reason = REJECTIONS[case]
    leaf = make(certs.build_csr(), sub_ca)
    check = certs.accept_signed_chain(pem(leaf, sub_ca.cert), LeafType.CHARGING_STATION, NOW)
    assert not check.ok
    assert reason in check.reason
    assert certs.client_certificate is None and certs.has_pending()  # discarded, key kept


def test_signed_chain_without_intermediate_garbage_or_any_root(root: Ca, sub_ca: Ca) -> None:
    certs = station(root)
    leaf = sign(certs.build_csr(), sub_ca)
    assert (
        "does not verify"
        in certs.accept_signed_chain(pem(leaf), "ChargingStationCertificate", NOW).reason
    )
    garbage = certs.accept_signed_chain("not a chain", LeafType.CHARGING_STATION, NOW)
    assert garbage.reason == "certificateChain is not a PEM certificate chain"
    rootless = station(None)
    leaf = sign(rootless.build_csr(), sub_ca)
    check = rootless.accept_signed_chain(pem(leaf, sub_ca.cert), LeafType.CHARGING_STATION, NOW)
    assert "no CSMS root" in check.reason
    # A root installed over OCPP counts: the same chain is then accepted.
    assert rootless.install(RootType.CSMS, root.pem, NOW) == "Accepted"
    assert rootless.accept_signed_chain(pem(leaf, sub_ca.cert), LeafType.CHARGING_STATION, NOW).ok


# ---- root store (SIM-03) ------------------------------------------------------------------------


def test_install_accepts_a_root_once_and_rejects_what_is_not_one(root: Ca, sub_ca: Ca) -> None:
    certs = station(None, V16)
    other = make_root("Manufacturer Root")
    assert certs.install("CentralSystemRootCertificate", root.pem.decode(), NOW) == "Accepted"
    assert certs.install(RootType.CSMS, root.pem, NOW) == "Accepted"  # again: no duplicate
    assert certs.roots("CentralSystemRootCertificate") == [root.cert]
    assert certs.roots(RootType.CSMS) == [root.cert]
    assert certs.install("ManufacturerRootCertificate", other.pem, NOW) == "Accepted"
    leaf = sign(station(root).build_csr(), sub_ca)
    expired = make_root("Old Root", days=1, start=NOW - timedelta(days=10))
    for bad in (
        "garbage",
        pem(leaf),  # not a CA
        sub_ca.pem.decode(),  # a CA, but not self-signed
        pem(root.cert, other.cert),  # two certificates
        expired.pem.decode(),  # TC_M_07_CS
    ):
        assert certs.install(RootType.CSMS, bad, NOW) == "Rejected"
    assert certs.roots(RootType.CSMS) == [root.cert]


def test_install_fails_when_the_store_of_that_type_is_full(root: Ca) -> None:
    certs = station(root, root_store_limit=2)  # the configured root is one of the two
    assert certs.install(RootType.CSMS, make_root("Second").pem, NOW) == "Accepted"
    assert certs.install(RootType.CSMS, make_root("Third").pem, NOW) == "Failed"
    assert certs.install(RootType.CSMS, root.pem, NOW) == "Accepted"  # installed already
    assert certs.install(RootType.MO, make_root("MO Root").pem, NOW) == "Accepted"  # per type


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_installed_hash_data_and_delete_in_each_algorithm(
    root: Ca, algorithm: HashAlgorithm
) -> None:
    certs = station(root, hash_algorithm=algorithm.value)
    manufacturer = make_root("Manufacturer Root")
    assert certs.install(RootType.MANUFACTURER, manufacturer.pem, NOW) == "Accepted"
    expected = certificate_hash_data(root.cert, algorithm)  # self-issued: over itself
    assert certs.installed(["CSMSRootCertificate"]) == [("CSMSRootCertificate", expected)]
    assert [t for t, _ in certs.installed()] == [
        "CSMSRootCertificate",
        "ManufacturerRootCertificate",
    ]
    assert len(expected.issuer_key_hash) == {"SHA256": 64, "SHA384": 96, "SHA512": 128}[algorithm]
    # The CSMS deletes with the algorithm it was given (M04.FR.07); any algorithm matches.
    for used in HashAlgorithm:
        assert certs.delete(certificate_hash_data(make_root("Unknown").cert, used)) == "NotFound"
    generation = certs.generation
    assert certs.delete(certificate_hash_data(root.cert, algorithm)) == "Accepted"
    assert certs.roots(RootType.CSMS) == [] and certs.generation == generation + 1
    assert certs.delete(certificate_hash_data(root.cert, algorithm)) == "NotFound"
    other = HashAlgorithm.SHA512 if algorithm is not HashAlgorithm.SHA512 else HashAlgorithm.SHA256
    assert certs.delete(certificate_hash_data(manufacturer.cert, other)) == "Accepted"
    assert certs.installed() == []
    # All CSMS roots gone: the station trusts nothing (not the system store).
    assert certs.tls_material().csms_roots_pem == b""


def test_installed_uses_version_names_and_lists_the_v2g_chain(root: Ca, sub_ca: Ca) -> None:
    certs16 = station(root, V16)
    assert certs16.installed() == [
        ("CentralSystemRootCertificate", certificate_hash_data(root.cert))
    ]
    certs = station(root, V201)
    v2g = sign(certs.build_csr(LeafType.V2G), sub_ca)
    assert certs.accept_signed_chain(pem(v2g, sub_ca.cert), LeafType.V2G, NOW).ok
    listed = dict(certs.installed())
    assert listed["V2GCertificateChain"] == certificate_hash_data(v2g, issuer=sub_ca.cert)
    assert certs.v2g_child_hash_data() == [certificate_hash_data(sub_ca.cert, issuer=root.cert)]
    assert certs.installed(["MORootCertificate"]) == []
    assert certs.delete(certificate_hash_data(v2g, issuer=sub_ca.cert)) == "Accepted"
    assert certs.chain(LeafType.V2G) == []


def test_own_charging_station_certificate_cannot_be_deleted(root: Ca, sub_ca: Ca) -> None:
    certs = station(root)
    leaf = sign(certs.build_csr(), sub_ca)
    assert certs.accept_signed_chain(pem(leaf, sub_ca.cert), LeafType.CHARGING_STATION, NOW).ok
    for algorithm in HashAlgorithm:
        hash_data = certificate_hash_data(leaf, algorithm, issuer=sub_ca.cert)
        assert certs.delete(hash_data) == "Failed"  # M04.FR.05
    assert certs.client_certificate == leaf


# ---- persistence (SIM-03) ----------------------------------------------------------------------


def test_state_directory_round_trip(tmp_path: Path, root: Ca, sub_ca: Ca) -> None:
    state = tmp_path / "station"
    certs = station(root, state_dir=state)
    manufacturer = make_root("Manufacturer Root")
    assert certs.install(RootType.MANUFACTURER, manufacturer.pem, NOW) == "Accepted"
    leaf = sign(certs.build_csr(), sub_ca)
    assert certs.accept_signed_chain(pem(leaf, sub_ca.cert), LeafType.CHARGING_STATION, NOW).ok
    csr = certs.build_csr(LeafType.V2G)  # pending over the restart
    key_pem = private_pem(certs)

    for path in state.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert (state / "charging-station.key.pem").read_bytes() == key_pem
    assert b"BEGIN PRIVATE KEY" in key_pem  # PKCS#8, unencrypted
    assert not list(state.glob(".*.tmp"))  # atomic writes leave no temporary file behind

    restarted = station(root, state_dir=state)
    assert restarted.client_certificate == leaf
    assert private_pem(restarted) == key_pem
    assert restarted.roots(RootType.MANUFACTURER) == [manufacturer.cert]
    assert restarted.roots(RootType.CSMS) == [root.cert]
    v2g = sign(csr, sub_ca)
    assert restarted.accept_signed_chain(pem(v2g, sub_ca.cert), LeafType.V2G, NOW).ok

    # A deleted root stays deleted; the configured (factory) root comes back at every start.
    assert restarted.delete(certificate_hash_data(manufacturer.cert)) == "Accepted"
    assert restarted.delete(certificate_hash_data(root.cert)) == "Accepted"
    again = station(root, state_dir=state)
    assert again.roots(RootType.MANUFACTURER) == []
    assert again.roots(RootType.CSMS) == [root.cert]
    assert again.chain(LeafType.V2G) == [v2g, sub_ca.cert]


def test_state_directory_certificate_wins_over_the_configured_one(
    tmp_path: Path, root: Ca, sub_ca: Ca
) -> None:
    certs = station(root, state_dir=tmp_path)
    leaf = sign(certs.build_csr(), sub_ca)
    assert certs.accept_signed_chain(pem(leaf, sub_ca.cert), LeafType.CHARGING_STATION, NOW).ok
    provisioned_key = ec.generate_private_key(ec.SECP256R1())
    provisioned = sign(station(root).build_csr(), sub_ca, public_key=provisioned_key.public_key())
    key_pem = provisioned_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with_config = dict(client_cert_pem=pem(provisioned).encode(), client_key_pem=key_pem)
    assert station(root, state_dir=tmp_path, **with_config).client_certificate == leaf
    assert station(root, **with_config).client_certificate == provisioned


def test_unusable_state_directory_is_reported(tmp_path: Path, root: Ca, sub_ca: Ca) -> None:
    certs = station(root, state_dir=tmp_path)
    leaf = sign(certs.build_csr(), sub_ca)
    assert certs.accept_signed_chain(pem(leaf, sub_ca.cert), LeafType.CHARGING_STATION, NOW).ok
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "charging-station.key.pem").write_bytes(other)
    with pytest.raises(TlsMaterialError) as caught:
        station(root, state_dir=tmp_path)
    assert caught.value.field == "state_dir" and "does not belong" in caught.value.problem
    (tmp_path / "csms-roots.pem").write_text("garbage")
    with pytest.raises(TlsMaterialError, match="csms-roots.pem"):
        station(root, state_dir=tmp_path)


def test_configured_csms_root_must_be_pem() -> None:
    with pytest.raises(TlsMaterialError) as caught:
        StationCertificates(config(csms_root_pem=b"not PEM"))
    assert caught.value.field == "csms_root_pem"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("key_type", "dsa"),
        ("csr_fault", "nonsense"),
        ("hash_algorithm", "MD5"),
        ("root_store_limit", 0),
        ("cpo_name", "x" * 65),
    ],
)
def test_config_checks_certificate_fields(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        config(**{field: value})


def test_config_normalises_hash_algorithm_and_state_dir(tmp_path: Path) -> None:
    cfg = config(hash_algorithm="sha384", state_dir=str(tmp_path))
    assert cfg.hash_algorithm is HashAlgorithm.SHA384
    assert cfg.state_dir == tmp_path


def test_fleet_gives_each_station_its_own_state_directory(tmp_path: Path) -> None:
    configs = fleet_configs(
        "F-", 2, state_root=tmp_path, ocpp_version=V201, url="ws://127.0.0.1:9/ocpp"
    )
    assert [c.state_dir for c in configs] == [tmp_path / "F-00001", tmp_path / "F-00002"]
