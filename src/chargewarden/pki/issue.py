"""Building certificates: CAs and leaves, with the extensions every certificate here carries.

Every certificate gets a random 159-bit positive serial, SubjectKeyIdentifier and (unless
self-signed) AuthorityKeyIdentifier, BasicConstraints and KeyUsage (critical), and leaves an
ExtendedKeyUsage and a CRL distribution point. not_before is backdated a few minutes because
stations' clocks drift, and a certificate that is "not yet valid" for them is refused.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.keys import PrivateKey, PublicKey, check_key_strength

if TYPE_CHECKING:
    from chargewarden.pki.hierarchy import Pki

CLOCK_SKEW_BACKDATE = timedelta(minutes=5)
SERIAL_BITS = 159
# X.509 upper bounds (RFC 5280 ub-common-name, ub-organization-name).
MAX_NAME_CHARS = 64


def random_serial() -> int:
    """A random serial of exactly 159 bits: positive, at most 20 octets in DER (RFC 5280 4.1.2.2),
    and with the top bit set so every serial has the same length."""
    return secrets.randbits(SERIAL_BITS) | (1 << (SERIAL_BITS - 1))


def signature_hash(issuer_key: PrivateKey) -> hashes.HashAlgorithm:
    """SHA-384 for P-384 (and larger) issuers, SHA-256 otherwise: the hash matches the key."""
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey) and issuer_key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def name(cn: str, o: str | None = None) -> x509.Name:
    for value, what in ((cn, "common name (CN)"), (o, "organization (O)")):
        if value is None:
            continue
        if not value.strip() or len(value) > MAX_NAME_CHARS or not value.isprintable():
            raise PkiError(
                f"certificate {what} {value!r} must be 1-{MAX_NAME_CHARS} printable characters"
            )
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if o is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    return x509.Name(attributes)


def _base(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: PublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    if not_after <= not_before:
        raise PkiError("a certificate's not_after must be later than its not_before")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _aki(
    builder: x509.CertificateBuilder, issuer_cert: x509.Certificate
) -> x509.CertificateBuilder:
    try:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_cert.public_key()  # type: ignore[arg-type]
        )
    return builder.add_extension(aki, critical=False)


def _crl_dp(builder: x509.CertificateBuilder, crl_url: str | None) -> x509.CertificateBuilder:
    if crl_url is None:
        return builder
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(crl_url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    return builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)


def _usage(
    *,
    signature: bool = False,
    encipherment: bool = False,
    agreement: bool = False,
    ca: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=False,
        key_encipherment=encipherment,
        data_encipherment=False,
        key_agreement=agreement,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def issue_ca(
    subject: x509.Name,
    public_key: PublicKey,
    signer_key: PrivateKey,
    *,
    issuer_cert: x509.Certificate | None,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None,
    crl_url: str | None = None,
) -> x509.Certificate:
    """A CA certificate; self-signed (a root) when ``issuer_cert`` is None."""
    issuer = issuer_cert.subject if issuer_cert is not None else subject
    builder = _base(subject, issuer, public_key, not_before, not_after)
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), True)
    builder = builder.add_extension(_usage(ca=True), critical=True)
    if issuer_cert is not None:
        builder = _crl_dp(_aki(builder, issuer_cert), crl_url)
    return builder.sign(signer_key, signature_hash(signer_key))


def _leaf_usage(public_key: PublicKey, *, server: bool, code_signing: bool) -> x509.KeyUsage:
    if code_signing:
        return _usage(signature=True)
    if isinstance(public_key, rsa.RSAPublicKey):
        # TLS_RSA_* key transport (SEC-08) encrypts the premaster secret to the RSA key.
        return _usage(signature=True, encipherment=True)
    # A station's EC key may serve ECDH key agreement (e.g. ISO 15118); a server's only signs.
    return _usage(signature=True, agreement=not server)


def _san(dns_names: Sequence[str], ip_addresses: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    entries += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    return x509.SubjectAlternativeName(entries)


def issue_leaf(
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    public_key: PublicKey,
    *,
    cn: str,
    o: str | None,
    not_before: datetime,
    not_after: datetime,
    client: bool = True,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    crl_url: str | None = None,
    code_signing: bool = False,
    v2g: bool = False,
) -> x509.Certificate:
    """An end-entity certificate signed by ``issuer_cert``/``issuer_key``.

    ``client=True``: EKU clientAuth (a station); ``client=False``: serverAuth (the CSMS), with
    the SANs given; ``code_signing=True``: EKU codeSigning (firmware); ``v2g=True`` (with
    ``client``): EKU clientAuth and serverAuth, for a station's ISO 15118 certificate, with
    which it is the TLS server to the EV. The validity is taken as given, so tests and demos
    can fabricate expired or not-yet-valid certificates with it.
    """
    check_key_strength(public_key, "the certificate's public key")
    server = not client and not code_signing
    builder = _base(name(cn, o), issuer_cert.subject, public_key, not_before, not_after)
    builder = _aki(builder, issuer_cert)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    builder = builder.add_extension(
        _leaf_usage(public_key, server=server, code_signing=code_signing), critical=True
    )
    if code_signing:
        ekus = [ExtendedKeyUsageOID.CODE_SIGNING]
    elif client:
        ekus = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if v2g:
            ekus.append(ExtendedKeyUsageOID.SERVER_AUTH)
    else:
        ekus = [ExtendedKeyUsageOID.SERVER_AUTH]
    builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if dns_names or ip_addresses:
        builder = builder.add_extension(_san(dns_names, ip_addresses), critical=False)
    builder = _crl_dp(builder, crl_url)
    return builder.sign(issuer_key, signature_hash(issuer_key))


def validity(now: datetime, lifetime: timedelta) -> tuple[datetime, datetime]:
    """(not_before, not_after) for a certificate issued ``now``: backdated for clock skew, and
    ``lifetime`` counted from now, so a 24-hour certificate lasts 24 hours from issuance."""
    return now - CLOCK_SKEW_BACKDATE, now + lifetime


def server_names(hostname: str) -> tuple[list[str], list[str]]:
    """(DNS SANs, IP SANs) for the CSMS's public host name.

    The host name itself is always a dNSName (the CN repeats it; stations that match only the
    CN find it there), an IP literal additionally an iPAddress SAN, and "localhost" only when
    that is the configured name, so a production certificate never vouches for it.
    """
    host = hostname.strip().strip("[]")
    dns = [host]
    ips: list[str] = []
    try:
        ips.append(str(ipaddress.ip_address(host)))
    except ValueError:
        pass
    if host.lower() == "localhost":
        dns = ["localhost"]
    return dns, ips


def crl_url(settings: Settings, ca_name: str) -> str:
    """Where the CRL of our CA ``ca_name`` is published (the API's /pki/crl route)."""
    host = settings.public_hostname
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal in a URL needs brackets (RFC 3986)
    return f"http://{host}:{settings.api_port}/pki/crl/{ca_name}.crl"


def issue_server_certificate(
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    public_key: PublicKey,
    settings: Settings,
    *,
    issuer_name: str,
    now: datetime,
) -> x509.Certificate:
    """The CSMS's TLS server certificate for ``settings.public_hostname`` (SEC-06): CN = the
    host name, SANs per ``server_names``, EKU serverAuth, ``server_cert_lifetime_hours``."""
    dns, ips = server_names(settings.public_hostname)
    not_before, not_after = validity(now, timedelta(hours=settings.server_cert_lifetime_hours))
    # Never outlive the issuer: clients would reject the chain at the CA's expiry anyway.
    not_after = min(not_after, issuer_cert.not_valid_after_utc)
    return issue_leaf(
        issuer_cert,
        issuer_key,
        public_key,
        cn=settings.public_hostname.strip("[]"),
        o=settings.cpo_name,
        not_before=not_before,
        not_after=not_after,
        client=False,
        dns_names=dns,
        ip_addresses=ips,
        crl_url=crl_url(settings, issuer_name),
    )


def issue_station_certificate(
    pki: Pki,
    public_key: PublicKey,
    *,
    serial_number_cn: str,
    cpo_name: str,
    lifetime_days: int,
    now: datetime | None = None,
    v2g: bool = False,
) -> x509.Certificate:
    """A station's client certificate from the station CA (SEC-09): CN = the station's serial
    number, O = the CPO name, EKU clientAuth.

    ``v2g=True``: the station's V2G (ISO 15118) certificate instead, from the V2G CA, with EKU
    clientAuth and serverAuth (see ``issue_leaf``); CN and O are whatever the caller checked
    the CSR for.
    """
    if lifetime_days < 1:
        raise PkiError("a station certificate must be valid for at least one day")
    not_before, not_after = validity(now or datetime.now(UTC), timedelta(days=lifetime_days))
    issuing_ca = pki.v2g_ca if v2g else pki.station_ca
    not_after = min(not_after, issuing_ca.certificate.not_valid_after_utc)
    return issue_leaf(
        issuing_ca.certificate,
        issuing_ca.key,
        public_key,
        cn=serial_number_cn,
        o=cpo_name,
        not_before=not_before,
        not_after=not_after,
        client=True,
        crl_url=crl_url(pki.settings, issuing_ca.name),
        v2g=v2g,
    )
