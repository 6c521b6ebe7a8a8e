"""Issuance: what every certificate of the hierarchy, the server and a station carries."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chargewarden.config import load_settings
from chargewarden.pki import PkiError
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.issue import (
    CLOCK_SKEW_BACKDATE,
    issue_leaf,
    issue_server_certificate,
    issue_station_certificate,
    random_serial,
    server_names,
)
from chargewarden.pki.keys import generate_ec

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSPHRASE = b"test passphrase for the CA"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    data_dir = tmp_path_factory.mktemp("issue")
    settings = load_settings(None, data_dir=data_dir, public_hostname="csms.example.com",
                             cpo_name="Example CPO", api_port=8443)
    return Pki.init(settings, PASSPHRASE, now=NOW)


def ext(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension:  # type: ignore[type-arg]
    return certificate.extensions.get_extension_for_class(kind)


def all_certificates(pki: Pki) -> list[x509.Certificate]:
    return [e.certificate for e in pki.entries.values()] + [
        e.certificate for e in pki.servers.values()
    ]


def test_serials_are_random_positive_159_bit_numbers() -> None:
    serials = {random_serial() for _ in range(200)}
    assert len(serials) == 200
    assert all(s.bit_length() == 159 for s in serials)


def test_every_certificate_has_ski_aki_basic_constraints_key_usage_and_a_big_serial(
    pki: Pki,
) -> None:
    for certificate in all_certificates(pki):
        assert certificate.serial_number.bit_length() == 159
        ski = ext(certificate, x509.SubjectKeyIdentifier).value
        assert ski == x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())  # type: ignore[arg-type]
        assert ext(certificate, x509.BasicConstraints).critical
        assert ext(certificate, x509.KeyUsage).critical
        if certificate.issuer != certificate.subject:
            ext(certificate, x509.AuthorityKeyIdentifier)
        assert certificate.not_valid_before_utc == NOW - CLOCK_SKEW_BACKDATE


def test_cas_are_p384_sign_with_sha384_and_intermediates_have_pathlen_0(pki: Pki) -> None:
    for name in ("cpo-root", "cpo-server-ca", "cpo-station-ca", "manufacturer-root"):
        certificate = pki.ca(name).certificate
        key = certificate.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
        assert isinstance(certificate.signature_hash_algorithm, hashes.SHA384)
        usage = ext(certificate, x509.KeyUsage).value
        assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
        assert ext(certificate, x509.BasicConstraints).value.ca
    for name in ("cpo-server-ca", "cpo-station-ca"):
        certificate = pki.ca(name).certificate
        assert ext(certificate, x509.BasicConstraints).value.path_length == 0
        certificate.verify_directly_issued_by(pki.root.certificate)
    assert pki.root.certificate.not_valid_after_utc - NOW == timedelta(days=20 * 365)


def test_firmware_signer_is_a_p256_code_signing_leaf_of_the_manufacturer_root(pki: Pki) -> None:
    signer = pki.firmware_signer.certificate
    assert isinstance(signer.public_key(), ec.EllipticCurvePublicKey)
    assert signer.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert not ext(signer, x509.BasicConstraints).value.ca
    assert list(ext(signer, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CODE_SIGNING]
    signer.verify_directly_issued_by(pki.manufacturer_root.certificate)


def test_SEC_06_server_certificates_name_the_public_hostname_rsa_and_ecdsa(pki: Pki) -> None:
    rsa_cert = pki.servers["rsa"].certificate
    ec_cert = pki.servers["ecdsa"].certificate
    assert isinstance(rsa_cert.public_key(), rsa.RSAPublicKey)
    assert rsa_cert.public_key().key_size == 2048  # type: ignore[union-attr]
    assert isinstance(ec_cert.public_key(), ec.EllipticCurvePublicKey)
    for certificate in (rsa_cert, ec_cert):
        cn = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn == "csms.example.com"
        san = ext(certificate, x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["csms.example.com"]
        assert san.get_values_for_type(x509.IPAddress) == []
        assert list(ext(certificate, x509.ExtendedKeyUsage).value) == [
            ExtendedKeyUsageOID.SERVER_AUTH
        ]
        assert not ext(certificate, x509.BasicConstraints).value.ca
        certificate.verify_directly_issued_by(pki.server_ca.certificate)
        assert certificate.not_valid_after_utc - NOW == timedelta(days=90)
        points = ext(certificate, x509.CRLDistributionPoints).value
        assert points[0].full_name[0].value == (
            "http://csms.example.com:8443/pki/crl/cpo-server-ca.crl"
        )
    rsa_usage = ext(rsa_cert, x509.KeyUsage).value
    assert rsa_usage.digital_signature and rsa_usage.key_encipherment
    ec_usage = ext(ec_cert, x509.KeyUsage).value
    assert ec_usage.digital_signature and not ec_usage.key_encipherment
    assert not ec_usage.key_agreement
    assert pki.servers["rsa"].chain == (pki.server_ca.certificate,)


@pytest.mark.parametrize(
    ("host", "dns", "ips"),
    [
        ("csms.example.com", ["csms.example.com"], []),
        ("localhost", ["localhost"], []),
        ("192.0.2.7", ["192.0.2.7"], ["192.0.2.7"]),
        ("[2001:db8::1]", ["2001:db8::1"], ["2001:db8::1"]),
    ],
)
def test_server_names_add_an_ip_san_only_for_ip_literals(
    host: str, dns: list[str], ips: list[str]
) -> None:
    assert server_names(host) == (dns, ips)


def test_server_certificate_for_an_ip_literal_has_an_ip_san(pki: Pki, tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, public_hostname="192.0.2.7")
    key = generate_ec(ec.SECP256R1())
    certificate = issue_server_certificate(
        pki.server_ca.certificate, pki.server_ca.key, key.public_key(), settings,
        issuer_name="cpo-server-ca", now=NOW,
    )
    san = ext(certificate, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.7")]


def test_SEC_09_station_certificate_carries_serial_cn_cpo_o_and_client_auth(pki: Pki) -> None:
    key = generate_ec(ec.SECP256R1())
    certificate = issue_station_certificate(
        pki, key.public_key(), serial_number_cn="SN-0001", cpo_name="Example CPO",
        lifetime_days=365, now=NOW,
    )
    subject = certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SN-0001"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example CPO"
    assert list(ext(certificate, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = ext(certificate, x509.KeyUsage).value
    assert usage.digital_signature and usage.key_agreement and not usage.key_cert_sign
    assert certificate.not_valid_before_utc == NOW - timedelta(minutes=5)
    assert certificate.not_valid_after_utc == NOW + timedelta(days=365)
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA384)
    certificate.verify_directly_issued_by(pki.station_ca.certificate)
    aki = ext(certificate, x509.AuthorityKeyIdentifier).value
    station_ski = ext(pki.station_ca.certificate, x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == station_ski.digest


def test_rsa_station_certificate_uses_key_encipherment(pki: Pki) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = issue_station_certificate(
        pki, key.public_key(), serial_number_cn="SN-RSA", cpo_name="Example CPO",
        lifetime_days=30, now=NOW,
    )
    usage = ext(certificate, x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_agreement


def test_station_certificate_never_outlives_the_station_ca(pki: Pki) -> None:
    certificate = issue_station_certificate(
        pki, generate_ec(ec.SECP256R1()).public_key(), serial_number_cn="SN-LONG",
        cpo_name="Example CPO", lifetime_days=20 * 365, now=NOW,
    )
    assert certificate.not_valid_after_utc == pki.station_ca.certificate.not_valid_after_utc


@pytest.mark.parametrize("cn", ["", "x" * 65, "bad\nname"])
def test_unusable_names_are_refused(pki: Pki, cn: str) -> None:
    with pytest.raises(PkiError, match="common name"):
        issue_station_certificate(
            pki, generate_ec(ec.SECP256R1()).public_key(), serial_number_cn=cn,
            cpo_name="Example CPO", lifetime_days=1, now=NOW,
        )


def test_issue_leaf_fabricates_the_validity_it_is_given(pki: Pki) -> None:
    key = generate_ec(ec.SECP256R1())
    past = NOW - timedelta(days=10)
    certificate = issue_leaf(
        pki.station_ca.certificate, pki.station_ca.key, key.public_key(), cn="SN-OLD",
        o="Example CPO", not_before=past, not_after=past + timedelta(days=1),
    )
    assert certificate.not_valid_before_utc == past
    assert certificate.not_valid_after_utc == past + timedelta(days=1)


def test_weak_public_key_is_not_certified(pki: Pki) -> None:
    weak = ec.generate_private_key(ec.SECP192R1())
    with pytest.raises(PkiError, match="weak key"):
        issue_leaf(pki.station_ca.certificate, pki.station_ca.key, weak.public_key(),
                   cn="SN-WEAK", o="Example CPO", not_before=NOW, not_after=NOW + timedelta(1))
