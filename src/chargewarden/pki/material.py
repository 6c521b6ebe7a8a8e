"""What the TLS listener needs from the CA, read from disk in one go, with a cheap version tag.

The gateway builds its ``SSLContext`` from a ``TlsMaterial`` and polls ``material_version``
(file names, sizes and modification times only: no parsing, no key decryption) to notice
renewed server certificates, imported CAs and new CRLs without a restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.hierarchy import load_certificates, pem_of
from chargewarden.pki.keys import key_matches, read_private_key
from chargewarden.pki.layout import CPO_ROOT, SERVER_KINDS, STATION_CA, Layout

CRL_WARNING = timedelta(days=2)
CA_WARNING = timedelta(days=30)


@dataclass(frozen=True)
class TlsMaterial:
    # (chain.pem, encrypted key.pem): RSA first, then ECDSA. The imported server certificates
    # when there are any, else the generated ones.
    server_chains: tuple[tuple[Path, Path], ...]
    key_passphrase: bytes = field(repr=False)  # unlocks the key files (ssl load_cert_chain)
    # CA certificates that may issue station certificates: cpo-station-ca + imported ones.
    station_trust_pem: bytes
    # What stations must trust to accept our server certificate: cpo-root + imported roots.
    csms_root_pem: bytes
    # CRLs of IMPORTED station CAs; revocations by our own CAs are in the store.
    crls: tuple[x509.CertificateRevocationList, ...]
    # Changes whenever any file above changes on disk (see material_version).
    version: str


def material_version(settings: Settings) -> str:
    """A tag that changes when any file the TLS material is built from changes.

    Cheap enough to call every few seconds: one stat() per file, no parsing. A file being
    replaced changes its inode's mtime and usually its size; the nanosecond mtime catches the
    rest.
    """
    digest = hashlib.sha256()
    for path in Layout(settings.effective_ca_dir).watched_files():
        try:
            st = path.stat()
            digest.update(f"{path}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()[:24]


def _server_chains(layout: Layout, passphrase: bytes) -> tuple[tuple[Path, Path], ...]:
    imported = layout.imported_server_kinds()
    kinds = imported or list(SERVER_KINDS)
    chains = []
    for kind in kinds:
        chain = layout.server_chain(kind, imported=bool(imported))
        key_path = layout.server_key(kind, imported=bool(imported))
        certificates = load_certificates(chain)
        # Refuse a key that does not belong to its chain here, with a clear message, instead of
        # an opaque ssl error: this is also what a reader sees in the instant between the two
        # file replacements of a renewal, and it makes the watcher retry rather than switch.
        if not key_matches(certificates[0], read_private_key(key_path, passphrase)):
            raise PkiError(f"{key_path} does not match {chain}")
        chains.append((chain, key_path))
    return tuple(chains)


def _read_crl(path: Path, issuer: x509.Certificate) -> x509.CertificateRevocationList:
    try:
        data = path.read_bytes()
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_crl(data)
        )
    except OSError as exc:
        raise PkiError(f"cannot read CRL {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise PkiError(f"{path} is not a CRL (PEM or DER)") from None
    if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise PkiError(f"CRL {path} is not signed by {issuer.subject.rfc4514_string()}")
    return crl


def csms_root_pem(settings: Settings) -> bytes:
    """What a station must trust to accept our server certificate: the CPO root, plus the
    roots of imported server certificates."""
    layout = Layout(settings.effective_ca_dir)
    roots = load_certificates(layout.cert(CPO_ROOT))
    for path in layout.imported_server_roots():
        roots += load_certificates(path)
    return pem_of(*roots)


def imported_warnings(settings: Settings, now: datetime) -> list[str]:
    """Imported station CAs and CRLs that have expired or soon will: an expired CRL makes its
    CA's stations fail verification (fail closed), so the operator must hear of it early."""
    out = []
    for path in Layout(settings.effective_ca_dir).imported_station_cas():
        try:
            ca = load_certificates(path)[0]
            crl_path = path.with_suffix(".crl")
            crl = _read_crl(crl_path, ca) if crl_path.exists() else None
        except PkiError as exc:
            out.append(str(exc))
            continue
        if ca.not_valid_after_utc - now < CA_WARNING:
            out.append(f"imported station CA {path.stem} expires {ca.not_valid_after_utc:%Y-%m-%d}")
        next_update = crl.next_update_utc if crl is not None else None
        if next_update is not None and next_update - now < CRL_WARNING:
            out.append(f"the CRL of imported station CA {path.stem} is due for renewal by "
                       f"{next_update:%Y-%m-%d %H:%M} UTC; import a newer one (ca import --crl)")
    return out


def load_tls_material(settings: Settings, passphrase: bytes) -> TlsMaterial:
    """Everything the TLS listener needs; PkiError if any of it is missing or inconsistent."""
    layout = Layout(settings.effective_ca_dir)
    # Taken first: if files change while we read, the next poll sees a newer version and
    # loads again, so a half-updated read is never mistaken for the final state.
    version = material_version(settings)
    server_chains = _server_chains(layout, passphrase)

    station_trust = load_certificates(layout.cert(STATION_CA))
    crls = []
    for path in layout.imported_station_cas():
        cas = load_certificates(path)
        station_trust += cas
        crl_path = path.with_suffix(".crl")
        if crl_path.exists():
            crls.append(_read_crl(crl_path, cas[0]))

    return TlsMaterial(
        server_chains=server_chains,
        key_passphrase=passphrase,
        station_trust_pem=pem_of(*station_trust),
        csms_root_pem=csms_root_pem(settings),
        crls=tuple(crls),
        version=version,
    )
