"""Who signs stations' certificates: an interface, and the built-in CA as one implementation.

The CSMS checks a station's CSR with ``csr_policy.check_station_csr`` first, answers
Accepted, then hands a ``SigningRequest`` to a ``CertificateSigner`` and sends what comes back
in CertificateSigned; recording the certificate in the store is the caller's job (the signer
never touches the store), so every implementation gets it for free.

``BuiltInSigner`` signs with our CAs: ``cpo-station-ca`` for ``ChargingStationCertificate``,
``cpo-v2g-ca`` for ``V2GCertificate``. An external CA replaces it by implementing
``CertificateSigner``; in production that is how V2G certificates are obtained, from the V2G
PKI (e.g. Hubject), whose roots the EVs trust, rather than from the built-in V2G CA.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.csr_policy import StationCertificateType
from chargewarden.pki.hierarchy import Pki, pem_of
from chargewarden.pki.issue import issue_station_certificate

# ocpp/v16/schemas/CertificateSigned.json and ocpp/v201/schemas/CertificateSignedRequest.json:
# "certificateChain": {"type": "string", "maxLength": 10000} (CRT-02).
MAX_CHAIN_PEM_CHARS = 10000


@dataclass(frozen=True, slots=True)
class SigningRequest:
    station_identity: str
    certificate_type: StationCertificateType
    csr: x509.CertificateSigningRequest  # already accepted by check_station_csr


@dataclass(frozen=True, slots=True)
class SignedCertificate:
    certificate: x509.Certificate  # the leaf
    # PEM: the leaf first, then the issuing CA(s) up to the root, which is not included.
    chain_pem: str
    # The hierarchy name of the issuing CA ("cpo-station-ca", "cpo-v2g-ca"); what the caller
    # records as CertificateRecord.issuer_ca.
    issuer_ca: str


class SignerError(Exception):
    """The signer is unavailable or failed; the message is worded for the operator."""


class CertificateSigner(Protocol):
    async def sign(self, request: SigningRequest) -> SignedCertificate: ...


class BuiltInSigner:
    """Signs with the built-in CA (see the module docstring).

    Station certificates: EKU clientAuth. V2G certificates: EKU clientAuth and serverAuth (a
    station is the TLS server to the EV over ISO 15118, and the same certificate may serve as
    a client). Both: subject CN and O from the CSR (which the policy has checked), the CSR's
    public key, a random serial, ``settings.station_cert_lifetime_days`` (never beyond the
    issuing CA), backdated a few minutes for station clock skew, SKI/AKI and the issuing CA's
    CRL distribution point; see ``issue.issue_station_certificate``.
    """

    def __init__(
        self,
        pki: Pki,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pki = pki
        self._settings = settings
        self._clock = clock

    def __repr__(self) -> str:
        return f"BuiltInSigner({self._pki!r})"

    async def sign(self, request: SigningRequest) -> SignedCertificate:
        # Signing is CPU work (an RSA or ECDSA signature): keep it off the event loop.
        return await asyncio.to_thread(self._sign, request, self._clock())

    def _sign(self, request: SigningRequest, now: datetime) -> SignedCertificate:
        v2g = request.certificate_type is StationCertificateType.V2G
        csr = request.csr
        what = f"the {request.certificate_type.value} of {request.station_identity!r}"
        try:
            issuer = self._pki.v2g_ca if v2g else self._pki.station_ca
            if not csr.is_signature_valid:
                raise SignerError(f"cannot sign {what}: the CSR's signature does not verify")
            public_key = csr.public_key()
            if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
                raise SignerError(f"cannot sign {what}: only RSA and EC keys can be certified")
            certificate = issue_station_certificate(
                self._pki,
                public_key,
                serial_number_cn=_only(csr.subject, NameOID.COMMON_NAME, "CN", what),
                cpo_name=_only(csr.subject, NameOID.ORGANIZATION_NAME, "O", what),
                lifetime_days=self._settings.station_cert_lifetime_days,
                now=now,
                v2g=v2g,
            )
        except PkiError as exc:
            raise SignerError(f"cannot sign {what}: {exc}") from None
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # from cryptography
            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise SignerError(f"cannot sign {what}: {detail}") from None
        chain_pem = pem_of(certificate, issuer.certificate).decode("ascii")
        if len(chain_pem) > MAX_CHAIN_PEM_CHARS:
            raise SignerError(
                f"the certificate chain for {what} is {len(chain_pem)} characters long; "
                f"CertificateSigned allows at most {MAX_CHAIN_PEM_CHARS}"
            )
        return SignedCertificate(certificate, chain_pem, issuer.name)


def _only(subject: x509.Name, oid: x509.ObjectIdentifier, label: str, what: str) -> str:
    values = subject.get_attributes_for_oid(oid)
    if len(values) != 1 or not isinstance(values[0].value, str):
        raise SignerError(
            f"cannot sign {what}: the CSR's subject needs exactly one {label} "
            "(check it with the CSR policy first)"
        )
    return values[0].value
