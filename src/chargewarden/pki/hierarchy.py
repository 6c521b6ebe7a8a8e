"""The CA on disk: the CPO hierarchy, the development Manufacturer hierarchy, server certificates.

``Pki.init`` creates it (refusing to overwrite one), ``Pki.load`` opens it, ``Pki.check`` says
what is wrong with it. Loading never stops at the first broken file: the operator gets the whole
list of problems from ``check`` (and ``ca show``), except for a wrong passphrase, which makes
every key unreadable and is reported at once.

Which CAs there are, and how each is made, is in ``authorities.py``. A CA added to the
hierarchy after an installation was created (the V2G CA, ``cpo-v2g-ca``) is absent from it
without that being a problem, and ``Pki.add_missing_cas`` (called by ``ensure_pki`` at start)
creates it, touching nothing else. The built-in V2G CA serves development and closed
installations; production V2G certificates come from the V2G PKI (e.g. Hubject) through an
external signer implementing ``signer.CertificateSigner``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.authorities import (
    ADDED_LATER,
    ALL_CAS,
    SPEC_BY_NAME,
    SPECS,
    V2G_CA,
    make_authority,
)
from chargewarden.pki.files import ensure_dir, write_public
from chargewarden.pki.health import expiry_warnings, hierarchy_problems
from chargewarden.pki.issue import issue_server_certificate
from chargewarden.pki.keys import (
    PrivateKey,
    WrongPassphrase,
    generate_ec,
    generate_rsa,
    key_matches,
    read_private_key,
    write_private_key,
)
from chargewarden.pki.layout import (
    CPO_ROOT,
    FIRMWARE_SIGNER,
    MANUFACTURER_ROOT,
    SERVER_CA,
    SERVER_KINDS,
    STATION_CA,
    Layout,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CertifiedKey:
    """A certificate with its private key and where both live."""

    name: str
    certificate: x509.Certificate
    key: PrivateKey = field(repr=False)
    cert_path: Path
    key_path: Path
    # Certificates that follow the leaf in a chain file (server certificates only).
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def pem_of(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file; PkiError if it is missing, unreadable or holds none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"{path} is missing") from None
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise PkiError(f"{path} does not hold a readable PEM certificate") from None
    return certificates


def _hierarchy_paths(ca_dir: Path) -> list[Path]:
    """What ``ca init`` makes: the layout's paths and those of CAs added since."""
    paths = Layout(ca_dir).hierarchy_paths()
    return paths + [ca_dir / n for n in ALL_CAS if ca_dir / n not in paths]


def _new_server_key(kind: str) -> PrivateKey:
    return generate_rsa(2048) if kind == "rsa" else generate_ec(ec.SECP256R1())


class Pki:
    """The CA directory, opened with its passphrase. Create with ``init``, open with ``load``."""

    def __init__(self, settings: Settings, passphrase: bytes) -> None:
        self.settings = settings
        self.layout = Layout(settings.effective_ca_dir)
        self._passphrase = passphrase
        self.entries: dict[str, CertifiedKey] = {}
        self.servers: dict[str, CertifiedKey] = {}  # generated, by kind
        self.imported_servers: dict[str, CertifiedKey] = {}
        self._load_problems: list[str] = []

    def __repr__(self) -> str:  # the passphrase stays out of every repr
        return f"Pki({self.ca_dir})"

    @property
    def ca_dir(self) -> Path:
        return self.layout.ca_dir

    @property
    def passphrase(self) -> bytes:
        return self._passphrase

    # --- creating and opening ----------------------------------------------------------------

    @classmethod
    def exists(cls, settings: Settings) -> bool:
        return any(p.exists() for p in _hierarchy_paths(settings.effective_ca_dir))

    @classmethod
    def init(cls, settings: Settings, passphrase: bytes, *, now: datetime | None = None) -> Pki:
        """Create both hierarchies and the server certificates; refuses an existing CA."""
        ca_dir = settings.effective_ca_dir
        if cls.exists(settings):
            raise PkiError(f"a CA already exists in {ca_dir}; use 'ca show'")
        now = now or datetime.now(UTC)
        ensure_dir(ca_dir)
        # Everything is written into a staging directory first and moved into place at the
        # end, so a failure half-way leaves no half-made CA behind to be mistaken for one.
        staging = ca_dir / f".init-{secrets.token_hex(6)}"
        pki = cls(settings.model_copy(update={"ca_dir": staging}), passphrase)
        try:
            pki._create(now)
            for path in _hierarchy_paths(staging):
                path.rename(ca_dir / path.name)
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(staging)
        return cls.load(settings, passphrase)

    def _create(self, now: datetime) -> None:
        for spec in SPECS:
            parent = self.entries[spec.parent] if spec.parent else None
            certificate, key = make_authority(
                spec, self.settings, (parent.certificate, parent.key) if parent else None, now
            )
            self.entries[spec.name] = self._write_ca(self.layout, spec.name, certificate, key)
        for kind in SERVER_KINDS:
            self.issue_server(kind, now)

    def _write_ca(
        self, layout: Layout, ca_name: str, certificate: x509.Certificate, key: PrivateKey
    ) -> CertifiedKey:
        entry = CertifiedKey(ca_name, certificate, key, layout.cert(ca_name), layout.key(ca_name))
        write_private_key(entry.key_path, key, self._passphrase)
        write_public(entry.cert_path, entry.pem)
        return entry

    def add_missing_cas(self, now: datetime) -> list[str]:
        """Create the CAs this installation predates (see ``ADDED_LATER``); their names.

        Only a CA whose directory is absent is added, and only under a parent that is loaded
        and valid now; nothing else is touched. A directory that exists but is broken is
        reported by ``check``, never replaced; one that cannot be written (a read-only CA
        directory) is logged and left absent, as the rest of the CA works without it. The new
        CA is written into a staging directory and renamed into place, so a crash leaves no
        half-made CA, and of two processes starting at once one adds it and the other loads
        what the first added.
        """
        added = []
        for ca_name in ALL_CAS:
            spec = SPEC_BY_NAME[ca_name]
            parent = self.entries.get(spec.parent) if spec.parent else None
            target = self.ca_dir / ca_name
            if ca_name not in ADDED_LATER or target.exists() or parent is None:
                continue
            parent_cert = parent.certificate
            if not parent_cert.not_valid_before_utc <= now < parent_cert.not_valid_after_utc:
                continue  # check() reports the parent
            certificate, key = make_authority(spec, self.settings, (parent_cert, parent.key), now)
            staging = self.ca_dir / f".add-{secrets.token_hex(6)}"
            try:
                self._write_ca(Layout(staging), ca_name, certificate, key)
                os.rename(staging / ca_name, target)
            except OSError as exc:
                if not target.exists():
                    # E.g. a read-only CA directory: the rest of the CA works without it.
                    log.warning(
                        "cannot add %s to the CA in %s (%s); what it issues cannot be signed "
                        "until it is added (start once with write access to the CA directory)",
                        ca_name,
                        self.ca_dir,
                        exc.strerror or exc,
                    )
                    continue
                # Another process added it first: use that one.
                self._load_entry(ca_name, self.layout.cert(ca_name), self.layout.key(ca_name))
                continue
            finally:
                with contextlib.suppress(OSError):
                    shutil.rmtree(staging)
            self.entries[ca_name] = CertifiedKey(
                ca_name, certificate, key, self.layout.cert(ca_name), self.layout.key(ca_name)
            )
            log.info("added %s to the CA in %s", ca_name, self.ca_dir)
            added.append(ca_name)
        return added

    def issue_server(self, kind: str, now: datetime) -> CertifiedKey:
        """A new key and server certificate of ``kind``, written over the current one."""
        server_ca = self.server_ca
        key = _new_server_key(kind)
        certificate = issue_server_certificate(
            server_ca.certificate,
            server_ca.key,
            key.public_key(),
            self.settings,
            issuer_name=SERVER_CA,
            now=now,
        )
        entry = CertifiedKey(
            kind,
            certificate,
            key,
            self.layout.server_chain(kind),
            self.layout.server_key(kind),
            chain=(server_ca.certificate,),
        )
        # Key first, chain second: the watcher keys on the chain, and load_tls_material refuses
        # a pair that does not match, so a reader in between keeps the previous material.
        write_private_key(entry.key_path, key, self._passphrase)
        write_public(entry.cert_path, pem_of(certificate, server_ca.certificate))
        self.servers[kind] = entry
        # Whatever was wrong with the previous files of this kind is gone with them.
        self._load_problems = [
            p for p in self._load_problems if not p.startswith(f"{kind} server:")
        ]
        return entry

    @classmethod
    def load(cls, settings: Settings, passphrase: bytes) -> Pki:
        """Open the CA. PkiError if there is none or the passphrase is wrong; any other
        problem is collected for ``check``."""
        pki = cls(settings, passphrase)
        if not cls.exists(settings):
            raise PkiError(
                f"no CA in {pki.ca_dir}; create one with 'chargewarden ca init' "
                "(or start 'chargewarden serve' with the embedded default)"
            )
        for ca_name in ALL_CAS:
            if ca_name in ADDED_LATER and not (pki.ca_dir / ca_name).exists():
                continue  # predates this installation: add_missing_cas creates it
            pki._load_entry(ca_name, pki.layout.cert(ca_name), pki.layout.key(ca_name))
        for kind in SERVER_KINDS:
            for imported in (False, True):
                chain = pki.layout.server_chain(kind, imported=imported)
                if imported and not chain.exists():
                    continue
                pki._load_entry(
                    kind,
                    chain,
                    pki.layout.server_key(kind, imported=imported),
                    server=True,
                    imported=imported,
                )
        return pki

    def _load_entry(
        self,
        entry_name: str,
        cert_path: Path,
        key_path: Path,
        *,
        server: bool = False,
        imported: bool = False,
    ) -> None:
        label = f"{'imported ' if imported else ''}{entry_name}" + (" server" if server else "")
        try:
            certificates = load_certificates(cert_path)
            key = read_private_key(key_path, self._passphrase)
        except WrongPassphrase as exc:
            raise PkiError(f"{exc} (the CA passphrase does not open {self.ca_dir})") from None
        except PkiError as exc:
            self._load_problems.append(f"{label}: {exc}")
            return
        if not key_matches(certificates[0], key):
            self._load_problems.append(f"{label}: {key_path} does not match {cert_path}")
            return
        entry = CertifiedKey(
            entry_name, certificates[0], key, cert_path, key_path, chain=tuple(certificates[1:])
        )
        target = self.imported_servers if imported else self.servers if server else self.entries
        target[entry_name] = entry

    # --- the parts ---------------------------------------------------------------------------

    def ca(self, ca_name: str) -> CertifiedKey:
        try:
            return self.entries[ca_name]
        except KeyError:
            raise PkiError(f"{ca_name} is not available in {self.ca_dir}; see 'ca show'") from None

    @property
    def root(self) -> CertifiedKey:
        return self.ca(CPO_ROOT)

    @property
    def server_ca(self) -> CertifiedKey:
        return self.ca(SERVER_CA)

    @property
    def station_ca(self) -> CertifiedKey:
        return self.ca(STATION_CA)

    @property
    def v2g_ca(self) -> CertifiedKey:
        return self.ca(V2G_CA)

    @property
    def manufacturer_root(self) -> CertifiedKey:
        return self.ca(MANUFACTURER_ROOT)

    @property
    def firmware_signer(self) -> CertifiedKey:
        return self.ca(FIRMWARE_SIGNER)

    @property
    def active_servers(self) -> list[CertifiedKey]:
        """What TLS presents: the imported server certificates if any, else the generated."""
        chosen = self.imported_servers or self.servers
        return [chosen[kind] for kind in SERVER_KINDS if kind in chosen]

    # --- sanity ------------------------------------------------------------------------------

    @property
    def load_problems(self) -> list[str]:
        """What went wrong reading the files (part of ``check``)."""
        return list(self._load_problems)

    def check(self, now: datetime | None = None) -> list[str]:
        """Problems that make the CA unusable: missing or unreadable files, keys that do not
        match their certificates, chains that do not verify, expired certificates."""
        return hierarchy_problems(self, now or datetime.now(UTC))

    def warnings(self, now: datetime | None = None) -> list[str]:
        """Certificates that expire within 30 days (generated server certificates excepted:
        they are renewed automatically)."""
        return expiry_warnings(self, now or datetime.now(UTC))


# The run-time entry points live in lifecycle.py and recording.py (they import this module);
# they are also reachable from here, loaded on first use, for callers that think of them as
# part of the hierarchy.
_REEXPORTS = {
    "ensure_pki": "chargewarden.pki.lifecycle",
    "renew_server_certificates_if_due": "chargewarden.pki.lifecycle",
    "record_hierarchy": "chargewarden.pki.recording",
}


def __getattr__(attribute: str) -> object:
    module = _REEXPORTS.get(attribute)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
    import importlib

    return getattr(importlib.import_module(module), attribute)
