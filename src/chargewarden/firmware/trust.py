"""The manufacturer roots and CRLs firmware signing certificates are checked against.

Production: the roots (and CRLs) named in ``[firmware]``. Without any, the built-in development
manufacturer root under the CA directory, so the demo and tests work; docs/firmware.md says to
configure real roots. Read from disk at each check: a root or CRL replaced on disk applies to
the next release and the next update without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.hierarchy import load_certificates
from chargewarden.pki.layout import MANUFACTURER_ROOT, Layout


@dataclass(frozen=True)
class FirmwareTrust:
    roots: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]
    source: str  # for messages: which roots were used

    def crl_reason(self, certificate: x509.Certificate) -> str | None:
        """Why a CRL of a trusted root lists ``certificate``, or None."""
        for crl in self.crls:
            if crl.issuer != certificate.issuer:
                continue
            entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if entry is not None:
                return f"listed in the CRL of {crl.issuer.rfc4514_string()}"
        return None


def _read_crl(path: Path, roots: tuple[x509.Certificate, ...]) -> x509.CertificateRevocationList:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PkiError(f"cannot read manufacturer CRL {path}: {exc.strerror or exc}") from None
    try:
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_crl(data)
        )
    except ValueError:
        raise PkiError(f"{path} is not a CRL (PEM or DER)") from None
    issuer = next((root for root in roots if root.subject == crl.issuer), None)
    if issuer is None or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise PkiError(f"manufacturer CRL {path} is not signed by a configured manufacturer root")
    return crl


def load_trust(settings: Settings) -> FirmwareTrust:
    """PkiError when a configured file is missing or unusable (fail closed)."""
    configured = settings.firmware.manufacturer_roots
    if configured:
        roots = tuple(c for path in configured for c in load_certificates(path))
        source = ", ".join(str(path) for path in configured)
    else:
        path = Layout(settings.effective_ca_dir).cert(MANUFACTURER_ROOT)
        roots = tuple(load_certificates(path))
        source = f"the development manufacturer root {path}"
    crls = tuple(_read_crl(path, roots) for path in settings.firmware.manufacturer_crls)
    return FirmwareTrust(roots, crls, source)


TrustProvider = Callable[[], FirmwareTrust]
