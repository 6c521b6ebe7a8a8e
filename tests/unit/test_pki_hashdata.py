"""certificateHashData (whitepaper ed.3 §6.1, RFC 6960) against values computed by OpenSSL.

The fixtures in fixtures/hashdata/ were made once with the openssl CLI (the keys were thrown
away):

    openssl ecparam -name prime256v1 -genkey -noout -out ec-root.key
    openssl req -new -x509 -key ec-root.key -sha256 -days 36500 -set_serial 0x1001 \\
        -subj "/CN=Hashdata Test EC Root/O=ChargeWarden Tests" -out ec-root.pem
    openssl genrsa -out rsa-root.key 2048
    openssl req -new -x509 -key rsa-root.key -sha256 -days 36500 -set_serial 0x2002 \\
        -subj "/CN=Hashdata Test RSA Root/O=ChargeWarden Tests" -out rsa-root.pem
    openssl ecparam -name prime256v1 -genkey -noout -out leaf.key
    openssl req -new -key leaf.key -subj "/CN=CP-0001/O=ChargeWarden Tests" -out leaf.csr
    openssl x509 -req -in leaf.csr -CA ec-root.pem -CAkey ec-root.key -set_serial 0x00ab12 \\
        -days 36500 -sha256 -extfile leaf.ext -out ec-leaf.pem

with leaf.ext: basicConstraints=critical,CA:FALSE / subjectKeyIdentifier=hash /
authorityKeyIdentifier=keyid / extendedKeyUsage=clientAuth (one per line).

The leaf's serial 0xab12 has its top bit set, so its DER INTEGER carries a leading zero byte
(02 03 00 ab 12), which must not show in serialNumber.

Every expected value below was printed by OpenSSL's OCSP request builder (hash of the issuer's
DER name, hash of the issuer's subjectPublicKey BIT STRING contents, serial), e.g.

    openssl ocsp -sha384 -issuer ec-root.pem -cert ec-leaf.pem -req_text -no_nonce \\
        -reqout /dev/null

(the digest flag must come before -cert; -sha256 / -sha512 likewise; for the roots,
-issuer and -cert name the same file).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chargewarden.pki.hashdata import (
    CertificateHashData,
    HashAlgorithm,
    certificate_hash_data,
    normalize_serial,
)

FIXTURES = Path(__file__).parent / "fixtures" / "hashdata"

# openssl ocsp -sha256|-sha384|-sha512 -issuer ec-root.pem -cert ec-leaf.pem ...
EC_ROOT_NAME_HASH = {
    HashAlgorithm.SHA256: "8F6F462A371151078203496C131CC7B6A1BA6101000E8858F5EC42B783FFE0A7",
    HashAlgorithm.SHA384: "375177C68D36269D8B3AD59262EFC28F11AEF97BFAC425F7"
    "22122430BB731DF65B42C7C622AD3255AF798D2DD611798B",
    HashAlgorithm.SHA512: "F4395FCED5422573653128526D50557451CC262AA68EA4FD29A7D55F0009AF61"
    "AEFAC47B252BD5659CEC123B28DCE2602E5F59107B4FF5FA066BF63711C2DF26",
}
EC_ROOT_KEY_HASH = {
    HashAlgorithm.SHA256: "07E98C24EE88316DC6668C0554A9A29E1730A79E94CDF13958079982F0C509FE",
    HashAlgorithm.SHA384: "6AE7FED66E51180E9D794F23AF654B7A6F3281D376706E6B"
    "728129FD604EBA8312FC74F507CCD7176E39C9E05B139A82",
    HashAlgorithm.SHA512: "F0F562801859361208D8AFD141E59C6DEF6228BC382E9155F343741FE92C83BD"
    "EBF4052F2957640716F12D4B6EA5453E9CB64047F4ACAD30F3F934188E1288CD",
}
# openssl ocsp -sha256|-sha384|-sha512 -issuer rsa-root.pem -cert rsa-root.pem ...
RSA_ROOT_NAME_HASH = {
    HashAlgorithm.SHA256: "B4FB4B531361F83F98E650A9B2B4292167367912E9357B6E18B3D20C01EEEF94",
    HashAlgorithm.SHA384: "9C98780FEEE8466E52727116AF4645B2BF52B704BE8545AB"
    "B10EBB55B0148EDE531B8DB6987EA517A8845774CF8AB686",
    HashAlgorithm.SHA512: "14DCEF4F55210B44C23B0F856A634E3831290615D1A58461945F36B57FFAC9CE"
    "F4C38666D2965B3C714BF5C9B5300D74EF35A1B223CD4A0A13EB3DF64852A8A2",
}
RSA_ROOT_KEY_HASH = {
    HashAlgorithm.SHA256: "C20C491310EE2BE2C01D1BD90EC58872E5E2E6E427670C7567A65A3567DEC7AC",
    HashAlgorithm.SHA384: "D19055D1C85A7DD9DAEE824BEBCFF359E1EAA7D9F2CE0B16"
    "A31150715BEA28276655143D2FDF0FB82D8115159A52CC0C",
    HashAlgorithm.SHA512: "457532EB0B6C2F90AE27E8AE99D1A8A87A2B24F78F2045B6191DEE20972E99F7"
    "ABCAE10A05F07E7D230AA45E2287AB2004BEE08CD6E978B4761448CAB04A4182",
}
ALGORITHMS = list(HashAlgorithm)
DIGEST_HEX_CHARS = {HashAlgorithm.SHA256: 64, HashAlgorithm.SHA384: 96, HashAlgorithm.SHA512: 128}


def load(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((FIXTURES / name).read_bytes())


@pytest.fixture(scope="module")
def ec_root() -> x509.Certificate:
    return load("ec-root.pem")


@pytest.fixture(scope="module")
def rsa_root() -> x509.Certificate:
    return load("rsa-root.pem")


@pytest.fixture(scope="module")
def ec_leaf() -> x509.Certificate:
    return load("ec-leaf.pem")


def test_the_expected_values_are_whole_digests() -> None:
    for table in (EC_ROOT_NAME_HASH, EC_ROOT_KEY_HASH, RSA_ROOT_NAME_HASH, RSA_ROOT_KEY_HASH):
        for algorithm, value in table.items():
            assert len(value) == DIGEST_HEX_CHARS[algorithm]


def test_the_leaf_serial_has_a_leading_zero_byte_in_der(ec_leaf: x509.Certificate) -> None:
    assert ec_leaf.serial_number == 0xAB12
    assert bytes.fromhex("020300ab12") in ec_leaf.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_hash_data_of_a_leaf_issued_by_an_ec_root(
    algorithm: HashAlgorithm, ec_leaf: x509.Certificate, ec_root: x509.Certificate
) -> None:
    data = certificate_hash_data(ec_leaf, algorithm, issuer=ec_root)
    assert data == CertificateHashData(
        hash_algorithm=algorithm,
        issuer_name_hash=EC_ROOT_NAME_HASH[algorithm].lower(),
        issuer_key_hash=EC_ROOT_KEY_HASH[algorithm].lower(),
        serial_number="ab12",  # OpenSSL prints AB12: no leading zeros, lower case here
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_hash_data_of_a_self_signed_ec_root(
    algorithm: HashAlgorithm, ec_root: x509.Certificate
) -> None:
    data = certificate_hash_data(ec_root, algorithm)
    assert data.issuer_name_hash == EC_ROOT_NAME_HASH[algorithm].lower()
    assert data.issuer_key_hash == EC_ROOT_KEY_HASH[algorithm].lower()
    assert data.serial_number == "1001"
    assert certificate_hash_data(ec_root, algorithm, issuer=ec_root) == data


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_hash_data_of_a_self_signed_rsa_root(
    algorithm: HashAlgorithm, rsa_root: x509.Certificate
) -> None:
    # For RSA the key hash covers the DER RSAPublicKey inside the BIT STRING, not the SPKI.
    data = certificate_hash_data(rsa_root, algorithm)
    assert data.issuer_name_hash == RSA_ROOT_NAME_HASH[algorithm].lower()
    assert data.issuer_key_hash == RSA_ROOT_KEY_HASH[algorithm].lower()
    assert data.serial_number == "2002"


def test_sha256_is_the_default(ec_leaf: x509.Certificate, ec_root: x509.Certificate) -> None:
    data = certificate_hash_data(ec_leaf, issuer=ec_root)
    assert data.hash_algorithm is HashAlgorithm.SHA256
    assert data.issuer_key_hash == EC_ROOT_KEY_HASH[HashAlgorithm.SHA256].lower()


def test_the_issuer_is_required_for_a_certificate_not_self_issued(
    ec_leaf: x509.Certificate,
) -> None:
    with pytest.raises(ValueError, match="issuer certificate is needed"):
        certificate_hash_data(ec_leaf, HashAlgorithm.SHA256)


def test_a_wrong_issuer_is_refused(ec_leaf: x509.Certificate, rsa_root: x509.Certificate) -> None:
    with pytest.raises(ValueError, match="did not issue this certificate"):
        certificate_hash_data(ec_leaf, HashAlgorithm.SHA256, issuer=rsa_root)


def test_same_certificate_ignores_case_and_leading_zeros(
    ec_leaf: x509.Certificate, ec_root: x509.Certificate
) -> None:
    ours = certificate_hash_data(ec_leaf, HashAlgorithm.SHA256, issuer=ec_root)
    # How a station may report the same certificate: upper case, serial with leading zeros.
    theirs = CertificateHashData(
        HashAlgorithm.SHA256,
        EC_ROOT_NAME_HASH[HashAlgorithm.SHA256],
        EC_ROOT_KEY_HASH[HashAlgorithm.SHA256],
        "00AB12",
    )
    assert ours.same_certificate(theirs) and theirs.same_certificate(ours)
    assert ours.same_certificate(
        CertificateHashData(
            HashAlgorithm.SHA256, ours.issuer_name_hash, ours.issuer_key_hash, "0x00ab12"
        )
    )
    other_serial = CertificateHashData(
        HashAlgorithm.SHA256, ours.issuer_name_hash, ours.issuer_key_hash, "ab13"
    )
    assert not ours.same_certificate(other_serial)
    other_key = CertificateHashData(
        HashAlgorithm.SHA256, ours.issuer_name_hash, "00" * 32, ours.serial_number
    )
    assert not ours.same_certificate(other_key)
    # Only meaningful for the same algorithm: a SHA-384 description never matches.
    sha384 = certificate_hash_data(ec_leaf, HashAlgorithm.SHA384, issuer=ec_root)
    assert not ours.same_certificate(sha384)


def test_normalize_serial() -> None:
    assert normalize_serial("00AB12") == "ab12"
    assert normalize_serial(" 0x00ab12 ") == "ab12"
    assert normalize_serial("0000") == "0"


def test_ocpp_round_trip(ec_leaf: x509.Certificate, ec_root: x509.Certificate) -> None:
    data = certificate_hash_data(ec_leaf, HashAlgorithm.SHA512, issuer=ec_root)
    ocpp = data.to_ocpp()
    assert ocpp == {
        "hashAlgorithm": "SHA512",
        "issuerNameHash": EC_ROOT_NAME_HASH[HashAlgorithm.SHA512].lower(),
        "issuerKeyHash": EC_ROOT_KEY_HASH[HashAlgorithm.SHA512].lower(),
        "serialNumber": "ab12",
    }
    assert CertificateHashData.from_ocpp(ocpp) == data


def test_from_ocpp_normalises_what_a_station_sends() -> None:
    data = CertificateHashData.from_ocpp(
        {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": EC_ROOT_NAME_HASH[HashAlgorithm.SHA256],
            "issuerKeyHash": EC_ROOT_KEY_HASH[HashAlgorithm.SHA256],
            "serialNumber": "00AB12",
        }
    )
    assert data.issuer_name_hash == EC_ROOT_NAME_HASH[HashAlgorithm.SHA256].lower()
    assert data.issuer_key_hash == EC_ROOT_KEY_HASH[HashAlgorithm.SHA256].lower()
    assert data.serial_number == "ab12"


def test_from_ocpp_refuses_an_unknown_algorithm() -> None:
    with pytest.raises(ValueError):
        CertificateHashData.from_ocpp(
            {"hashAlgorithm": "MD5", "issuerNameHash": "", "issuerKeyHash": "", "serialNumber": "1"}
        )
