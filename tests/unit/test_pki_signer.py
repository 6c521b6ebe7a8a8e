"""The built-in signer: station and V2G certificates from a CSR, with the chain to send."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder
from cryptography.x509.verification import Store as TrustStore

from chargewarden.config import Settings, load_settings
from chargewarden.pki import signer as signer_module
from chargewarden.pki.csr_policy import StationCertificateType
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.passphrase import PASSPHRASE_ENV
from chargewarden.pki.signer import (
    BuiltInSigner,
    CertificateSigner,
    SignedCertificate,
    SignerError,
    SigningRequest,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SIGNED_AT = NOW + timedelta(days=3)
PASSPHRASE = b"test passphrase for the CA"
LIFETIME_DAYS = 365
CN = "CP-0001"
O = "ACME Charging"  # noqa: E741 - the X.509 attribute's name
STATION = StationCertificateType.CHARGING_STATION
V2G = StationCertificateType.V2G


@pytest.fixture(autouse=True)
def fixed_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE.decode())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("template")
    Pki.init(load_settings(None, data_dir=data_dir), PASSPHRASE, now=NOW)
    return data_dir


@pytest.fixture
def settings(template: Path, tmp_path: Path) -> Settings:
    shutil.copytree(template, tmp_path / "data")
    return load_settings(None, data_dir=tmp_path / "data", station_cert_lifetime_days=LIFETIME_DAYS)


@pytest.fixture
def pki(settings: Settings) -> Pki:
    return Pki.load(settings, PASSPHRASE)


@pytest.fixture
def signer(pki: Pki, settings: Settings) -> BuiltInSigner:
    return BuiltInSigner(pki, settings, clock=lambda: SIGNED_AT)


def make_csr(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
) -> x509.CertificateSigningRequest:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, CN),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, O),
        ]
    )
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def eku(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def check_signed(
    signed: SignedCertificate,
    csr: x509.CertificateSigningRequest,
    issuing: x509.Certificate,
    root: x509.Certificate,
) -> None:
    leaf = signed.certificate
    assert spki(leaf.public_key()) == spki(csr.public_key())
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CN
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == O
    assert leaf.issuer == issuing.subject
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku(leaf)
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is False
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    # Backdated five minutes for station clocks; the lifetime counted from issuance.
    assert leaf.not_valid_before_utc == SIGNED_AT - timedelta(minutes=5)
    assert leaf.not_valid_after_utc == SIGNED_AT + timedelta(days=LIFETIME_DAYS)
    # The chain to send: leaf first, then the issuing CA, not the root; it verifies.
    chain = x509.load_pem_x509_certificates(signed.chain_pem.encode("ascii"))
    assert chain == [leaf, issuing]
    leaf.verify_directly_issued_by(issuing)
    # A station certificate names the station in its subject, not in a SAN (WebPKI's rule).
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    verifier = (
        PolicyBuilder()
        .store(TrustStore([root]))
        .time(SIGNED_AT)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        .build_client_verifier()
    )
    assert verifier.verify(leaf, chain[1:]).chain == [leaf, issuing, root]
    assert len(signed.chain_pem) <= 10000


async def test_CRT_02_signs_a_charging_station_certificate_with_the_station_ca(
    signer: BuiltInSigner, pki: Pki
) -> None:
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()))
    signed = await signer.sign(SigningRequest("CP-1", STATION, csr))
    check_signed(signed, csr, pki.station_ca.certificate, pki.root.certificate)
    assert signed.issuer_ca == "cpo-station-ca"
    assert eku(signed.certificate) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    crl = signed.certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert crl.value[0].full_name[0].value.endswith("/pki/crl/cpo-station-ca.crl")


async def test_CRT_02_signs_an_rsa_csr(signer: BuiltInSigner, pki: Pki) -> None:
    csr = make_csr(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    signed = await signer.sign(SigningRequest("CP-1", STATION, csr))
    check_signed(signed, csr, pki.station_ca.certificate, pki.root.certificate)


async def test_CRT_02_signs_a_v2g_certificate_with_the_v2g_ca(
    signer: BuiltInSigner, pki: Pki
) -> None:
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()))
    signed = await signer.sign(SigningRequest("CP-1", V2G, csr))
    check_signed(signed, csr, pki.v2g_ca.certificate, pki.root.certificate)
    assert signed.issuer_ca == "cpo-v2g-ca"
    assert eku(signed.certificate) == [
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.SERVER_AUTH,
    ]
    usage = signed.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_agreement and not usage.key_cert_sign
    # ISO 15118-2: ECDSA with SHA-256 throughout.
    assert isinstance(signed.certificate.signature_hash_algorithm, hashes.SHA256)
    assert isinstance(pki.v2g_ca.certificate.public_key(), ec.EllipticCurvePublicKey)


async def test_serials_are_random_and_differ_between_signings(signer: BuiltInSigner) -> None:
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()))
    first = await signer.sign(SigningRequest("CP-1", STATION, csr))
    second = await signer.sign(SigningRequest("CP-1", STATION, csr))
    assert first.certificate.serial_number != second.certificate.serial_number
    for signed in (first, second):
        assert 0 < signed.certificate.serial_number < 1 << 159  # positive, at most 20 octets


async def test_the_built_in_signer_is_a_certificate_signer(pki: Pki, settings: Settings) -> None:
    signer: CertificateSigner = BuiltInSigner(pki, settings)  # the default clock: now
    signed = await signer.sign(
        SigningRequest("CP-1", STATION, make_csr(ec.generate_private_key(ec.SECP256R1())))
    )
    assert signed.certificate.not_valid_before_utc <= datetime.now(UTC)


async def test_a_missing_v2g_ca_is_a_signer_error(settings: Settings) -> None:
    shutil.rmtree(settings.effective_ca_dir / "cpo-v2g-ca")
    pki = Pki.load(settings, PASSPHRASE)
    signer = BuiltInSigner(pki, settings, clock=lambda: SIGNED_AT)
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(SignerError, match="cannot sign the V2GCertificate of 'CP-1': cpo-v2g-ca"):
        await signer.sign(SigningRequest("CP-1", V2G, csr))
    # Station certificates are still signed.
    await signer.sign(SigningRequest("CP-1", STATION, csr))


async def test_a_csr_without_an_organization_is_a_signer_error(signer: BuiltInSigner) -> None:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CN)])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    with pytest.raises(SignerError, match="exactly one O"):
        await signer.sign(SigningRequest("CP-1", STATION, csr))


async def test_a_chain_over_the_certificate_signed_limit_is_a_signer_error(
    signer: BuiltInSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signer_module, "MAX_CHAIN_PEM_CHARS", 500)
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(SignerError, match="characters long; CertificateSigned allows at most 500"):
        await signer.sign(SigningRequest("CP-1", STATION, csr))
