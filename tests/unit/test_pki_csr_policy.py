"""The CSR policy (CRT-02): each rule refuses with its own reason, hostile input never raises."""

from __future__ import annotations

import base64
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from chargewarden.pki.csr_policy import (
    MAX_CSR_PEM_CHARS,
    CsrAccepted,
    CsrRejected,
    StationCertificateType,
    check_station_csr,
)

CN = "CP-0001"
O = "ACME Charging"  # noqa: E741 - the X.509 attribute's name
V2G = StationCertificateType.V2G

# An EC P-256 key given with explicit curve parameters instead of the named-curve OID, made with
#   openssl ecparam -name prime256v1 -genkey -param_enc explicit -out key.pem
#   openssl req -new -key key.pem -subj "/CN=CP-1/O=ACME Charging" -sha256
EXPLICIT_CURVE_CSR = """-----BEGIN CERTIFICATE REQUEST-----
MIIB1jCCAX0CAQAwJzENMAsGA1UEAwwEQ1AtMTEWMBQGA1UECgwNQUNNRSBDaGFy
Z2luZzCCAUswggEDBgcqhkjOPQIBMIH3AgEBMCwGByqGSM49AQECIQD/////AAAA
AQAAAAAAAAAAAAAAAP///////////////zBbBCD/////AAAAAQAAAAAAAAAAAAAA
AP///////////////AQgWsY12Ko6k+ez671VdpiGvGUdBrDMU7D2O848PifSYEsD
FQDEnTYIhucEk2pmeOETnSa3gZ9+kARBBGsX0fLhLEJH+Lzm5WOkQPJ3A32BLesz
oPShOUXYmMKWT+NC4v4af5uO5+tKfA+eFivOM1drMV7Oy7ZAaDe/UfUCIQD/////
AAAAAP//////////vOb6racXnoTzucrC/GMlUQIBAQNCAARQWDQgOpXWiXpm5pBO
+phbQtTUPMO+5peTfCmQ9H6Tlr3RqPOiVYuBd2EO0qm5sbsY6umBPphjM0ryZA7T
XNmooAAwCgYIKoZIzj0EAwIDRwAwRAIgVZMSIt18dDdf3rbEj23UfiRec7lfNDiv
zehE3XANuOkCIGn2mVNJ1SfcGaLZWim9I9ATv4D/AC8zVxoTGU4Hq54h
-----END CERTIFICATE REQUEST-----
"""


@cache
def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def ec_key(curve: type[ec.EllipticCurve] = ec.SECP256R1) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve())


def make_csr(
    key: object,
    *,
    names: list[tuple[x509.ObjectIdentifier, str]] | None = None,
    extensions: list[x509.ExtensionType] = (),  # type: ignore[assignment]
    algorithm: hashes.HashAlgorithm | None = None,
) -> x509.CertificateSigningRequest:
    attributes = [
        x509.NameAttribute(oid, value, _validate=False)
        for oid, value in (names or [(NameOID.COMMON_NAME, CN), (NameOID.ORGANIZATION_NAME, O)])
    ]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    for extension in extensions:
        builder = builder.add_extension(extension, critical=True)
    no_hash = isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
    return builder.sign(key, None if no_hash else algorithm or hashes.SHA256())  # type: ignore[arg-type]


def pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def der_to_pem(der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{lines}\n-----END CERTIFICATE REQUEST-----\n"


def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def check(text: str, **kwargs: object) -> CsrAccepted | CsrRejected:
    return check_station_csr(text, expected_cn=CN, expected_o=O, **kwargs)  # type: ignore[arg-type]


def rejected(text: str, *fragments: str, **kwargs: object) -> str:
    result = check(text, **kwargs)
    assert isinstance(result, CsrRejected), result
    for fragment in fragments:
        assert fragment in result.reason, result.reason
    assert "\n" not in result.reason and len(result.reason) < 300
    return result.reason


# --- accepted ------------------------------------------------------------------------------


def test_CRT_02_accepts_an_rsa_2048_csr() -> None:
    csr = make_csr(rsa_key(2048))
    result = check(pem(csr))
    assert isinstance(result, CsrAccepted)
    assert result.csr == csr


def test_CRT_02_accepts_an_ec_p256_csr() -> None:
    result = check(pem(make_csr(ec_key())))
    assert isinstance(result, CsrAccepted)
    assert result.csr.public_key() == ec_key().public_key()


def test_CRT_02_accepts_a_v2g_csr_on_p256() -> None:
    assert isinstance(check(pem(make_csr(ec_key())), certificate_type=V2G), CsrAccepted)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda p: p.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda p: "\n\n  " + p + "  \n\n", id="surrounding-whitespace"),
        pytest.param(lambda p: p.strip(), id="no-final-newline"),
        pytest.param(lambda p: p.replace("\n", "").replace("-----B", "-----B", 1), id="one-line"),
        pytest.param(lambda p: p.replace("\n", " "), id="spaces-for-newlines"),
        pytest.param(lambda p: p.replace("\n", "\\n"), id="escaped-newlines"),
        pytest.param(
            lambda p: p.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"),
            id="legacy-new-header",
        ),
        pytest.param(lambda p: _rewrap(p, 76), id="76-char-lines"),
    ],
)
def test_CRT_02_pem_variants_stations_send_parse(variant: object) -> None:
    text = variant(pem(make_csr(ec_key())))  # type: ignore[operator]
    assert isinstance(check(text), CsrAccepted), text


def _rewrap(text: str, width: int) -> str:
    lines = text.strip().splitlines()
    body = "".join(lines[1:-1])
    wrapped = [body[i : i + width] for i in range(0, len(body), width)]
    return "\n".join([lines[0], *wrapped, lines[-1]]) + "\n"


# --- refused, one rule each ----------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\t  "])
def test_CRT_02_rejects_an_empty_csr(text: str) -> None:
    rejected(text, "empty")


def test_CRT_02_rejects_a_csr_over_the_schema_size_limit() -> None:
    text = pem(make_csr(ec_key()))
    padded = text + " " * (MAX_CSR_PEM_CHARS + 1 - len(text))
    rejected(padded, f"{MAX_CSR_PEM_CHARS + 1} characters", f"at most {MAX_CSR_PEM_CHARS}")
    # Exactly at the limit is still read.
    assert isinstance(check(padded[:-1]), CsrAccepted)


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE-----\n",
    ],
)
def test_CRT_02_rejects_garbage(text: str) -> None:
    rejected(text, "CSR")


def test_CRT_02_rejects_two_pem_blocks_and_text_around_the_block() -> None:
    one = pem(make_csr(ec_key()))
    rejected(one + one, "exactly one PEM block")
    rejected("my csr:\n" + one, "exactly one PEM block")
    rejected(one + "thanks", "exactly one PEM block")


def test_CRT_02_rejects_mixed_begin_and_end_labels() -> None:
    text = pem(make_csr(ec_key())).replace("BEGIN CERTIFICATE", "BEGIN NEW CERTIFICATE")
    rejected(text, "do not match")


def test_CRT_02_rejects_a_pem_body_that_is_not_base64() -> None:
    lines = pem(make_csr(ec_key())).splitlines()
    lines[2] = lines[2][:10] + "*" + lines[2][11:]
    rejected("\n".join(lines), "not valid Base64")


def test_CRT_02_rejects_base64_that_is_not_a_csr() -> None:
    rejected(der_to_pem(b"\x30\x03\x02\x01\x00"), "not a readable PKCS#10")


def test_CRT_02_rejects_a_weak_rsa_1024_key() -> None:
    rejected(pem(make_csr(rsa_key(1024))), "RSA 1024 bits, too weak", "2048")


def test_CRT_02_rejects_an_ec_p192_key() -> None:
    try:
        key = ec.generate_private_key(ec.SECP192R1())
    except Exception:  # pragma: no cover - depends on the OpenSSL build
        pytest.skip("this cryptography/OpenSSL build does not support P-192")
    rejected(pem(make_csr(key)), "secp192r1 (192 bits), too weak", "224")


def test_CRT_02_rejects_explicit_curve_parameters() -> None:
    reason = check_station_csr(EXPLICIT_CURVE_CSR, expected_cn="CP-1", expected_o=O)
    assert isinstance(reason, CsrRejected)
    assert "explicit curve parameters" in reason.reason


@pytest.mark.parametrize(
    ("key", "name"),
    [
        pytest.param(lambda: dsa.generate_private_key(2048), "DSA", id="dsa"),
        pytest.param(ed25519.Ed25519PrivateKey.generate, "Ed25519", id="ed25519"),
        pytest.param(ed448.Ed448PrivateKey.generate, "Ed448", id="ed448"),
    ],
)
def test_CRT_02_rejects_keys_other_than_rsa_and_ec(key: object, name: str) -> None:
    rejected(pem(make_csr(key())), f"key is {name}", "not accepted")  # type: ignore[operator]


def test_CRT_02_rejects_a_v2g_csr_with_an_rsa_or_p384_key() -> None:
    rejected(pem(make_csr(rsa_key(2048))), "RSA key", "ISO 15118", certificate_type=V2G)
    rejected(pem(make_csr(ec_key(ec.SECP384R1))), "secp384r1", "ISO 15118", certificate_type=V2G)
    # The same P-384 CSR is fine for a charging station certificate.
    assert isinstance(check(pem(make_csr(ec_key(ec.SECP384R1)))), CsrAccepted)


def test_CRT_02_rejects_a_sha1_signed_csr() -> None:
    # cryptography no longer signs with SHA-1, so the CSR is put together by hand: the same
    # CertificationRequestInfo, a valid ECDSA/SHA-1 signature, ecdsa-with-SHA1 (1.2.840.10045.4.1).
    tbs = make_csr(ec_key()).tbs_certrequest_bytes
    signature = ec_key().sign(tbs, ec.ECDSA(hashes.SHA1()))  # noqa: S303 - that is the point
    algorithm = der(0x30, bytes.fromhex("06072a8648ce3d0401"))
    sha1_csr = der(0x30, tbs + algorithm + der(0x03, b"\x00" + signature))
    csr = x509.load_der_x509_csr(sha1_csr)
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA1)
    rejected(der_to_pem(sha1_csr), "signed with SHA-1", "SHA-256 or stronger")


def test_CRT_02_rejects_a_csr_whose_signature_does_not_verify() -> None:
    good = make_csr(ec_key()).public_bytes(serialization.Encoding.DER)
    tampered = good[:-1] + bytes([good[-1] ^ 0x01])  # last byte of the signature value
    rejected(der_to_pem(tampered), "signature does not verify")


def test_CRT_02_rejects_a_csr_signed_by_another_key_than_its_own() -> None:
    csr = make_csr(ec_key())
    other = ec.generate_private_key(ec.SECP256R1())
    signature = other.sign(csr.tbs_certrequest_bytes, ec.ECDSA(hashes.SHA256()))
    algorithm = der(0x30, bytes.fromhex("06082a8648ce3d040302"))  # ecdsa-with-SHA256
    forged = der(0x30, csr.tbs_certrequest_bytes + algorithm + der(0x03, b"\x00" + signature))
    rejected(der_to_pem(forged), "signature does not verify")


def test_CRT_02_rejects_a_wrong_common_name() -> None:
    csr = make_csr(
        ec_key(), names=[(NameOID.COMMON_NAME, "CP-9999"), (NameOID.ORGANIZATION_NAME, O)]
    )
    rejected(pem(csr), "common name (CN) 'CP-9999' is not the station's 'CP-0001'")


def test_CRT_02_the_common_name_is_compared_exactly() -> None:
    for near_miss in ("cp-0001", "CP-0001 ", " CP-0001"):
        csr = make_csr(
            ec_key(), names=[(NameOID.COMMON_NAME, near_miss), (NameOID.ORGANIZATION_NAME, O)]
        )
        rejected(pem(csr), "common name (CN)")


def test_CRT_02_rejects_two_common_names() -> None:
    csr = make_csr(
        ec_key(),
        names=[
            (NameOID.COMMON_NAME, CN),
            (NameOID.COMMON_NAME, CN),
            (NameOID.ORGANIZATION_NAME, O),
        ],
    )
    rejected(pem(csr), "2 common name (CN) attributes")


def test_CRT_02_rejects_a_missing_common_name() -> None:
    rejected(pem(make_csr(ec_key(), names=[(NameOID.ORGANIZATION_NAME, O)])), "no common name")


def test_CRT_02_rejects_a_wrong_organization() -> None:
    csr = make_csr(
        ec_key(), names=[(NameOID.COMMON_NAME, CN), (NameOID.ORGANIZATION_NAME, "Evil Corp")]
    )
    rejected(pem(csr), "organization (O) 'Evil Corp' is not the expected 'ACME Charging'")


def test_CRT_02_rejects_a_missing_organization() -> None:
    rejected(pem(make_csr(ec_key(), names=[(NameOID.COMMON_NAME, CN)])), "no organization (O)")


def test_CRT_02_rejects_two_organizations() -> None:
    csr = make_csr(
        ec_key(),
        names=[
            (NameOID.COMMON_NAME, CN),
            (NameOID.ORGANIZATION_NAME, O),
            (NameOID.ORGANIZATION_NAME, O),
        ],
    )
    rejected(pem(csr), "2 organization (O) attributes")


def _key_usage(*, cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.mark.parametrize(
    ("extension", "what"),
    [
        pytest.param(
            x509.BasicConstraints(ca=True, path_length=None),
            "BasicConstraints",
            id="basic-constraints",
        ),
        pytest.param(_key_usage(cert_sign=True), "keyCertSign", id="key-cert-sign"),
        pytest.param(_key_usage(crl_sign=True), "cRLSign", id="crl-sign"),
    ],
)
def test_CRT_02_rejects_a_csr_requesting_a_ca_certificate(
    extension: x509.ExtensionType, what: str
) -> None:
    rejected(pem(make_csr(ec_key(), extensions=[extension])), "requests a CA certificate", what)


def test_CRT_02_a_leaf_request_with_harmless_extensions_is_accepted() -> None:
    extensions = [x509.BasicConstraints(ca=False, path_length=None), _key_usage()]
    assert isinstance(check(pem(make_csr(ec_key(), extensions=extensions))), CsrAccepted)


# --- hostile input -------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Attribute's length must be")
def test_CRT_02_reasons_quote_at_most_64_characters_of_what_the_station_sent() -> None:
    hostile = "A" * 900 + "\x1b[2J\n"
    csr = make_csr(ec_key(), names=[(NameOID.COMMON_NAME, hostile), (NameOID.ORGANIZATION_NAME, O)])
    reason = rejected(pem(csr), "common name (CN)", "'" + "A" * 64 + "'...", "(905 characters)")
    assert "A" * 65 not in reason and "\x1b" not in reason


def test_CRT_02_hostile_bytes_never_raise() -> None:
    good = make_csr(ec_key()).public_bytes(serialization.Encoding.DER)
    for i in range(len(good)):
        for flip in (0x01, 0x80, 0xFF):
            mutated = good[:i] + bytes([good[i] ^ flip]) + good[i + 1 :]
            result = check(der_to_pem(mutated))
            assert isinstance(result, CsrAccepted | CsrRejected)
    for truncated in range(0, len(good), 5):
        assert isinstance(check(der_to_pem(good[:truncated])), CsrRejected)
    assert isinstance(check(None), CsrRejected)  # type: ignore[arg-type]
    assert isinstance(
        check("-----BEGIN CERTIFICATE REQUEST-----\nÄÖÜ€\n-----END CERTIFICATE REQUEST-----"),
        CsrRejected,
    )
