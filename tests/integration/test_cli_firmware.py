"""`chargewarden firmware sign | verify` (FW-02): a manufacturer's signature made and checked
on files, with one-line errors for every refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_certificates import assert_ok, assert_one_line_error, cli

KEY_ENV = "CHARGEWARDEN_FIRMWARE_KEY_PASSPHRASE"


@pytest.fixture
def ca(tmp_path: Path, pki_template: Path) -> Path:
    import shutil

    shutil.copytree(pki_template, tmp_path / "pki")
    return tmp_path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "firmware.bin"
    path.write_bytes(bytes(range(256)) * 4096)
    return path


def test_FW_02_sign_with_the_dev_signer_then_verify(ca: Path, image: Path, tmp_path: Path) -> None:
    signature = tmp_path / "firmware.sig"
    assert_ok(
        cli("firmware", "sign", str(image), "--dev-signer", "--out", str(signature), data_dir=ca)
    )
    signer = ca / "pki" / "firmware-signer" / "cert.pem"
    result = cli(
        "firmware", "verify", str(image), "--signature", str(signature), "--cert", str(signer),
        data_dir=ca,
    )  # fmt: skip
    assert_ok(result)
    assert result.stdout.startswith("ok: ") and "ECDSA-SHA256" in result.stdout


def test_FW_02_sign_with_an_encrypted_key_needs_its_passphrase(ca: Path, image: Path) -> None:
    key = ca / "pki" / "firmware-signer" / "key.pem"
    cert = ca / "pki" / "firmware-signer" / "cert.pem"
    args = ("firmware", "sign", str(image), "--key", str(key), "--cert", str(cert))
    assert_one_line_error(cli(*args, data_dir=ca), KEY_ENV)
    passphrase = (ca / "pki" / "passphrase").read_text().strip()
    signed = cli(*args, data_dir=ca, **{KEY_ENV: passphrase})
    assert_ok(signed)
    assert passphrase not in signed.stdout + signed.stderr
    other_cert = ca / "pki" / "cpo-root" / "cert.pem"
    mismatch = ("firmware", "sign", str(image), "--key", str(key), "--cert", str(other_cert))
    assert_one_line_error(cli(*mismatch, data_dir=ca, **{KEY_ENV: passphrase}), "does not belong")


def test_TC_081_tampered_image_and_wrong_certificates_refused(
    ca: Path, image: Path, tmp_path: Path
) -> None:
    signature = tmp_path / "firmware.sig"
    assert_ok(
        cli("firmware", "sign", str(image), "--dev-signer", "--out", str(signature), data_dir=ca)
    )
    signer = ca / "pki" / "firmware-signer" / "cert.pem"
    image.write_bytes(image.read_bytes() + b"\x00")

    def verify(cert: Path, *extra: str) -> object:
        return cli(
            "firmware", "verify", str(image), "--signature", str(signature), "--cert", str(cert),
            *extra, data_dir=ca,
        )  # fmt: skip

    assert_one_line_error(verify(signer), "refused", "does not verify")  # type: ignore[arg-type]
    root = ca / "pki" / "cpo-root" / "cert.pem"
    assert_one_line_error(verify(root), "refused", "CA certificate")  # type: ignore[arg-type]
    foreign = ("--root", str(root))
    assert_one_line_error(verify(signer, *foreign), "does not chain")  # type: ignore[arg-type]


def test_bad_invocations_are_one_line_errors(ca: Path, image: Path, tmp_path: Path) -> None:
    assert_one_line_error(cli("firmware", "sign", str(image), data_dir=ca), "--dev-signer")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    assert_one_line_error(
        cli("firmware", "verify", str(image), "--signature", str(not_pem), "--cert", str(not_pem),
            data_dir=ca),
        "no PEM certificate",
    )  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(
        cli("firmware", "sign", str(image), "--dev-signer", data_dir=empty), "ca init"
    )
