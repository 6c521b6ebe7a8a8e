"""The CA on disk: init, load, check, fast expiration (SEC-14) and the TLS material."""

from __future__ import annotations

import shutil
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from chargewarden.config import Settings, load_settings
from chargewarden.pki import PkiError, hierarchy
from chargewarden.pki.hierarchy import Pki, pem_of
from chargewarden.pki.issue import issue_leaf
from chargewarden.pki.keys import generate_ec, write_private_key
from chargewarden.pki.lifecycle import ensure_pki, renew_server_certificates_if_due
from chargewarden.pki.material import load_tls_material, material_version
from chargewarden.pki.passphrase import PASSPHRASE_ENV

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSPHRASE = b"test passphrase for the CA"


@pytest.fixture(autouse=True)
def fixed_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE.decode())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA made once (RSA key generation is slow-ish); tests get their own copy."""
    data_dir = tmp_path_factory.mktemp("template")
    Pki.init(
        load_settings(None, data_dir=data_dir, server_cert_lifetime_hours=24), PASSPHRASE, now=NOW
    )
    return data_dir


@pytest.fixture
def settings(template: Path, tmp_path: Path) -> Settings:
    shutil.copytree(template, tmp_path / "data")
    return load_settings(None, data_dir=tmp_path / "data", server_cert_lifetime_hours=24)


def test_init_writes_every_file_and_keys_are_private(settings: Settings) -> None:
    ca_dir = settings.effective_ca_dir
    for name in (
        "cpo-root",
        "cpo-server-ca",
        "cpo-station-ca",
        "cpo-v2g-ca",
        "manufacturer-root",
        "firmware-signer",
    ):
        assert (ca_dir / name / "cert.pem").is_file()
        key = ca_dir / name / "key.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    for kind in ("rsa", "ecdsa"):
        assert stat.S_IMODE((ca_dir / "server" / kind / "key.pem").stat().st_mode) == 0o600
        chain_file = ca_dir / "server" / kind / "chain.pem"
        chain = x509.load_pem_x509_certificates(chain_file.read_bytes())
        assert len(chain) == 2 and chain[1].subject == chain[0].issuer
    assert not list(ca_dir.glob(".init-*"))


def test_init_refuses_to_overwrite_an_existing_ca(settings: Settings) -> None:
    before = (settings.effective_ca_dir / "cpo-root" / "cert.pem").read_bytes()
    with pytest.raises(PkiError, match="a CA already exists in .*; use 'ca show'"):
        Pki.init(settings, PASSPHRASE)
    assert (settings.effective_ca_dir / "cpo-root" / "cert.pem").read_bytes() == before


def test_load_and_check_a_healthy_ca(settings: Settings) -> None:
    pki = Pki.load(settings, PASSPHRASE)
    assert pki.check(NOW) == []
    assert pki.warnings(NOW) == []
    assert PASSPHRASE.decode() not in repr(pki)


def test_load_with_the_wrong_passphrase_fails_at_once(settings: Settings) -> None:
    with pytest.raises(PkiError, match="wrong passphrase"):
        Pki.load(settings, b"not the right passphrase")


def test_load_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="no CA in .*ca init"):
        Pki.load(load_settings(None, data_dir=tmp_path), PASSPHRASE)


def test_the_v2g_ca_is_issued_by_the_cpo_root(settings: Settings) -> None:
    pki = Pki.load(settings, PASSPHRASE)
    v2g_ca = pki.v2g_ca.certificate
    v2g_ca.verify_directly_issued_by(pki.root.certificate)
    basic = v2g_ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca and basic.path_length == 0
    public_key = v2g_ca.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"  # ISO 15118-2
    assert "V2G CA" in v2g_ca.subject.rfc4514_string()


def _files(ca_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(ca_dir)): p.read_bytes() for p in ca_dir.rglob("*") if p.is_file()}


def test_a_ca_made_before_the_v2g_ca_gets_one_at_the_next_start_and_nothing_else_changes(
    settings: Settings,
) -> None:
    ca_dir = settings.effective_ca_dir
    shutil.rmtree(ca_dir / "cpo-v2g-ca")  # as a CA created by an earlier version
    before = _files(ca_dir)
    old = Pki.load(settings, PASSPHRASE)
    assert old.check(NOW) == []  # absent is not broken
    assert "cpo-v2g-ca" not in old.entries
    with pytest.raises(PkiError, match="cpo-v2g-ca is not available"):
        _ = old.v2g_ca
    assert _files(ca_dir) == before  # loading and checking write nothing

    pki = ensure_pki(settings, now=NOW + timedelta(hours=1))
    after = _files(ca_dir)
    assert {k: v for k, v in after.items() if not k.startswith("cpo-v2g-ca/")} == before
    assert sorted(k for k in after if k.startswith("cpo-v2g-ca/")) == [
        "cpo-v2g-ca/cert.pem",
        "cpo-v2g-ca/key.pem",
    ]
    assert stat.S_IMODE((ca_dir / "cpo-v2g-ca" / "key.pem").stat().st_mode) == 0o600
    assert not [p for p in ca_dir.iterdir() if p.name.startswith(".")]
    pki.v2g_ca.certificate.verify_directly_issued_by(pki.root.certificate)
    assert pki.v2g_ca.certificate.not_valid_after_utc <= pki.root.certificate.not_valid_after_utc
    assert Pki.load(settings, PASSPHRASE).v2g_ca.certificate == pki.v2g_ca.certificate

    # The next start finds it and leaves it alone.
    again = ensure_pki(settings, now=NOW + timedelta(hours=2))
    assert again.v2g_ca.certificate == pki.v2g_ca.certificate
    assert _files(ca_dir) == after


def test_a_v2g_ca_that_cannot_be_written_does_not_stop_the_start(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.rmtree(settings.effective_ca_dir / "cpo-v2g-ca")

    def read_only(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(hierarchy, "write_private_key", read_only)
    pki = ensure_pki(settings, now=NOW)
    assert "cpo-v2g-ca" not in pki.entries
    assert "cannot add cpo-v2g-ca" in caplog.text and "Permission denied" in caplog.text
    assert not [p for p in settings.effective_ca_dir.iterdir() if p.name.startswith(".")]


def test_a_broken_v2g_ca_is_reported_not_replaced(settings: Settings) -> None:
    key = settings.effective_ca_dir / "cpo-v2g-ca" / "key.pem"
    (settings.effective_ca_dir / "cpo-v2g-ca" / "cert.pem").unlink()
    key_bytes = key.read_bytes()
    problems = Pki.load(settings, PASSPHRASE).check(NOW)
    assert any("cpo-v2g-ca" in p and "missing" in p for p in problems), problems
    with pytest.raises(PkiError, match="not usable: .*cpo-v2g-ca"):
        ensure_pki(settings, now=NOW)
    assert key.read_bytes() == key_bytes


def test_check_finds_a_key_that_does_not_match_its_certificate(settings: Settings) -> None:
    write_private_key(
        settings.effective_ca_dir / "cpo-station-ca" / "key.pem",
        generate_ec(ec.SECP384R1()),
        PASSPHRASE,
    )
    problems = Pki.load(settings, PASSPHRASE).check(NOW)
    assert any("cpo-station-ca" in p and "does not match" in p for p in problems), problems


def test_check_finds_a_missing_file(settings: Settings) -> None:
    (settings.effective_ca_dir / "cpo-server-ca" / "cert.pem").unlink()
    problems = Pki.load(settings, PASSPHRASE).check(NOW)
    assert any("cpo-server-ca" in p and "missing" in p for p in problems), problems


def test_check_finds_expired_certificates_and_warns_before(settings: Settings) -> None:
    pki = Pki.load(settings, PASSPHRASE)
    firmware_expiry = pki.firmware_signer.certificate.not_valid_after_utc
    assert any(
        "firmware-signer: expires in" in w
        for w in pki.warnings(firmware_expiry - timedelta(days=10))
    )
    problems = pki.check(firmware_expiry + timedelta(days=1))
    assert any("firmware-signer: certificate expired" in p for p in problems), problems


def test_check_finds_a_certificate_not_signed_by_its_parent(settings: Settings) -> None:
    pki = Pki.load(settings, PASSPHRASE)
    # A certificate for the station CA's key from the wrong issuer, planted in its place.
    forged = issue_leaf(
        pki.manufacturer_root.certificate,
        pki.manufacturer_root.key,
        pki.station_ca.key.public_key(),  # type: ignore[arg-type]
        cn="forged",
        o="x",
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=9),
    )
    (settings.effective_ca_dir / "cpo-station-ca" / "cert.pem").write_bytes(pem_of(forged))
    problems = Pki.load(settings, PASSPHRASE).check(NOW)
    assert any("cpo-station-ca: not issued by" in p for p in problems), problems


def test_SEC_14_server_certificates_renew_when_a_third_of_their_lifetime_remains(
    settings: Settings,
) -> None:
    pki = Pki.load(settings, PASSPHRASE)
    old = {kind: e.certificate for kind, e in pki.servers.items()}
    version = material_version(settings)
    # 24 h (+5 min backdate) lifetime: 14 h in, 10 h remain (> 1/3); 17 h in, 7 h (< 1/3).
    assert not renew_server_certificates_if_due(pki, settings, NOW + timedelta(hours=14))
    assert renew_server_certificates_if_due(pki, settings, NOW + timedelta(hours=17))
    for kind, entry in Pki.load(settings, PASSPHRASE).servers.items():
        assert entry.certificate != old[kind]
        assert entry.certificate.public_key() != old[kind].public_key()  # a fresh key
        assert entry.certificate.not_valid_after_utc == NOW + timedelta(hours=17 + 24)
    assert material_version(settings) != version


def test_server_certificate_is_renewed_when_public_hostname_changes(settings: Settings) -> None:
    renamed = settings.model_copy(update={"public_hostname": "csms.example.net"})
    pki = Pki.load(renamed, PASSPHRASE)
    assert renew_server_certificates_if_due(pki, renamed, NOW + timedelta(hours=1))
    san = (
        pki.servers["ecdsa"]
        .certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert san.get_values_for_type(x509.DNSName) == ["csms.example.net"]


def test_ensure_pki_creates_the_embedded_default_and_then_reuses_it(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path)
    first = ensure_pki(settings, now=NOW)
    again = ensure_pki(settings, now=NOW + timedelta(minutes=1))
    assert again.root.certificate == first.root.certificate


def test_ensure_pki_does_not_invent_a_configured_ca(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, ca_dir=tmp_path / "mounted-ca")
    with pytest.raises(PkiError, match="no CA in .*ca init"):
        ensure_pki(settings, now=NOW)


def test_ensure_pki_renews_an_expired_server_certificate_instead_of_failing(
    settings: Settings,
) -> None:
    later = NOW + timedelta(days=3)
    pki = ensure_pki(settings, now=later)
    assert pki.servers["rsa"].certificate.not_valid_after_utc == later + timedelta(hours=24)


def test_ensure_pki_fails_closed_on_a_broken_ca_listing_the_problems(settings: Settings) -> None:
    (settings.effective_ca_dir / "cpo-station-ca" / "cert.pem").unlink()
    with pytest.raises(PkiError, match="not usable: .*cpo-station-ca"):
        ensure_pki(settings, now=NOW)


def test_tls_material_loads_into_an_ssl_context(settings: Settings) -> None:
    material = load_tls_material(settings, PASSPHRASE)
    assert [c.parent.name for c, _ in material.server_chains] == ["rsa", "ecdsa"]
    assert PASSPHRASE.decode() not in repr(material)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for chain, key in material.server_chains:
        context.load_cert_chain(chain, key, password=material.key_passphrase)
    context.load_verify_locations(cadata=material.station_trust_pem.decode("ascii"))
    pki = Pki.load(settings, PASSPHRASE)
    assert x509.load_pem_x509_certificates(material.station_trust_pem) == [
        pki.station_ca.certificate
    ]
    assert x509.load_pem_x509_certificates(material.csms_root_pem) == [pki.root.certificate]
    assert material.crls == ()
    assert material.version == material_version(settings)


def test_tls_material_refuses_a_key_that_does_not_match_its_chain(settings: Settings) -> None:
    write_private_key(
        settings.effective_ca_dir / "server" / "ecdsa" / "key.pem",
        generate_ec(ec.SECP256R1()),
        PASSPHRASE,
    )
    with pytest.raises(PkiError, match="does not match"):
        load_tls_material(settings, PASSPHRASE)


def test_material_version_is_stable_until_a_file_changes(settings: Settings) -> None:
    version = material_version(settings)
    assert material_version(settings) == version
    station_ca = settings.effective_ca_dir / "imported" / "station-cas"
    station_ca.mkdir(parents=True)
    (station_ca / "extra.pem").write_bytes(b"")
    assert material_version(settings) != version
