"""CSMS root rollover on disk (CRT-08): prepare a new root and its cross certificate, switch."""

from __future__ import annotations

import json
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder
from cryptography.x509.verification import Store as TrustStore

from chargewarden.config import Settings, load_settings
from chargewarden.pki import PkiError, rollover
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.issue import issue_station_certificate
from chargewarden.pki.layout import SERVER_KINDS
from chargewarden.pki.material import csms_root_pem, load_tls_material, material_version
from chargewarden.pki.passphrase import PASSPHRASE_ENV
from chargewarden.pki.rollover import (
    RolloverAlreadyPrepared,
    load_prepared,
    new_root_cn,
    prepare_rollover,
    record_install,
    rollover_status,
    switch_root,
)

NOW = datetime.now(UTC).replace(microsecond=0)
PASSPHRASE = b"test passphrase for the CA"
CPO = "Example CPO"


@pytest.fixture(autouse=True)
def fixed_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE.decode())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("rollover-template")
    Pki.init(_settings(data_dir), PASSPHRASE, now=NOW - timedelta(hours=1))
    return data_dir


def _settings(data_dir: Path) -> Settings:
    return load_settings(None, data_dir=data_dir, cpo_name=CPO, public_hostname="localhost")


@pytest.fixture
def settings(template: Path, tmp_path: Path) -> Settings:
    shutil.copytree(template, tmp_path / "data")
    return _settings(tmp_path / "data")


def ski(certificate: x509.Certificate) -> bytes:
    return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def aki(certificate: x509.Certificate) -> bytes | None:
    value = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    return value.key_identifier


def verify_server(
    leaf: x509.Certificate, chain: list[x509.Certificate], root: x509.Certificate
) -> object:
    verifier = (
        PolicyBuilder()
        .store(TrustStore([root]))
        .time(datetime.now(UTC))
        .build_server_verifier(x509.DNSName("localhost"))
    )
    return verifier.verify(leaf, chain)


def test_CRT_08_prepare_makes_a_new_root_and_a_cross_certificate_from_the_old_root(
    settings: Settings,
) -> None:
    old = Pki.load(settings, PASSPHRASE).root.certificate
    prepared = prepare_rollover(settings, PASSPHRASE, now=NOW)
    new_root, cross = prepared.new_root, prepared.cross

    # The new root: self-signed P-384 CA, a name of its own next to the old one.
    new_root.verify_directly_issued_by(new_root)
    assert new_root.subject != old.subject
    cn = new_root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == f"{CPO} Root CA {NOW:%Y-%m}"
    assert new_root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == CPO
    assert isinstance(new_root.public_key(), ec.EllipticCurvePublicKey)
    assert new_root.public_key().curve.name == "secp384r1"  # type: ignore[union-attr]
    assert new_root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    # The cross certificate: the new root's name and key, issued and signed by the old root.
    cross.verify_directly_issued_by(old)
    assert cross.subject == new_root.subject
    assert cross.issuer == old.subject
    assert cross.public_key() == new_root.public_key()
    assert ski(cross) == ski(new_root)
    assert aki(cross) == ski(old)
    constraints = cross.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert cross.not_valid_after_utc <= old.not_valid_after_utc

    # On disk: both certificates, the key encrypted and private.
    directory = settings.effective_ca_dir / "rollover"
    assert x509.load_pem_x509_certificate((directory / "new-root.pem").read_bytes()) == new_root
    assert x509.load_pem_x509_certificate((directory / "new-root-cross.pem").read_bytes()) == cross
    key_file = directory / "new-root-key.pem"
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert load_prepared(settings, PASSPHRASE).new_root_key is not None

    status = rollover_status(settings)
    assert status.state == "prepared" and not status.switched
    assert status.as_dict()["new_root"]["sha256"] == prepared.new_root_sha256
    # Nothing the CSMS uses changed.
    assert Pki.load(settings, PASSPHRASE).root.certificate == old


def test_CRT_08_prepare_twice_refuses_and_reports_the_prepared_one(settings: Settings) -> None:
    first = prepare_rollover(settings, PASSPHRASE, now=NOW)
    with pytest.raises(RolloverAlreadyPrepared, match="already prepared") as refused:
        prepare_rollover(settings, PASSPHRASE, now=NOW)
    assert refused.value.status.prepared is not None
    assert refused.value.status.prepared.new_root == first.new_root
    assert load_prepared(settings).new_root == first.new_root


def test_CRT_08_switch_without_prepare_refuses(settings: Settings) -> None:
    with pytest.raises(PkiError, match="no root rollover is prepared"):
        switch_root(settings, PASSPHRASE)
    assert rollover_status(settings).state == "idle"


def test_CRT_08_switch_refuses_before_install_unless_forced(settings: Settings) -> None:
    prepare_rollover(settings, PASSPHRASE, now=NOW)
    before = (settings.effective_ca_dir / "cpo-root" / "cert.pem").read_bytes()
    with pytest.raises(PkiError, match="rollover install"):
        switch_root(settings, PASSPHRASE)
    assert (settings.effective_ca_dir / "cpo-root" / "cert.pem").read_bytes() == before
    result = switch_root(settings, PASSPHRASE, force=True)
    assert any("fail TLS" in w for w in result.warnings)


def test_CRT_08_switch_makes_the_new_root_the_root_and_old_certificates_still_verify(
    settings: Settings,
) -> None:
    pki = Pki.load(settings, PASSPHRASE)
    old_root = pki.root.certificate
    old_station_ca = pki.station_ca.certificate
    station_key = ec.generate_private_key(ec.SECP256R1())
    station = issue_station_certificate(
        pki, station_key.public_key(), serial_number_cn="SN-1", cpo_name=CPO, lifetime_days=30
    )
    version = material_version(settings)

    prepared = prepare_rollover(settings, PASSPHRASE, now=NOW)
    record_install(settings, [{"identity": "CP-1", "outcome": "installed"}], actor="test")
    result = switch_root(settings, PASSPHRASE)
    assert not result.warnings and not result.resumed
    assert set(result.recertified) == {"cpo-server-ca", "cpo-station-ca", "cpo-v2g-ca"}
    assert set(result.reissued_servers) == set(SERVER_KINDS)

    after = Pki.load(settings, PASSPHRASE)
    assert after.check() == []
    assert after.root.certificate == prepared.new_root
    # The CAs under the root: same keys and subjects, now issued by the new root.
    for name in ("cpo-server-ca", "cpo-station-ca", "cpo-v2g-ca"):
        before_cert, now_cert = pki.entries[name].certificate, after.entries[name].certificate
        assert now_cert != before_cert
        assert now_cert.subject == before_cert.subject
        assert now_cert.public_key() == before_cert.public_key()
        assert ski(now_cert) == ski(before_cert)
        now_cert.verify_directly_issued_by(prepared.new_root)
        assert aki(now_cert) == ski(prepared.new_root)
    # A station certificate issued before the switch still verifies against the station CA.
    station.verify_directly_issued_by(after.station_ca.certificate)
    assert after.station_ca.certificate != old_station_ca

    # The served chain: server leaf -> re-certified server CA -> new root.
    for kind in SERVER_KINDS:
        server = after.servers[kind]
        assert server.chain == (after.server_ca.certificate,)
        verify_server(server.certificate, list(server.chain), prepared.new_root)
        # ... and the old root alone does not vouch for it.
        with pytest.raises(Exception):  # noqa: B017 - VerificationError
            verify_server(server.certificate, list(server.chain), old_root)
        # A station that checks AdditionalRootCertificateCheck holds the cross certificate as
        # its CSMS root: as a trust anchor (partial chain verification, as WP ed.3 7.1 asks)
        # it vouches for the chain, the new key being the same.
        verify_server(server.certificate, list(server.chain), prepared.cross)
        # Through the cross certificate up to the old root, the path is one CA too long for
        # the old root's pathlen 1: why the served chain does not carry the cross certificate.
        with pytest.raises(Exception, match="path length"):  # noqa: B017
            verify_server(server.certificate, [*server.chain, prepared.cross], old_root)

    # The old root is archived with its key and the old CA certificates; the rollover is done.
    archive = result.archive
    assert archive.parent == settings.effective_ca_dir / "retired"
    assert archive.name.startswith("cpo-root-")
    assert x509.load_pem_x509_certificate((archive / "cert.pem").read_bytes()) == old_root
    assert stat.S_IMODE((archive / "key.pem").stat().st_mode) == 0o600
    issued = x509.load_pem_x509_certificate(
        (archive / "issued" / "cpo-station-ca.pem").read_bytes()
    )
    assert issued == old_station_ca
    assert not (settings.effective_ca_dir / "rollover").exists()
    state = json.loads((archive / "rollover" / "switch.json").read_text())
    assert "finished_at" in state

    # What TLS uses changed, so a running CSMS reloads it; stations are told the new root.
    assert material_version(settings) != version
    load_tls_material(settings, PASSPHRASE)
    assert x509.load_pem_x509_certificates(csms_root_pem(settings)) == [prepared.new_root]
    status = rollover_status(settings)
    assert status.state == "idle" and status.switched
    assert status.last_switch is not None and status.last_switch.retired_root == old_root

    # The next rollover can be prepared, with a name of its own.
    again = prepare_rollover(settings, PASSPHRASE, now=NOW)
    assert again.new_root.subject != prepared.new_root.subject
    again.cross.verify_directly_issued_by(prepared.new_root)


def test_CRT_08_an_interrupted_switch_resumes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared = prepare_rollover(settings, PASSPHRASE, now=NOW)
    record_install(settings, [{"identity": "CP-1", "outcome": "installed"}], actor="test")
    old_root = Pki.load(settings, PASSPHRASE).root.certificate

    # The process dies after the old root was archived and the new one put in place, before
    # the CAs under it were re-certified.
    def crash(*args: object, **kwargs: object) -> x509.Certificate:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(rollover, "_recertify", crash)
        with pytest.raises(KeyboardInterrupt):
            switch_root(settings, PASSPHRASE)
    assert rollover_status(settings).state == "switching"
    half_way = Pki.load(settings, PASSPHRASE)
    assert half_way.root.certificate == prepared.new_root
    assert half_way.check()  # the CAs are not issued by the root in place: not usable

    result = switch_root(settings, PASSPHRASE)
    assert result.resumed and result.retired_root == old_root
    assert Pki.load(settings, PASSPHRASE).check() == []
    assert [p.name for p in (settings.effective_ca_dir / "retired").iterdir()] == [
        result.archive.name
    ]
    assert rollover_status(settings).switched


def test_record_install_keeps_a_success_over_a_later_failure(settings: Settings) -> None:
    prepare_rollover(settings, PASSPHRASE, now=NOW)
    record_install(
        settings,
        [
            {"identity": "CP-1", "outcome": "installed", "certificate": "cross"},
            {"identity": "CP-2", "outcome": "offline"},
        ],
        actor="test",
    )
    log = record_install(
        settings,
        [{"identity": "CP-1", "outcome": "offline"}, {"identity": "CP-2", "outcome": "installed"}],
        actor="test",
    )
    assert log.installed == ["CP-1", "CP-2"]
    assert len(log.runs) == 2 and log.not_installed == {}
    assert (
        stat.S_IMODE((settings.effective_ca_dir / "rollover" / "install.json").stat().st_mode)
        == 0o600
    )


def test_new_root_cn_fits_and_differs_from_the_current_root() -> None:
    settings = load_settings(None, cpo_name="X" * 60)
    first = new_root_cn(settings, None, NOW)
    assert first == "X" * (64 - 16) + f" Root CA {NOW:%Y-%m}"
    # From the current root's name, whatever cpo_name says now; an earlier date is replaced.
    assert new_root_cn(settings, "Example CPO Root CA", NOW) == f"Example CPO Root CA {NOW:%Y-%m}"
    later = NOW + timedelta(days=400)
    assert new_root_cn(settings, first, later) == "X" * 48 + f" Root CA {later:%Y-%m}"
    # A second rollover within the month gets the day (and the time) as well.
    second = new_root_cn(settings, first, NOW)
    assert second.endswith(f" Root CA {NOW:%Y-%m-%d}") and len(second) == 64
    assert new_root_cn(settings, second, NOW) not in (first, second)
