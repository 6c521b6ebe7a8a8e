"""Certificate revocation lists of our CAs: built from the store, published over HTTP and on disk.

The store is the source of truth: revocation takes effect for new TLS handshakes the moment it
is committed. CRLs exist for everyone else (stations that check CRLs, other systems, auditors),
so they are built fresh from the store, valid for 7 days, and re-signed well before that.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.files import write_public
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.issue import signature_hash
from chargewarden.pki.layout import CPO_ROOT, CRL_ISSUERS, MANUFACTURER_ROOT
from chargewarden.pki.material import csms_root_pem
from chargewarden.store.records import CertificateRecord

if TYPE_CHECKING:
    from chargewarden.store import Store

CRL_VALIDITY = timedelta(days=7)
# Re-sign a CRL on disk once half its validity is gone, so readers never hold an expired one.
CRL_REFRESH = CRL_VALIDITY / 2
# How long the HTTP provider reuses a CRL it signed when nothing was revoked meanwhile: the
# endpoint is public, and must not let anyone make the CA sign on every request.
PROVIDER_CACHE_SECONDS = 3600.0

# RFC 5280 5.3.1 reason codes, as operators type them. certificateHold is left out on purpose:
# a hold can be lifted, and revocation here is final.
REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key-compromise": x509.ReasonFlags.key_compromise,
    "ca-compromise": x509.ReasonFlags.ca_compromise,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
    "privilege-withdrawn": x509.ReasonFlags.privilege_withdrawn,
}

CrlProvider = Callable[[str], Awaitable[bytes | None]]
RootProvider = Callable[[], Awaitable[bytes | None]]


def _squashed(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


_BY_SQUASHED = {_squashed(code): code for code in REASONS}


def normalize_reason(text: str) -> str:
    """A reason code from REASONS; RFC 5280 camelCase, snake_case and any case are accepted."""
    code = _BY_SQUASHED.get(_squashed(text))
    if code is None:
        raise PkiError(f"unknown revocation reason {text!r}; use one of: {', '.join(REASONS)}")
    return code


def _revoked_entry(record: CertificateRecord) -> x509.RevokedCertificate:
    assert record.revoked_at is not None
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(int(record.serial, 16))
        .revocation_date(record.revoked_at)
    )
    flag = REASONS.get(_BY_SQUASHED.get(_squashed(record.revocation_reason or ""), ""))
    # RFC 5280 5.3.1: reasonCode unspecified SHOULD be absent.
    if flag is not None and flag is not x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(flag), critical=False)
    return builder.build()


def build_crl(
    pki: Pki, ca_name: str, revoked_records: Sequence[CertificateRecord], now: datetime
) -> bytes:
    """A DER CRL of ``ca_name`` listing the revoked records it issued, next update in 7 days."""
    if ca_name not in CRL_ISSUERS:
        raise PkiError(f"{ca_name!r} does not publish a CRL; CAs that do: {', '.join(CRL_ISSUERS)}")
    ca = pki.ca(ca_name)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        # Monotonic enough across restarts without storing a counter: milliseconds since 1970.
        .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    for record in revoked_records:
        if record.issuer_ca == ca_name and record.revoked_at is not None:
            builder = builder.add_revoked_certificate(_revoked_entry(record))
    crl = builder.sign(ca.key, signature_hash(ca.key))
    return crl.public_bytes(serialization.Encoding.DER)


def _up_to_date(path_bytes: bytes, pki: Pki, ca_name: str, serials: set[int],
                now: datetime) -> bool:
    try:
        crl = x509.load_der_x509_crl(path_bytes)
    except ValueError:
        return False
    issuer = pki.ca(ca_name).certificate
    next_update = crl.next_update_utc
    return (
        crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        and {entry.serial_number for entry in crl} == serials
        and next_update is not None
        and next_update - now > CRL_REFRESH
    )


async def write_crls(pki: Pki, store: Store, now: datetime | None = None) -> list[str]:
    """Write ``<ca_dir>/crl/<ca-name>.crl`` for each CA whose revocations changed (or whose CRL
    is missing or half-way to its next update); returns the names written."""
    now = now or datetime.now(UTC)
    written = []
    for ca_name in CRL_ISSUERS:
        if ca_name not in pki.entries:
            continue
        records = await store.certificates.revoked_for_issuer(ca_name)
        path = pki.layout.crl(ca_name)
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = b""
        if current and _up_to_date(current, pki, ca_name, {int(r.serial, 16) for r in records},
                                   now):
            continue
        write_public(path, build_crl(pki, ca_name, records, now))
        written.append(ca_name)
    return written


def make_crl_provider(pki: Pki, store: Store) -> CrlProvider:
    """For the API's /pki/crl route: the DER CRL of a CA by name, None for an unknown name.

    Built from the store, so it is current at once after a revocation; re-signed only when the
    revocations changed or the cached one is an hour old.
    """
    cache: dict[str, tuple[tuple[tuple[str, str], ...], float, bytes]] = {}

    async def provide(ca_name: str) -> bytes | None:
        if ca_name not in CRL_ISSUERS or ca_name not in pki.entries:
            return None
        records = await store.certificates.revoked_for_issuer(ca_name)
        key = tuple(sorted((r.serial, str(r.revoked_at)) for r in records))
        cached = cache.get(ca_name)
        if cached and cached[0] == key and time.monotonic() - cached[1] < PROVIDER_CACHE_SECONDS:
            return cached[2]
        der = build_crl(pki, ca_name, records, datetime.now(UTC))
        cache[ca_name] = (key, time.monotonic(), der)
        return der

    return provide


def make_csms_root_provider(settings: Settings) -> RootProvider:
    """For the API's /pki/csms-root.pem route (public: stations are told to trust it)."""

    async def provide() -> bytes | None:
        try:
            return csms_root_pem(settings)
        except PkiError:
            return None

    return provide


def builtin_root_provider(pki: Pki) -> Callable[[str], bytes | None]:
    """PEM of a root of our own hierarchy by installable kind ("csms-root",
    "manufacturer-root"), for installing it on stations without an operator-supplied file."""
    names = {"csms-root": CPO_ROOT, "manufacturer-root": MANUFACTURER_ROOT}

    def provide(kind: str) -> bytes | None:
        entry = pki.entries.get(names.get(kind, ""))
        if entry is None:
            return None
        return entry.certificate.public_bytes(serialization.Encoding.PEM)

    return provide
