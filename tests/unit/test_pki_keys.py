"""Key material: the CA passphrase's sources, encrypted PKCS#8 key files with mode 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chargewarden.config import Settings, load_settings
from chargewarden.pki import PkiError
from chargewarden.pki.keys import (
    WrongPassphrase,
    check_key_strength,
    generate_ec,
    generate_rsa,
    read_private_key,
    write_private_key,
)
from chargewarden.pki.passphrase import PASSPHRASE_ENV, load_passphrase, passphrase_source

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(autouse=True)
def no_passphrase_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(None, data_dir=tmp_path)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- passphrase ------------------------------------------------------------------------------


def test_embedded_default_generates_a_passphrase_file_once_with_mode_0600(
    settings: Settings,
) -> None:
    first = load_passphrase(settings)
    path = settings.effective_ca_dir / "passphrase"
    assert mode(path) == 0o600
    assert len(first) >= 43  # 32 random bytes, base64
    assert load_passphrase(settings) == first
    assert "generated once" in passphrase_source(settings)


def test_generated_passphrase_file_is_private_even_with_a_permissive_umask(
    settings: Settings,
) -> None:
    old = os.umask(0)
    try:
        load_passphrase(settings)
    finally:
        os.umask(old)
    assert mode(settings.effective_ca_dir / "passphrase") == 0o600
    assert mode(settings.effective_ca_dir) == 0o700


def test_environment_wins_over_files(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "from-the-environment")
    assert load_passphrase(settings) == b"from-the-environment"
    assert PASSPHRASE_ENV in passphrase_source(settings)
    assert not (settings.effective_ca_dir / "passphrase").exists()


def test_configured_passphrase_file_drops_the_final_newline(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"a passphrase from a file\n")
    settings = load_settings(None, data_dir=tmp_path, ca_passphrase_file=secret)
    assert load_passphrase(settings) == b"a passphrase from a file"


def test_missing_configured_passphrase_file_is_an_error(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, ca_passphrase_file=tmp_path / "nope")
    with pytest.raises(PkiError, match="does not exist"):
        load_passphrase(settings)


def test_short_passphrase_is_refused(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "short")
    with pytest.raises(PkiError, match="shorter than"):
        load_passphrase(settings)


def test_lost_generated_passphrase_is_not_silently_replaced(settings: Settings) -> None:
    load_passphrase(settings)
    write_private_key(settings.effective_ca_dir / "cpo-root" / "key.pem",
                      generate_ec(ec.SECP256R1()), PASSPHRASE)
    (settings.effective_ca_dir / "passphrase").unlink()
    with pytest.raises(PkiError, match="passphrase file .* is\\s+missing"):
        load_passphrase(settings)


# --- key files ---------------------------------------------------------------------------------


def test_key_file_is_encrypted_pkcs8_with_mode_0600(tmp_path: Path) -> None:
    key = generate_ec(ec.SECP384R1())
    path = tmp_path / "keys" / "key.pem"
    old = os.umask(0)
    try:
        write_private_key(path, key, PASSPHRASE)
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert read_private_key(path, PASSPHRASE).private_numbers() == key.private_numbers()  # type: ignore[union-attr]


def test_wrong_passphrase_is_a_clear_pki_error(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    write_private_key(path, generate_ec(ec.SECP256R1()), PASSPHRASE)
    with pytest.raises(WrongPassphrase, match="wrong passphrase") as caught:
        read_private_key(path, b"not the passphrase")
    assert isinstance(caught.value, PkiError)
    assert PASSPHRASE.decode() not in str(caught.value)


def test_unencrypted_key_where_an_encrypted_one_belongs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    write_private_key(path, generate_ec(ec.SECP256R1()), None)
    assert mode(path) == 0o600
    with pytest.raises(PkiError, match="not encrypted"):
        read_private_key(path, PASSPHRASE)


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="empty passphrase"):
        write_private_key(tmp_path / "key.pem", generate_ec(ec.SECP256R1()), b"")


def test_replacing_a_key_file_keeps_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    write_private_key(path, generate_ec(ec.SECP256R1()), PASSPHRASE)
    write_private_key(path, generate_ec(ec.SECP256R1()), PASSPHRASE)
    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]  # no temporary file left over


@pytest.mark.parametrize(
    ("key", "weak"),
    [
        pytest.param(lambda: ec.generate_private_key(ec.SECP192R1()), True, id="ec-192"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP224R1()), False, id="ec-224"),
        pytest.param(lambda: generate_rsa(1024), True, id="rsa-1024"),
    ],
)
def test_key_strength_rule(key: object, weak: bool) -> None:
    generated = key()  # type: ignore[operator]
    if weak:
        with pytest.raises(PkiError, match="weak key"):
            check_key_strength(generated)
    else:
        check_key_strength(generated)
