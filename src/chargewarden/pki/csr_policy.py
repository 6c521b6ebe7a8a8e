"""The CSR policy for station certificates: pure, no I/O (CRT-02: validate first, answer
Accepted only to a CSR that can be processed).

``check_station_csr`` takes the PEM text a station sent in SignCertificate (1.6) or
SignCertificateRequest (2.0.1) and returns ``CsrAccepted`` with the parsed request, or
``CsrRejected`` with one sentence for the operator. It never raises, whatever the input: a
station is not trusted to send well-formed data.

The rules, in the order they are checked (the first that fails is the reason):

1. The text is not empty and at most ``MAX_CSR_PEM_CHARS`` characters (the ``maxLength`` of
   ``csr`` in both versions' schemas).
2. It is exactly one PEM block labelled ``CERTIFICATE REQUEST``, with nothing but whitespace
   around it. The legacy label ``NEW CERTIFICATE REQUEST`` (Netscape, Windows ``certreq``,
   Java ``keytool``; OpenSSL reads it too) is accepted as a synonym. Inside the block any
   whitespace is ignored: CRLF line ends, lines of any length, no line breaks at all, spaces
   or tabs instead of newlines, and the literal two-character ``\\n``/``\\r`` sequences of a
   station that escaped its newlines twice (none of them can occur in Base64). PEM headers
   (``Proc-Type: ...``) are not accepted.
3. The Base64 decodes and the DER parses as a PKCS#10 request.
4. The key is RSA of at least 2048 bits or EC of at least 224 bits on a named curve
   (explicit curve parameters are refused); DSA, Ed25519, Ed448 and the rest are refused.
   A V2G certificate (ISO 15118) needs an EC key on secp256r1 (ISO 15118-2) or secp521r1
   (ISO 15118-20); EVs accept nothing else.
5. The signature hash is SHA-2 or SHA-3 (not MD5, not SHA-1, not none) and the signature
   verifies with the CSR's own key (proof that the station holds the private key).
6. The subject has exactly one CN, equal to ``expected_cn``, and exactly one O, equal to
   ``expected_o`` (both compared exactly: case and spaces matter).
7. It does not request a CA certificate: no BasicConstraints with ``ca=True``, no KeyUsage
   keyCertSign or cRLSign. (Other requested extensions are ignored: the certificate's
   extensions are the signer's choice, never copied from the CSR.)

Reasons quote at most ``QUOTE_CHARS`` characters of anything the station sent, in ``repr``
form, so a hostile CSR cannot flood a log line or smuggle control characters into it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from chargewarden.pki.keys import MIN_EC_BITS, MIN_RSA_BITS

# ocpp/v16/schemas/SignCertificate.json and ocpp/v201/schemas/SignCertificateRequest.json:
# "csr": {"type": "string", "maxLength": 5500}.
MAX_CSR_PEM_CHARS = 5500
QUOTE_CHARS = 64

_ACCEPTED_HASHES = frozenset(
    {"sha224", "sha256", "sha384", "sha512", "sha3-224", "sha3-256", "sha3-384", "sha3-512"}
)
_V2G_CURVES = {"secp256r1": "secp256r1 (P-256)", "secp521r1": "secp521r1 (P-521)"}
_BLOCK = re.compile(
    r"-----BEGIN (NEW )?CERTIFICATE REQUEST-----(?P<body>.*?)"
    r"-----END (NEW )?CERTIFICATE REQUEST-----",
    re.DOTALL,
)
_ANY_PEM_LINE = re.compile(r"-----(BEGIN|END) [^-]*-----")
_WHITESPACE = re.compile(r"\s+|\\[nr]")
_LEADING = re.compile(r"(?:\s|\\[nr])+")
_TRAILING_REVERSED = re.compile(r"(?:\s|[nr]\\)+")  # anchored at the start: linear time
_DER_SEQUENCE = 0x30


class StationCertificateType(StrEnum):
    """What a station asks to have signed (2.0.1 CertificateSigningUseEnumType)."""

    CHARGING_STATION = "ChargingStationCertificate"  # 1.6 SignCertificate maps here too
    V2G = "V2GCertificate"


@dataclass(frozen=True, slots=True)
class CsrAccepted:
    csr: x509.CertificateSigningRequest


@dataclass(frozen=True, slots=True)
class CsrRejected:
    reason: str  # one operator-readable sentence; never the whole PEM


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def quote(value: object) -> str:
    """``repr`` of at most ``QUOTE_CHARS`` characters of a value a station sent."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > QUOTE_CHARS:
        return f"{text[:QUOTE_CHARS]!r}... ({len(text)} characters)"
    return repr(text)


def check_station_csr(
    pem: str,
    *,
    expected_cn: str,
    expected_o: str,
    certificate_type: StationCertificateType = StationCertificateType.CHARGING_STATION,
) -> CsrAccepted | CsrRejected:
    """Apply the CSR policy (see the module docstring) to a station's PEM text."""
    try:
        csr = _parse(pem)
        _check_key(csr, certificate_type)
        _check_signature(csr)
        _check_subject(csr, expected_cn, expected_o)
        _check_not_ca(csr)
    except _Refused as refused:
        return CsrRejected(refused.reason)
    except Exception as exc:  # hostile input must never escape as an exception
        return CsrRejected(f"the CSR cannot be read ({type(exc).__name__})")
    return CsrAccepted(csr)


def _parse(pem: object) -> x509.CertificateSigningRequest:
    if not isinstance(pem, str) or not pem.strip():
        raise _Refused("the CSR is empty")
    if len(pem) > MAX_CSR_PEM_CHARS:
        raise _Refused(
            f"the CSR is {len(pem)} characters long; at most {MAX_CSR_PEM_CHARS} are allowed"
        )
    blocks = _ANY_PEM_LINE.findall(pem)
    match = _BLOCK.fullmatch(_trim(pem))
    if len(blocks) != 2 or match is None:
        raise _Refused(
            "the CSR is not exactly one PEM block '-----BEGIN CERTIFICATE REQUEST-----' ... "
            "'-----END CERTIFICATE REQUEST-----' with nothing else around it"
        )
    if bool(match.group(1)) != bool(match.group(3)):
        raise _Refused("the CSR's PEM BEGIN and END lines do not match")
    body = _WHITESPACE.sub("", match.group("body"))
    try:
        der = base64.b64decode(body.encode("ascii"), validate=True)
    except (ValueError, binascii.Error):
        raise _Refused("the CSR's PEM block is not valid Base64") from None
    try:
        return x509.load_der_x509_csr(der)
    except Exception:
        raise _Refused("the CSR is not a readable PKCS#10 certificate request") from None


def _trim(text: str) -> str:
    """``text`` without whitespace and literal ``\\n``/``\\r`` around it."""
    leading = _LEADING.match(text)
    text = text[leading.end() :] if leading else text
    trailing = _TRAILING_REVERSED.match(text[::-1])
    return text[: len(text) - trailing.end()] if trailing else text


def _check_key(csr: x509.CertificateSigningRequest, kind: StationCertificateType) -> None:
    try:
        key = csr.public_key()
    except Exception:
        raise _Refused("the CSR's public key cannot be read (unsupported algorithm)") from None
    wanted = f"RSA of at least {MIN_RSA_BITS} bits or EC of at least {MIN_EC_BITS} bits"
    if isinstance(key, rsa.RSAPublicKey):
        if kind is StationCertificateType.V2G:
            raise _Refused(
                "the CSR for a V2G certificate has an RSA key; ISO 15118 requires an EC key on "
                + " or ".join(_V2G_CURVES.values())
            )
        if key.key_size < MIN_RSA_BITS:
            raise _Refused(f"the CSR's key is RSA {key.key_size} bits, too weak; {wanted}")
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        if _has_explicit_curve(csr.tbs_certrequest_bytes):
            raise _Refused("the CSR's EC key has explicit curve parameters; use a named curve")
        if key.curve.key_size < MIN_EC_BITS:
            raise _Refused(
                f"the CSR's key is EC {key.curve.name} ({key.curve.key_size} bits), too weak; "
                f"{wanted}"
            )
        if kind is StationCertificateType.V2G and key.curve.name not in _V2G_CURVES:
            raise _Refused(
                f"the CSR for a V2G certificate has an EC {key.curve.name} key; ISO 15118 "
                "requires " + " or ".join(_V2G_CURVES.values())
            )
        return
    algorithm = type(key).__name__.removeprefix("_").replace("PublicKey", "")
    raise _Refused(f"the CSR's key is {algorithm}, which is not accepted; {wanted}")


def _check_signature(csr: x509.CertificateSigningRequest) -> None:
    try:
        algorithm = csr.signature_hash_algorithm
    except Exception:
        raise _Refused("the CSR is signed with an unsupported signature algorithm") from None
    if algorithm is None or algorithm.name not in _ACCEPTED_HASHES:
        used = "no separate hash" if algorithm is None else algorithm.name.upper()
        used = used.replace("SHA1", "SHA-1")
        raise _Refused(f"the CSR is signed with {used}; SHA-256 or stronger is required")
    if not csr.is_signature_valid:
        raise _Refused(
            "the CSR's signature does not verify with its public key (altered in transit, or "
            "not signed with the matching private key)"
        )


def _one(name: x509.Name, oid: x509.ObjectIdentifier, label: str) -> str:
    values = name.get_attributes_for_oid(oid)
    if not values:
        raise _Refused(f"the CSR's subject has no {label}")
    if len(values) > 1:
        raise _Refused(f"the CSR's subject has {len(values)} {label} attributes; exactly one")
    value = values[0].value
    if not isinstance(value, str):
        raise _Refused(f"the CSR's subject {label} is not text")
    return value


def _check_subject(csr: x509.CertificateSigningRequest, expected_cn: str, expected_o: str) -> None:
    subject = csr.subject
    cn = _one(subject, NameOID.COMMON_NAME, "common name (CN)")
    if cn != expected_cn:
        raise _Refused(
            f"the CSR's common name (CN) {quote(cn)} is not the station's {quote(expected_cn)}"
        )
    o = _one(subject, NameOID.ORGANIZATION_NAME, "organization (O)")
    if o != expected_o:
        raise _Refused(
            f"the CSR's organization (O) {quote(o)} is not the expected {quote(expected_o)}"
        )


def _check_not_ca(csr: x509.CertificateSigningRequest) -> None:
    extensions = csr.extensions  # a malformed or duplicated extension raises: unreadable CSR
    for extension in extensions:
        value = extension.value
        if isinstance(value, x509.BasicConstraints) and value.ca:
            raise _Refused("the CSR requests a CA certificate (BasicConstraints cA=true)")
        if isinstance(value, x509.KeyUsage) and (value.key_cert_sign or value.crl_sign):
            raise _Refused("the CSR requests a CA certificate (KeyUsage keyCertSign or cRLSign)")


# --- a minimal DER walk, only to see how the EC key's curve is given ----------------------------


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at ``offset``."""
    tag = data[offset]
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, start, end


def _has_explicit_curve(tbs: bytes) -> bool:
    """Whether the SubjectPublicKeyInfo of a CertificationRequestInfo gives its EC curve as
    explicit parameters instead of a named-curve OID.

    CertificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, attributes };
    SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier SEQUENCE { OID, parameters }, ...}.
    """
    _, info, _ = _tlv(tbs, 0)
    _, _, end = _tlv(tbs, info)  # version
    _, _, end = _tlv(tbs, end)  # subject
    _, spki, _ = _tlv(tbs, end)
    _, algorithm, _ = _tlv(tbs, spki)
    _, _, end = _tlv(tbs, algorithm)  # algorithm OID
    tag, _, _ = _tlv(tbs, end)
    # namedCurve is an OID; explicit ECParameters (RFC 3279) a SEQUENCE.
    return tag == _DER_SEQUENCE
