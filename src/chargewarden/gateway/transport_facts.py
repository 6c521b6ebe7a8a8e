"""The transport facts admission decides on: scheme, peer, and the client certificate.

A direct TLS connection gives the certificate OpenSSL verified. Behind a TLS-terminating proxy
(SEC-12) the certificate and scheme arrive in headers, believed only from configured proxy
addresses, and the chain is verified again here: the proxy is trusted to forward, not to judge.
Either way the store (and, for imported CAs, their CRLs) says whether it is revoked and whom it
was issued to.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    VerificationError,
)
from cryptography.x509.verification import Store as TrustStore
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import MultipleValuesError
from websockets.exceptions import InvalidHeader
from websockets.headers import parse_subprotocol
from websockets.http11 import Request

from chargewarden.config import ProxySettings
from chargewarden.gateway.admission import ClientCertificate, Transport
from chargewarden.pki.certinfo import certificate_facts
from chargewarden.pki.material import TlsMaterial
from chargewarden.security.events import CsmsEvent
from chargewarden.store import Store

log = logging.getLogger(__name__)

MAX_FORWARDED_CERTIFICATE_CHARS = 16_384


def offered_subprotocols(request: Request) -> tuple[str, ...]:
    offered: list[str] = []
    for value in request.headers.get_all("Sec-WebSocket-Protocol"):
        try:
            offered.extend(parse_subprotocol(value))
        except InvalidHeader:
            continue
    return tuple(offered)


def authorization_header(request: Request) -> tuple[bytes | None, bool]:
    """(raw header bytes, present) — several Authorization headers count as malformed."""
    try:
        value = request.headers.get("Authorization")
    except MultipleValuesError:
        return None, True
    if value is None:
        return None, False
    # websockets decoded the header as ISO-8859-1-compatible text; undo that to get the bytes.
    return value.encode("latin-1", errors="surrogateescape"), True


_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def decode_forwarded_certificates(value: str) -> list[x509.Certificate]:
    """Leaf first. Accepts URL-encoded PEM (nginx $ssl_client_escaped_cert, Envoy, Traefik),
    PEM whose newlines a proxy turned into spaces, and bare base64 DER (HAProxy)."""
    text = unquote(value)
    blocks = _PEM_BLOCK.findall(text) or [text]
    try:
        ders = [base64.b64decode("".join(block.split()), validate=True) for block in blocks]
        certificates = [x509.load_der_x509_certificate(der) for der in ders]
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a certificate") from exc
    if not certificates:
        raise ValueError("no certificate")
    return certificates


# Web PKI rules, except that OCPP station certificates name the station in the subject CN and
# need no subjectAltName (OCPP security whitepaper ed.3 §3).
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()
_STATION_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)


class TransportRefused(Exception):
    """The connection cannot be admitted whatever the station: a bad forwarded certificate."""

    def __init__(self, event: CsmsEvent, reason: str) -> None:
        super().__init__(reason)
        self.event = event
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Inspection:
    transport: Transport
    # Security events to record about the attempt itself, e.g. headers from an untrusted peer.
    notes: tuple[tuple[CsmsEvent, str], ...] = ()


class TransportInspector:
    def __init__(self, store: Store, proxy: ProxySettings) -> None:
        self._store = store
        self._proxy = proxy
        self._proxies = [ipaddress.ip_network(item, strict=False) for item in proxy.trusted]
        self._material: TlsMaterial | None = None
        self._trust: list[x509.Certificate] = []

    def use_material(self, material: TlsMaterial | None) -> None:
        self._material = material
        self._trust = (
            x509.load_pem_x509_certificates(material.station_trust_pem) if material else []
        )

    def _is_trusted_proxy(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._proxies)

    async def inspect(
        self, connection: ServerConnection, request: Request, scheme: str, peer: str
    ) -> Inspection:
        forwarded_cert = request.headers.get(self._proxy.client_cert_header)
        forwarded_scheme = request.headers.get(self._proxy.scheme_header)
        if scheme == "ws" and self._is_trusted_proxy(peer):
            return await self._behind_proxy(peer, forwarded_cert, forwarded_scheme)
        notes: tuple[tuple[CsmsEvent, str], ...] = ()
        if forwarded_cert is not None or forwarded_scheme is not None:
            notes = (
                (
                    CsmsEvent.UNTRUSTED_PROXY_HEADERS,
                    f"{self._proxy.client_cert_header}/{self._proxy.scheme_header} headers from "
                    "a peer that is not a trusted proxy were ignored",
                ),
            )
        certificate = None
        if scheme == "wss":
            ssl_object = connection.transport.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            if der:
                certificate = await self._with_status(x509.load_der_x509_certificate(der))
        return Inspection(Transport("wss" if scheme == "wss" else "ws", peer, certificate), notes)

    async def _behind_proxy(
        self, peer: str, forwarded_cert: str | None, forwarded_scheme: str | None
    ) -> Inspection:
        tls = (forwarded_scheme or "").strip().lower() in ("https", "wss")
        if not tls:
            return Inspection(Transport("ws", peer))
        if not forwarded_cert:
            return Inspection(Transport("wss", peer))
        leaf, chain = self._parse_forwarded(forwarded_cert)
        self._verify_chain(leaf, chain)
        return Inspection(Transport("wss", peer, await self._with_status(leaf)))

    def _parse_forwarded(self, value: str) -> tuple[x509.Certificate, list[x509.Certificate]]:
        if len(value) > MAX_FORWARDED_CERTIFICATE_CHARS:
            raise TransportRefused(
                CsmsEvent.INVALID_CLIENT_CERTIFICATE, "forwarded client certificate is too large"
            )
        try:
            certificates = decode_forwarded_certificates(value)
        except ValueError:
            raise TransportRefused(
                CsmsEvent.INVALID_CLIENT_CERTIFICATE,
                "forwarded client certificate header is not a certificate",
            ) from None
        return certificates[0], certificates[1:]

    def _verify_chain(self, leaf: x509.Certificate, chain: list[x509.Certificate]) -> None:
        if not self._trust:
            raise TransportRefused(
                CsmsEvent.INVALID_CLIENT_CERTIFICATE,
                "forwarded client certificate cannot be verified: no station trust store",
            )
        verifier = (
            PolicyBuilder()
            .store(TrustStore(self._trust))
            .time(datetime.now(UTC))
            .extension_policies(ca_policy=_CA_POLICY, ee_policy=_STATION_POLICY)
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, chain)
        except VerificationError as exc:
            raise TransportRefused(
                CsmsEvent.INVALID_CLIENT_CERTIFICATE,
                f"forwarded client certificate refused: {str(exc)[:160]}",
            ) from None

    async def _with_status(self, certificate: x509.Certificate) -> ClientCertificate:
        facts = certificate_facts(certificate)
        record = await self._store.certificates.find_by_fingerprint(facts.fingerprint_sha256)
        if record is not None:
            return ClientCertificate(
                facts,
                issued_to=record.station_identity,
                revoked=record.revoked_at is not None,
                revocation_reason=record.revocation_reason,
            )
        return ClientCertificate(facts, *self._crl_status(certificate))

    def _crl_status(self, certificate: x509.Certificate) -> tuple[None, bool, str | None]:
        """Certificates of imported CAs are not in our store: their CRLs speak for them."""
        for crl in self._material.crls if self._material else ():
            if crl.issuer != certificate.issuer:
                continue
            entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if entry is not None:
                return None, True, "listed in the issuer's CRL"
        return None, False, None
