"""`ca import`: the operator's material is validated, and broken material refused in one line."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chargewarden.config import Settings, load_settings
from chargewarden.pki import PkiError
from chargewarden.pki.hierarchy import Pki, pem_of
from chargewarden.pki.importer import (
    import_crl,
    import_server_certificate,
    import_station_ca,
)
from chargewarden.pki.issue import issue_ca, issue_leaf, name
from chargewarden.pki.keys import PrivateKey, generate_ec, private_key_pem
from chargewarden.pki.material import imported_warnings, load_tls_material

NOW = datetime.now(UTC)
PASSPHRASE = b"test passphrase for the CA"
DAY = timedelta(days=1)


@dataclass
class Ca:
    certificate: x509.Certificate
    key: PrivateKey


def make_ca(cn: str, *, parent: Ca | None = None, curve: ec.EllipticCurve | None = None,
            not_after: datetime | None = None) -> Ca:
    key = generate_ec(curve or ec.SECP256R1())
    certificate = issue_ca(
        name(cn, "Operator"), key.public_key(), parent.key if parent else key,
        issuer_cert=parent.certificate if parent else None, not_before=NOW - DAY,
        not_after=not_after or NOW + 365 * DAY, path_length=None,
    )
    return Ca(certificate, key)


def server_leaf(issuer: Ca, key: PrivateKey, *, cn: str = "localhost",
                dns: tuple[str, ...] = ("localhost",), client: bool = False,
                not_before: datetime | None = None, not_after: datetime | None = None,
                ) -> x509.Certificate:
    return issue_leaf(
        issuer.certificate, issuer.key, key.public_key(), cn=cn, o="Operator",
        not_before=not_before or NOW - DAY, not_after=not_after or NOW + 90 * DAY,
        client=client, dns_names=dns,
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


@pytest.fixture(scope="module")
def operator_root() -> Ca:
    return make_ca("Operator Root")


@pytest.fixture(scope="module")
def operator_issuing(operator_root: Ca) -> Ca:
    return make_ca("Operator Issuing CA", parent=operator_root)


def write(tmp_path: Path, filename: str, data: bytes) -> Path:
    path = tmp_path / filename
    path.write_bytes(data)
    return path


def import_server(settings: Settings, tmp_path: Path, certificate: x509.Certificate,
                  key: PrivateKey, chain: list[x509.Certificate] | None = None) -> None:
    import_server_certificate(
        settings, PASSPHRASE,
        cert_path=write(tmp_path, "server.pem", pem_of(certificate)),
        key_path=write(tmp_path, "server-key.pem", private_key_pem(key, None)),
        chain_path=write(tmp_path, "chain.pem", pem_of(*chain)) if chain else None,
    )


# --- server certificate (SEC-06) -----------------------------------------------------------


def test_SEC_06_imported_server_certificate_replaces_the_generated_ones(
    settings: Settings, tmp_path: Path, operator_root: Ca, operator_issuing: Ca
) -> None:
    key = generate_ec(ec.SECP256R1())
    leaf = server_leaf(operator_issuing, key)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"operator key passphrase"),
    )
    result = import_server_certificate(
        settings, PASSPHRASE,
        cert_path=write(tmp_path, "server.pem", pem_of(leaf)),
        key_path=write(tmp_path, "server-key.pem", encrypted),
        key_passphrase=b"operator key passphrase",
        chain_path=write(tmp_path, "chain.pem", pem_of(operator_issuing.certificate,
                                                       operator_root.certificate)),
    )
    assert any("NOT renewed automatically" in note for note in result.notes)
    assert [r.role for r in result.records] == ["server", "root"]
    material = load_tls_material(settings, PASSPHRASE)
    assert len(material.server_chains) == 1
    chain_path, key_path = material.server_chains[0]
    assert x509.load_pem_x509_certificates(chain_path.read_bytes()) == [
        leaf, operator_issuing.certificate
    ]
    assert b"ENCRYPTED PRIVATE KEY" in key_path.read_bytes()  # re-encrypted with the CA's
    assert operator_root.certificate in x509.load_pem_x509_certificates(material.csms_root_pem)
    pki = Pki.load(settings, PASSPHRASE)
    assert pki.check() == []
    assert [e.certificate for e in pki.active_servers] == [leaf]


def test_SEC_06_import_refuses_a_file_that_is_not_pem(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="is not PEM"):
        import_server_certificate(settings, PASSPHRASE,
                                  cert_path=write(tmp_path, "c.der", b"\x30\x82\x01\x00"),
                                  key_path=write(tmp_path, "k.pem", b""))


def test_SEC_06_import_refuses_a_key_given_as_the_certificate(
    settings: Settings, tmp_path: Path
) -> None:
    pem = private_key_pem(generate_ec(ec.SECP256R1()), None)
    with pytest.raises(PkiError, match="is not a certificate \\(it holds a PRIVATE KEY\\)"):
        import_server_certificate(settings, PASSPHRASE, cert_path=write(tmp_path, "c.pem", pem),
                                  key_path=write(tmp_path, "k.pem", pem))


def test_SEC_06_import_refuses_a_ca_where_a_server_certificate_belongs(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    with pytest.raises(PkiError, match="is a CA certificate"):
        import_server(settings, tmp_path, operator_issuing.certificate, operator_issuing.key)


def test_SEC_06_import_refuses_a_key_that_does_not_match(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    leaf = server_leaf(operator_issuing, generate_ec(ec.SECP256R1()))
    with pytest.raises(PkiError, match="does not match"):
        import_server(settings, tmp_path, leaf, generate_ec(ec.SECP256R1()))


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [(-10, -1, "expired on"), (1, 10, "is not yet valid")],
    ids=["expired", "not-yet-valid"],
)
def test_SEC_06_import_refuses_a_server_certificate_out_of_its_validity(
    settings: Settings, tmp_path: Path, operator_issuing: Ca, start: int, end: int, message: str
) -> None:
    key = generate_ec(ec.SECP256R1())
    leaf = server_leaf(operator_issuing, key, not_before=NOW + start * DAY,
                       not_after=NOW + end * DAY)
    with pytest.raises(PkiError, match=message):
        import_server(settings, tmp_path, leaf, key)


def test_SEC_06_import_refuses_a_weak_rsa_key(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point
    # issue_leaf itself refuses weak keys, so this certificate is built by hand.
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(operator_issuing.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .sign(operator_issuing.key, hashes.SHA256())
    )
    with pytest.raises(PkiError, match="weak key \\(RSA 1024 bits\\)"):
        import_server(settings, tmp_path, leaf, key)


def test_SEC_06_import_refuses_a_certificate_without_server_auth(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    key = generate_ec(ec.SECP256R1())
    with pytest.raises(PkiError, match="lacks the serverAuth"):
        import_server(settings, tmp_path, server_leaf(operator_issuing, key, client=True), key)


def test_SEC_06_import_refuses_a_certificate_for_another_host(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    key = generate_ec(ec.SECP256R1())
    leaf = server_leaf(operator_issuing, key, cn="other.example.com", dns=("other.example.com",))
    with pytest.raises(PkiError, match="does not name public_hostname 'localhost'"):
        import_server(settings, tmp_path, leaf, key)


def test_SEC_06_import_refuses_a_chain_that_does_not_issue_the_leaf(
    settings: Settings, tmp_path: Path, operator_root: Ca, operator_issuing: Ca
) -> None:
    key = generate_ec(ec.SECP256R1())
    leaf = server_leaf(operator_issuing, key)
    with pytest.raises(PkiError, match="is not issued by"):
        import_server(settings, tmp_path, leaf, key, chain=[operator_root.certificate])


def test_SEC_06_import_refuses_a_leaf_in_the_chain(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    key = generate_ec(ec.SECP256R1())
    leaf = server_leaf(operator_issuing, key)
    with pytest.raises(PkiError, match="not a CA"):
        import_server(settings, tmp_path, leaf, key, chain=[leaf])


# --- station CAs (SEC-09) ------------------------------------------------------------------


def crl_of(ca: Ca, revoked: list[int], next_update: datetime) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(NOW - DAY)
        .next_update(next_update)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - DAY)
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_SEC_09_imported_station_ca_and_its_crl_join_the_tls_material(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    result = import_station_ca(
        settings, ca_path=write(tmp_path, "ca.pem", pem_of(operator_issuing.certificate)),
        crl_path=write(tmp_path, "ca.crl", crl_of(operator_issuing, [7], NOW + 7 * DAY)),
    )
    assert result.records[0].issuer_ca == "imported:operator-issuing-ca"
    material = load_tls_material(settings, PASSPHRASE)
    trusted = x509.load_pem_x509_certificates(material.station_trust_pem)
    assert operator_issuing.certificate in trusted and len(trusted) == 2
    assert [[e.serial_number for e in crl] for crl in material.crls] == [[7]]
    # A newer CRL replaces the old one.
    import_crl(settings, write(tmp_path, "new.crl", crl_of(operator_issuing, [7, 8],
                                                           NOW + 7 * DAY)))
    material = load_tls_material(settings, PASSPHRASE)
    assert [[e.serial_number for e in crl] for crl in material.crls] == [[7, 8]]


def test_SEC_09_station_ca_import_refuses_a_leaf(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    leaf = server_leaf(operator_issuing, generate_ec(ec.SECP256R1()))
    with pytest.raises(PkiError, match="is not a CA"):
        import_station_ca(settings, ca_path=write(tmp_path, "leaf.pem", pem_of(leaf)))


def test_SEC_09_station_ca_import_refuses_an_expired_ca(settings: Settings, tmp_path: Path) -> None:
    old = make_ca("Old CA", not_after=NOW - timedelta(hours=1))
    with pytest.raises(PkiError, match="expired on"):
        import_station_ca(settings, ca_path=write(tmp_path, "old.pem", pem_of(old.certificate)))


def test_SEC_09_station_ca_import_refuses_a_weak_ca_key(settings: Settings, tmp_path: Path) -> None:
    weak = make_ca("Weak CA", curve=ec.SECP192R1())
    with pytest.raises(PkiError, match="weak key \\(EC 192 bits\\)"):
        import_station_ca(settings, ca_path=write(tmp_path, "weak.pem", pem_of(weak.certificate)))


def test_SEC_09_station_ca_import_refuses_a_crl_of_another_ca(
    settings: Settings, tmp_path: Path, operator_root: Ca, operator_issuing: Ca
) -> None:
    with pytest.raises(PkiError, match="is not signed by"):
        import_station_ca(
            settings, ca_path=write(tmp_path, "ca.pem", pem_of(operator_issuing.certificate)),
            crl_path=write(tmp_path, "root.crl", crl_of(operator_root, [], NOW + DAY)),
        )


def test_SEC_09_station_ca_import_refuses_an_expired_crl(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    with pytest.raises(PkiError, match="CRL .* expired"):
        import_station_ca(
            settings, ca_path=write(tmp_path, "ca.pem", pem_of(operator_issuing.certificate)),
            crl_path=write(tmp_path, "old.crl", crl_of(operator_issuing, [], NOW - 1 * DAY / 2)),
        )


def test_SEC_09_station_ca_imported_twice_is_refused(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    path = write(tmp_path, "ca.pem", pem_of(operator_issuing.certificate))
    import_station_ca(settings, ca_path=path)
    with pytest.raises(PkiError, match="already trusted"):
        import_station_ca(settings, ca_path=path, name="again")


def test_SEC_09_our_own_station_ca_is_not_imported_again(
    settings: Settings, tmp_path: Path
) -> None:
    ours = (settings.effective_ca_dir / "cpo-station-ca" / "cert.pem").read_bytes()
    with pytest.raises(PkiError, match="already trusted"):
        import_station_ca(settings, ca_path=write(tmp_path, "ours.pem", ours))


def test_crl_of_an_unknown_ca_is_refused(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    with pytest.raises(PkiError, match="not an imported station CA"):
        import_crl(settings, write(tmp_path, "x.crl", crl_of(operator_issuing, [], NOW + DAY)))


def test_imported_crl_due_for_renewal_is_warned_about(
    settings: Settings, tmp_path: Path, operator_issuing: Ca
) -> None:
    import_station_ca(
        settings, ca_path=write(tmp_path, "ca.pem", pem_of(operator_issuing.certificate)),
        crl_path=write(tmp_path, "ca.crl", crl_of(operator_issuing, [], NOW + DAY)),
    )
    assert imported_warnings(settings, NOW - timedelta(days=3)) == []
    (warning,) = imported_warnings(settings, NOW)
    assert "due for renewal" in warning and "ca import --crl" in warning
