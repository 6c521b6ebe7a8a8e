"""The CA at run time: made ready at start (``ensure_pki``) and server certificates renewed.

Fast expiration (SEC-14, WP A00.FR.701): the CSMS server certificate may be short-lived
(``server_cert_lifetime_hours``, e.g. 24) and is renewed, with a fresh key, once less than a
third of its lifetime remains, so a stolen server key is useful only briefly. An imported
server certificate belongs to the operator and is never renewed here.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import UTC, datetime

from cryptography import x509

from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.layout import SERVER_CA, SERVER_KINDS
from chargewarden.pki.material import imported_warnings
from chargewarden.pki.passphrase import load_passphrase

log = logging.getLogger(__name__)

RENEW_WHEN_REMAINING = 1 / 3


def _names_in(certificate: x509.Certificate) -> tuple[set[str], set[str]]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    dns = {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return dns, ips


def certificate_matches_host(certificate: x509.Certificate, hostname: str) -> bool:
    """Whether a TLS client connecting to ``hostname`` would accept this certificate's names
    (SAN only, as RFC 6125 clients do; a single leading wildcard label is honoured)."""
    host = hostname.strip().strip("[]").lower()
    dns, ips = _names_in(certificate)
    try:
        return str(ipaddress.ip_address(host)) in ips
    except ValueError:
        pass
    if host in dns:
        return True
    head, _, rest = host.partition(".")
    return bool(rest) and f"*.{rest}" in dns and bool(head)


def server_renewal_reason(
    certificate: x509.Certificate, settings: Settings, now: datetime
) -> str | None:
    """Why a generated server certificate must be replaced now, or None."""
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    if now >= not_after:
        return "it has expired"
    remaining = (not_after - now) / (not_after - not_before)
    if remaining < RENEW_WHEN_REMAINING:
        return f"less than a third of its lifetime remains (expires {not_after:%Y-%m-%d %H:%M} UTC)"
    if not certificate_matches_host(certificate, settings.public_hostname):
        return f"it does not name public_hostname {settings.public_hostname!r}"
    return None


def renew_server_certificates_if_due(
    pki: Pki, settings: Settings, now: datetime | None = None
) -> bool:
    """Renew each generated server certificate that is due; True if any was renewed.

    Does nothing while imported server certificates are in use. The new files change
    ``material_version``, which is how the gateway notices. The caller should record the new
    certificates in the store (``record_hierarchy`` does, idempotently).
    """
    now = now or datetime.now(UTC)
    if pki.imported_servers:
        return False
    renewed = False
    server_ca = pki.server_ca
    ca_cert = server_ca.certificate
    if not ca_cert.not_valid_before_utc <= now < ca_cert.not_valid_after_utc:
        return False  # nothing valid can be issued; check() reports the CA itself
    for kind in SERVER_KINDS:
        current = pki.servers.get(kind)
        if current is None:
            reason: str | None = "it is missing or unreadable"
        elif current.chain[:1] != (server_ca.certificate,):
            reason = f"it was not issued by the current {SERVER_CA}"
        else:
            reason = server_renewal_reason(current.certificate, settings, now)
        if reason is None:
            continue
        entry = pki.issue_server(kind, now)
        log.info(
            "renewed the %s server certificate because %s; new one valid until %s",
            kind,
            reason,
            entry.certificate.not_valid_after_utc.isoformat(),
        )
        renewed = True
    return renewed


def ensure_pki(
    settings: Settings, *, now: datetime | None = None, create: bool | None = None
) -> Pki:
    """The CA, ready to use: created if missing, completed with CAs added to the hierarchy
    since it was created, checked, server certificates renewed if due.

    ``create=None`` creates a missing CA only on the embedded default (no ``ca_dir``
    configured): a configured CA directory that is missing is more likely a mount that failed
    than a wish for a brand-new root, which no station would trust. PkiError lists every
    problem of a broken CA (fail closed: no TLS with a CA in doubt).
    """
    now = now or datetime.now(UTC)
    passphrase = load_passphrase(settings)
    if not Pki.exists(settings):
        if create is False or (create is None and settings.ca_dir is not None):
            raise PkiError(
                f"no CA in {settings.effective_ca_dir}; create one with 'chargewarden ca init'"
            )
        log.info("no CA in %s: creating one", settings.effective_ca_dir)
        pki = Pki.init(settings, passphrase, now=now)
    else:
        pki = Pki.load(settings, passphrase)
        # A CA this installation predates (the V2G CA) is added now; nothing else changes.
        pki.add_missing_cas(now)
    # Renew before checking: an expired or missing generated server certificate is exactly
    # what renewal repairs, and must not keep the CSMS from starting.
    if pki.entries.get(SERVER_CA) is not None:
        renew_server_certificates_if_due(pki, settings, now)
    problems = pki.check(now)
    if problems:
        raise PkiError(f"the CA in {pki.ca_dir} is not usable: " + "; ".join(problems))
    for warning in pki.warnings(now) + imported_warnings(settings, now):
        log.warning("CA: %s", warning)
    return pki
