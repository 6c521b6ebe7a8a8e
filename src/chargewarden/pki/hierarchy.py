"""The CA on disk: the CPO hierarchy, the development Manufacturer hierarchy, server certificates.

``Pki.init`` creates it (refusing to overwrite one), ``Pki.load`` opens it, ``Pki.check`` says
what is wrong with it. Loading never stops at the first broken file: the operator gets the whole
list of problems from ``check`` (and ``ca show``), except for a wrong passphrase, which makes
every key unreadable and is reported at once.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.files import ensure_dir, write_public
from chargewarden.pki.issue import (
    crl_url,
    issue_ca,
    issue_leaf,
    issue_server_certificate,
    name,
    validity,
)
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
    CA_NAMES,
    CPO_ROOT,
    FIRMWARE_SIGNER,
    MANUFACTURER_ROOT,
    PARENT_OF,
    SERVER_CA,
    SERVER_KINDS,
    STATION_CA,
    Layout,
)

ROOT_LIFETIME = timedelta(days=20 * 365)
CA_LIFETIME = timedelta(days=10 * 365)
FIRMWARE_SIGNER_LIFETIME = timedelta(days=5 * 365)
EXPIRY_WARNING = timedelta(days=30)
DEV_MANUFACTURER = "ChargeWarden Development Manufacturer"


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


def _cpo_label(settings: Settings) -> str:
    # CN is limited to 64 characters; the O keeps the full CPO name.
    return settings.cpo_name[:48]


@dataclass(frozen=True)
class _Spec:
    name: str
    cn: Callable[[Settings], str]
    o: Callable[[Settings], str]
    parent: str | None
    lifetime: timedelta
    path_length: int | None = None
    curve: ec.EllipticCurve = field(default_factory=ec.SECP384R1)
    code_signing: bool = False


_SPECS = (
    _Spec(CPO_ROOT, lambda s: f"{_cpo_label(s)} Root CA", lambda s: s.cpo_name, None,
          ROOT_LIFETIME, path_length=1),
    _Spec(SERVER_CA, lambda s: f"{_cpo_label(s)} Server CA", lambda s: s.cpo_name, CPO_ROOT,
          CA_LIFETIME, path_length=0),
    _Spec(STATION_CA, lambda s: f"{_cpo_label(s)} Station CA", lambda s: s.cpo_name, CPO_ROOT,
          CA_LIFETIME, path_length=0),
    _Spec(MANUFACTURER_ROOT, lambda s: f"{DEV_MANUFACTURER} Root CA",
          lambda s: DEV_MANUFACTURER, None, ROOT_LIFETIME, path_length=0),
    _Spec(FIRMWARE_SIGNER, lambda s: f"{DEV_MANUFACTURER} Firmware Signer",
          lambda s: DEV_MANUFACTURER, MANUFACTURER_ROOT, FIRMWARE_SIGNER_LIFETIME,
          curve=ec.SECP256R1(), code_signing=True),
)


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
        return any(p.exists() for p in Layout(settings.effective_ca_dir).hierarchy_paths())

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
            for path in Layout(staging).hierarchy_paths():
                path.rename(ca_dir / path.name)
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(staging)
        return cls.load(settings, passphrase)

    def _create(self, now: datetime) -> None:
        for spec in _SPECS:
            key = generate_ec(spec.curve)
            parent = self.entries.get(spec.parent) if spec.parent else None
            not_before, not_after = validity(now, spec.lifetime)
            url = crl_url(self.settings, spec.parent) if spec.parent else None
            if spec.code_signing and parent is not None:
                certificate = issue_leaf(
                    parent.certificate, parent.key, key.public_key(), cn=spec.cn(self.settings),
                    o=spec.o(self.settings), not_before=not_before, not_after=not_after,
                    client=False, crl_url=url, code_signing=True,
                )
            else:
                certificate = issue_ca(
                    name(spec.cn(self.settings), spec.o(self.settings)), key.public_key(),
                    parent.key if parent else key,
                    issuer_cert=parent.certificate if parent else None,
                    not_before=not_before, not_after=not_after, path_length=spec.path_length,
                    crl_url=url,
                )
            entry = CertifiedKey(spec.name, certificate, key, self.layout.cert(spec.name),
                                 self.layout.key(spec.name))
            write_private_key(entry.key_path, key, self._passphrase)
            write_public(entry.cert_path, entry.pem)
            self.entries[spec.name] = entry
        for kind in SERVER_KINDS:
            self.issue_server(kind, now)

    def issue_server(self, kind: str, now: datetime) -> CertifiedKey:
        """A new key and server certificate of ``kind``, written over the current one."""
        server_ca = self.server_ca
        key = _new_server_key(kind)
        certificate = issue_server_certificate(
            server_ca.certificate, server_ca.key, key.public_key(), self.settings,
            issuer_name=SERVER_CA, now=now,
        )
        entry = CertifiedKey(kind, certificate, key, self.layout.server_chain(kind),
                             self.layout.server_key(kind), chain=(server_ca.certificate,))
        # Key first, chain second: the watcher keys on the chain, and load_tls_material refuses
        # a pair that does not match, so a reader in between keeps the previous material.
        write_private_key(entry.key_path, key, self._passphrase)
        write_public(entry.cert_path, pem_of(certificate, server_ca.certificate))
        self.servers[kind] = entry
        # Whatever was wrong with the previous files of this kind is gone with them.
        self._load_problems = [p for p in self._load_problems
                               if not p.startswith(f"{kind} server:")]
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
        for ca_name in CA_NAMES:
            pki._load_entry(ca_name, pki.layout.cert(ca_name), pki.layout.key(ca_name))
        for kind in SERVER_KINDS:
            for imported in (False, True):
                chain = pki.layout.server_chain(kind, imported=imported)
                if imported and not chain.exists():
                    continue
                pki._load_entry(kind, chain, pki.layout.server_key(kind, imported=imported),
                                server=True, imported=imported)
        return pki

    def _load_entry(self, entry_name: str, cert_path: Path, key_path: Path, *,
                    server: bool = False, imported: bool = False) -> None:
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
        entry = CertifiedKey(entry_name, certificates[0], key, cert_path, key_path,
                             chain=tuple(certificates[1:]))
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

    def check(self, now: datetime | None = None) -> list[str]:
        """Problems that make the CA unusable: missing or unreadable files, keys that do not
        match their certificates, chains that do not verify, expired certificates."""
        now = now or datetime.now(UTC)
        problems = list(self._load_problems)
        for ca_name, entry in self.entries.items():
            problems += _validity_problems(ca_name, entry.certificate, now)
            parent_name = PARENT_OF[ca_name]
            parent = self.entries.get(parent_name) if parent_name else entry
            if parent is not None:
                problems += _signature_problems(ca_name, entry.certificate, parent.certificate)
        for kind, entry in self.servers.items():
            if self.imported_servers:
                continue  # replaced; not presented, not renewed
            label = f"{kind} server"
            problems += _validity_problems(label, entry.certificate, now)
            if SERVER_CA in self.entries:
                ca_cert = self.entries[SERVER_CA].certificate
                problems += _signature_problems(label, entry.certificate, ca_cert)
                if entry.chain[:1] != (ca_cert,):
                    problems.append(f"{label}: {entry.cert_path} does not end with {SERVER_CA}")
        for kind, entry in self.imported_servers.items():
            label = f"imported {kind} server"
            problems += _validity_problems(label, entry.certificate, now)
            if entry.chain:
                problems += _signature_problems(label, entry.certificate, entry.chain[0])
        if not self.active_servers:
            problems.append("no usable server certificate")
        return problems

    def warnings(self, now: datetime | None = None) -> list[str]:
        """Certificates that expire within 30 days (generated server certificates excepted:
        they are renewed automatically)."""
        now = now or datetime.now(UTC)
        out = []
        watched = list(self.entries.values()) + list(self.imported_servers.values())
        for entry in watched:
            left = entry.certificate.not_valid_after_utc - now
            if timedelta(0) < left < EXPIRY_WARNING:
                out.append(f"{entry.name}: expires in {left.days} days "
                           f"({entry.certificate.not_valid_after_utc:%Y-%m-%d})")
        return out


def _validity_problems(label: str, certificate: x509.Certificate, now: datetime) -> list[str]:
    if now > certificate.not_valid_after_utc:
        return [f"{label}: certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M}"
                " UTC"]
    if now < certificate.not_valid_before_utc:
        return [f"{label}: certificate is not valid before "
                f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"]
    return []


def _signature_problems(
    label: str, certificate: x509.Certificate, issuer: x509.Certificate
) -> list[str]:
    try:
        certificate.verify_directly_issued_by(issuer)
    except Exception as exc:  # InvalidSignature, ValueError, TypeError; InvalidSignature is mute
        reason = str(exc) or type(exc).__name__
        return [f"{label}: not issued by {issuer.subject.rfc4514_string()} ({reason})"]
    return []


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
