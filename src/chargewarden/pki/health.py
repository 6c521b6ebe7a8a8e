"""What is wrong with the CA on disk (``Pki.check``) and what will soon be (``Pki.warnings``).

Every problem is one operator-readable line naming the certificate; all of them are listed, so
the operator can repair a broken CA in one go.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509

from chargewarden.pki.authorities import PARENTS
from chargewarden.pki.layout import SERVER_CA

if TYPE_CHECKING:
    from chargewarden.pki.hierarchy import Pki

EXPIRY_WARNING = timedelta(days=30)


def hierarchy_problems(pki: Pki, now: datetime) -> list[str]:
    """Problems that make the CA unusable: missing or unreadable files, keys that do not match
    their certificates, chains that do not verify, expired certificates.

    A CA the installation predates (``authorities.ADDED_LATER``) is not loaded and so not
    missed here; ``Pki.add_missing_cas`` adds it at the next start.
    """
    problems = pki.load_problems
    for ca_name, entry in pki.entries.items():
        problems += validity_problems(ca_name, entry.certificate, now)
        parent_name = PARENTS[ca_name]
        parent = pki.entries.get(parent_name) if parent_name else entry
        if parent is not None:
            problems += signature_problems(ca_name, entry.certificate, parent.certificate)
    for kind, entry in pki.servers.items():
        if pki.imported_servers:
            continue  # replaced; not presented, not renewed
        label = f"{kind} server"
        problems += validity_problems(label, entry.certificate, now)
        if SERVER_CA in pki.entries:
            ca_cert = pki.entries[SERVER_CA].certificate
            problems += signature_problems(label, entry.certificate, ca_cert)
            if entry.chain[:1] != (ca_cert,):
                problems.append(f"{label}: {entry.cert_path} does not end with {SERVER_CA}")
    for kind, entry in pki.imported_servers.items():
        label = f"imported {kind} server"
        problems += validity_problems(label, entry.certificate, now)
        if entry.chain:
            problems += signature_problems(label, entry.certificate, entry.chain[0])
    if not pki.active_servers:
        problems.append("no usable server certificate")
    return problems


def expiry_warnings(pki: Pki, now: datetime) -> list[str]:
    """Certificates that expire within 30 days (generated server certificates excepted: they
    are renewed automatically)."""
    out = []
    watched = list(pki.entries.values()) + list(pki.imported_servers.values())
    for entry in watched:
        left = entry.certificate.not_valid_after_utc - now
        if timedelta(0) < left < EXPIRY_WARNING:
            out.append(
                f"{entry.name}: expires in {left.days} days "
                f"({entry.certificate.not_valid_after_utc:%Y-%m-%d})"
            )
    return out


def validity_problems(label: str, certificate: x509.Certificate, now: datetime) -> list[str]:
    if now > certificate.not_valid_after_utc:
        return [
            f"{label}: certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        ]
    if now < certificate.not_valid_before_utc:
        return [
            f"{label}: certificate is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        ]
    return []


def signature_problems(
    label: str, certificate: x509.Certificate, issuer: x509.Certificate
) -> list[str]:
    try:
        certificate.verify_directly_issued_by(issuer)
    except Exception as exc:  # InvalidSignature, ValueError, TypeError; InvalidSignature is mute
        reason = str(exc) or type(exc).__name__
        return [f"{label}: not issued by {issuer.subject.rfc4514_string()} ({reason})"]
    return []
