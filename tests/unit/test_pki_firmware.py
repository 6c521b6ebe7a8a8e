"""Firmware signatures (FW-02, A00.FR.706): what a manufacturer signs, the CSMS checks first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chargewarden.pki.firmware import (
    FirmwareRefused,
    check_chain,
    digest_file,
    sign_digest,
    verify_firmware,
)
from chargewarden.pki.issue import issue_ca, issue_leaf, name

NOW = datetime(2026, 6, 1, tzinfo=UTC)
YEAR = timedelta(days=365)


def root(cn: str = "Maker Root") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP384R1())
    cert = issue_ca(
        name(cn, "Maker"), key.public_key(), key, issuer_cert=None,
        not_before=NOW - YEAR, not_after=NOW + 10 * YEAR, path_length=1,
    )  # fmt: skip
    return cert, key


def signer(
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    *,
    not_after: datetime = NOW + YEAR,
    code_signing: bool = True,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    cert = issue_leaf(
        issuer[0], issuer[1], key.public_key(), cn="Firmware Signer", o="Maker",
        not_before=NOW - YEAR, not_after=not_after, client=True, code_signing=code_signing,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "fw.bin"
    path.write_bytes(b"\x7fELF" + bytes(range(256)) * 5000)
    return path


def signed(image: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return sign_digest(digest_file(image)[0], key)


@pytest.mark.parametrize("kind", ["ecdsa", "rsa-pss"])
def test_FW_02_signed_image_verifies_against_the_manufacturer_root(image: Path, kind: str) -> None:
    maker = root()
    key = rsa.generate_private_key(65537, 3072) if kind == "rsa-pss" else None
    cert, key = signer(maker, key)
    result = verify_firmware(image, signed(image, key), [cert], [maker[0]], NOW)
    assert result.algorithm == ("RSA-PSS-SHA256" if kind == "rsa-pss" else "ECDSA-SHA256")
    assert result.size == image.stat().st_size and len(result.sha256_hex) == 64


def test_TC_081_tampered_image_is_refused(image: Path) -> None:
    maker = root()
    cert, key = signer(maker)
    signature = signed(image, key)
    image.write_bytes(image.read_bytes()[:-1] + b"\x00")
    with pytest.raises(FirmwareRefused, match="does not verify"):
        verify_firmware(image, signature, [cert], [maker[0]], NOW)


def test_signature_of_another_key_or_garbage_is_refused(image: Path) -> None:
    maker = root()
    cert, _ = signer(maker)
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(FirmwareRefused, match="does not verify"):
        verify_firmware(image, signed(image, other), [cert], [maker[0]], NOW)
    with pytest.raises(FirmwareRefused, match="base64"):
        verify_firmware(image, "not base64!", [cert], [maker[0]], NOW)
    with pytest.raises(FirmwareRefused, match="800"):
        verify_firmware(image, "A" * 804, [cert], [maker[0]], NOW)


def test_A00_FR_706_foreign_expired_revoked_and_non_signing_certificates_refused() -> None:
    maker, foreign = root(), root("Someone Else")
    cert, _ = signer(foreign)
    with pytest.raises(FirmwareRefused, match="does not chain"):
        check_chain([cert], [maker[0]], NOW)
    expired, _ = signer(maker, not_after=NOW - timedelta(days=1))
    with pytest.raises(FirmwareRefused, match="expired"):
        check_chain([expired], [maker[0]], NOW)
    good, _ = signer(maker)
    with pytest.raises(FirmwareRefused, match="revoked"):
        check_chain([good], [maker[0]], NOW, revoked=lambda c: "keyCompromise")
    tls_client, _ = signer(maker, code_signing=False)
    with pytest.raises(FirmwareRefused, match="code signing"):
        check_chain([tls_client], [maker[0]], NOW)
    with pytest.raises(FirmwareRefused, match="CA certificate"):
        check_chain([maker[0]], [maker[0]], NOW)
    with pytest.raises(FirmwareRefused, match="no manufacturer root"):
        check_chain([good], [], NOW)


def test_signer_under_an_intermediate_chains_when_the_intermediate_is_given() -> None:
    maker = root()
    sub_key = ec.generate_private_key(ec.SECP384R1())
    sub = issue_ca(
        name("Maker Firmware CA", "Maker"), sub_key.public_key(), maker[1], issuer_cert=maker[0],
        not_before=NOW - YEAR, not_after=NOW + 5 * YEAR, path_length=0,
    )  # fmt: skip
    cert, _ = signer((sub, sub_key))
    assert check_chain([cert, sub], [maker[0]], NOW) == cert
    with pytest.raises(FirmwareRefused, match="does not chain"):
        check_chain([cert], [maker[0]], NOW)
