"""CSMS root rollover (CRT-08): a new CPO root, introduced to stations while the old one is in
use, then made the root of the hierarchy.

Three steps, each idempotent and resumable, their state under ``<ca_dir>/rollover/``:

1. ``prepare_rollover`` (offline): a new self-signed CPO root (P-384, CN "<CPO> Root CA
   YYYY-MM") and a *cross certificate*: the new root's subject and key, issued and signed by the
   old root. A station that checks ``AdditionalRootCertificateCheck`` accepts a new CSMS root
   only if the root it replaces signed it (WP ed.3 M05.FR.09, 2.0.1 M05.FR.09): it gets the
   cross certificate; every other station gets the self-signed new root.
2. install (the running CSMS, ``domain.root_rollover``): InstallCertificate on the stations;
   the outcomes are kept in ``rollover/install.json`` (``record_install``).
3. ``switch_root`` (offline): the old root is archived under ``retired/cpo-root-<time>/``, the
   new root moved into ``cpo-root/``, the CAs the root issued (server, station, V2G CA)
   re-certified under it with their keys and subjects unchanged (so every certificate they
   issued still verifies against them), and the server certificates re-issued, so the chain the
   CSMS presents ends at the new root. A running CSMS picks all of it up without a restart
   (``watchers.PkiWatcher``).

The served chain is leaf + server CA, as always: the cross certificate is *not* appended. A
station that never received the new root therefore fails TLS after the switch (which is why
``switch`` refuses until ``install`` has run); one that did trusts either the new root itself or
the cross certificate, which carries the same name and key. See docs/pki.md, "Root rollover".

    <ca_dir>/rollover/new-root.pem         the new root (self-signed)
    <ca_dir>/rollover/new-root-key.pem     its key (encrypted PKCS#8, 0600)
    <ca_dir>/rollover/new-root-cross.pem   the new root's name and key, signed by the old root
    <ca_dir>/rollover/install.json         per-station outcome of the install step
    <ca_dir>/rollover/switch.json          written when a switch starts (resume point)
    <ca_dir>/retired/cpo-root-<time>/      the old root (cert.pem, key.pem), the old certificates
                                           of the CAs it issued (issued/<ca>.pem), and, once the
                                           switch is complete, the rollover directory itself
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.authorities import ALL_CAS, PARENTS, ROOT_LIFETIME, SPEC_BY_NAME
from chargewarden.pki.files import ensure_dir, write_atomic, write_public
from chargewarden.pki.health import signature_problems
from chargewarden.pki.hierarchy import Pki, load_certificates, pem_of
from chargewarden.pki.issue import MAX_NAME_CHARS, crl_url, issue_ca, name, validity
from chargewarden.pki.keys import (
    PrivateKey,
    generate_ec,
    key_matches,
    read_private_key,
    write_private_key,
)
from chargewarden.pki.layout import CPO_ROOT, SERVER_KINDS, Layout

ROLLOVER_DIR = "rollover"
RETIRED_DIR = "retired"
NEW_ROOT_FILE = "new-root.pem"
NEW_ROOT_KEY_FILE = "new-root-key.pem"
CROSS_FILE = "new-root-cross.pem"
INSTALL_FILE = "install.json"
SWITCH_FILE = "switch.json"
ARCHIVE_PREFIX = "cpo-root-"
# The CAs the CPO root issued: re-certified under the new root at the switch.
ROOT_CHILDREN = tuple(n for n in ALL_CAS if PARENTS.get(n) == CPO_ROOT)
# Install outcomes that mean "the station has the new root".
INSTALLED_OUTCOMES = frozenset({"installed", "already-installed"})
# How many install runs the log keeps (the per-station outcomes are kept in full).
KEPT_RUNS = 50


ROOT_CA = " Root CA"
# The date a rollover adds to the root's CN (see new_root_cn).
_STAMP = re.compile(r" \d{4}-\d{2}(-\d{2}( \d{6})?)?$")


class RolloverAlreadyPrepared(PkiError):
    """``prepare`` found a prepared rollover; ``status`` says what state it is in."""

    def __init__(self, message: str, status: RolloverStatus) -> None:
        super().__init__(message)
        self.status = status


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class RolloverPaths:
    ca_dir: Path

    @property
    def directory(self) -> Path:
        return self.ca_dir / ROLLOVER_DIR

    @property
    def new_root(self) -> Path:
        return self.directory / NEW_ROOT_FILE

    @property
    def new_root_key(self) -> Path:
        return self.directory / NEW_ROOT_KEY_FILE

    @property
    def cross(self) -> Path:
        return self.directory / CROSS_FILE

    @property
    def install_log(self) -> Path:
        return self.directory / INSTALL_FILE

    @property
    def switch_state(self) -> Path:
        return self.directory / SWITCH_FILE

    @property
    def retired(self) -> Path:
        return self.ca_dir / RETIRED_DIR

    def archives(self) -> list[Path]:
        """Archives of retired roots, oldest first (the names sort by time)."""
        if not self.retired.is_dir():
            return []
        return sorted(p for p in self.retired.glob(f"{ARCHIVE_PREFIX}*") if p.is_dir())


@dataclass(frozen=True)
class PreparedRollover:
    new_root: x509.Certificate
    cross: x509.Certificate
    new_root_key: PrivateKey | None = field(default=None, repr=False)  # only when asked for

    @property
    def new_root_pem(self) -> str:
        return pem_of(self.new_root).decode("ascii")

    @property
    def cross_pem(self) -> str:
        return pem_of(self.cross).decode("ascii")

    @property
    def new_root_sha256(self) -> str:
        return fingerprint(self.new_root)


# --------------------------------------------------------------------------------- prepare


def new_root_cn(settings: Settings, current_cn: str | None, now: datetime) -> str:
    """The CN of the new root: the current root's ("<CPO> Root CA", without the date an earlier
    rollover added) with the month, so operators and station logs tell the two roots apart;
    with the day and time if that names the current root already (two rollovers in a month).
    The CPO part is shortened if need be (CN: at most 64 characters)."""
    base = _STAMP.sub("", current_cn) if current_cn else f"{settings.cpo_name} Root CA"
    label, tail = (base[: -len(ROOT_CA)], ROOT_CA) if base.endswith(ROOT_CA) else (base, "")
    for stamp in (f"{now:%Y-%m}", f"{now:%Y-%m-%d}", f"{now:%Y-%m-%d %H%M%S}"):
        suffix = f"{tail} {stamp}"
        cn = label[: MAX_NAME_CHARS - len(suffix)].rstrip() + suffix
        if cn != current_cn:
            return cn
    raise PkiError("cannot name the new root differently from the current one; try again")


def _issue_cross(
    new_root: x509.Certificate, old_root: x509.Certificate, old_key: PrivateKey, now: datetime
) -> x509.Certificate:
    """The new root's name and key, certified by the old root (same SKI as the new root, AKI of
    the old root). No CRL distribution point: a trust anchor is not checked for revocation,
    and after the switch the CPO root CRL is signed by the new root."""
    constraints = new_root.extensions.get_extension_for_class(x509.BasicConstraints).value
    not_before, _ = validity(now, ROOT_LIFETIME)
    not_after = min(new_root.not_valid_after_utc, old_root.not_valid_after_utc)
    return issue_ca(
        new_root.subject,
        new_root.public_key(),  # type: ignore[arg-type]
        old_key,
        issuer_cert=old_root,
        not_before=not_before,
        not_after=not_after,
        path_length=constraints.path_length,
    )


def prepare_rollover(
    settings: Settings, passphrase: bytes, *, now: datetime | None = None
) -> PreparedRollover:
    """Create the new root and its cross certificate under ``<ca_dir>/rollover/``.

    RolloverAlreadyPrepared if a rollover is prepared already (or a switch under way). The
    files are written into a staging directory and renamed into place, so a failure leaves
    nothing half-made behind.
    """
    now = now or datetime.now(UTC)
    paths = RolloverPaths(settings.effective_ca_dir)
    if paths.directory.exists():
        raise RolloverAlreadyPrepared(
            f"a root rollover is already prepared in {paths.directory}", rollover_status(settings)
        )
    pki = Pki.load(settings, passphrase)
    old = pki.root
    if now >= old.certificate.not_valid_after_utc:
        raise PkiError(
            f"the CPO root expired on {old.certificate.not_valid_after_utc:%Y-%m-%d}; a new root "
            "it signs is worthless to stations, which must be given the new root another way"
        )
    spec = SPEC_BY_NAME[CPO_ROOT]
    key = generate_ec(spec.curve)
    not_before, not_after = validity(now, spec.lifetime)
    # The same O as the current root (even if cpo_name changed since); a CN of its own.
    subject = name(
        new_root_cn(settings, _attribute(old.certificate, NameOID.COMMON_NAME), now),
        _attribute(old.certificate, NameOID.ORGANIZATION_NAME) or spec.o(settings),
    )
    new_root = issue_ca(
        subject,
        key.public_key(),
        key,
        issuer_cert=None,
        not_before=not_before,
        not_after=not_after,
        path_length=spec.path_length,
    )
    cross = _issue_cross(new_root, old.certificate, old.key, now)
    staging = settings.effective_ca_dir / f".rollover-{secrets.token_hex(6)}"
    try:
        ensure_dir(staging)
        write_private_key(staging / NEW_ROOT_KEY_FILE, key, passphrase)
        write_public(staging / NEW_ROOT_FILE, pem_of(new_root))
        write_public(staging / CROSS_FILE, pem_of(cross))
        try:
            os.rename(staging, paths.directory)
        except OSError:
            if paths.directory.exists():  # another process prepared one meanwhile
                raise RolloverAlreadyPrepared(
                    f"a root rollover is already prepared in {paths.directory}",
                    rollover_status(settings),
                ) from None
            raise
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
    return PreparedRollover(new_root, cross, key)


def _attribute(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = certificate.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def _same_key(a: x509.Certificate, b: x509.Certificate) -> bool:
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_key().public_bytes(*spki) == b.public_key().public_bytes(*spki)


def load_prepared(settings: Settings, passphrase: bytes | None = None) -> PreparedRollover:
    """The prepared new root and cross certificate (and, given the passphrase, the new root's
    key); PkiError if none is prepared or the files do not belong together."""
    paths = RolloverPaths(settings.effective_ca_dir)
    if not paths.directory.is_dir():
        raise PkiError(
            f"no root rollover is prepared in {settings.effective_ca_dir}; "
            "run 'chargewarden ca rollover prepare' first"
        )
    new_root = load_certificates(paths.new_root)[0]
    cross = load_certificates(paths.cross)[0]
    key = read_private_key(paths.new_root_key, passphrase) if passphrase is not None else None
    problems = []
    if key is not None and not key_matches(new_root, key):
        problems.append(f"{paths.new_root_key} does not match {paths.new_root}")
    problems += signature_problems("new root", new_root, new_root)
    if cross.subject != new_root.subject or not _same_key(cross, new_root):
        problems.append(f"{paths.cross} does not carry the name and key of {paths.new_root}")
    if problems:
        raise PkiError("the prepared rollover is broken: " + "; ".join(problems))
    return PreparedRollover(new_root, cross, key)


# --------------------------------------------------------------------------------- install


@dataclass(frozen=True)
class InstallLog:
    """What ``install`` achieved so far, per station (the best outcome each station had)."""

    new_root_sha256: str
    runs: tuple[dict[str, Any], ...]
    stations: dict[str, dict[str, Any]]

    @property
    def last_run(self) -> datetime | None:
        return datetime.fromisoformat(self.runs[-1]["at"]) if self.runs else None

    @property
    def installed(self) -> list[str]:
        return sorted(i for i, s in self.stations.items() if s["outcome"] in INSTALLED_OUTCOMES)

    @property
    def not_installed(self) -> dict[str, dict[str, Any]]:
        return {
            i: s for i, s in sorted(self.stations.items()) if s["outcome"] not in INSTALLED_OUTCOMES
        }

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.stations.values():
            counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
        return dict(sorted(counts.items()))


def read_install_log(settings: Settings) -> InstallLog | None:
    path = RolloverPaths(settings.effective_ca_dir).install_log
    return _read_install_log(path)


def _read_install_log(path: Path) -> InstallLog | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read {path}: {exc}") from None
    return InstallLog(
        new_root_sha256=str(data.get("new_root_sha256", "")),
        runs=tuple(data.get("runs") or ()),
        stations=dict(data.get("stations") or {}),
    )


def record_install(
    settings: Settings,
    outcomes: Iterable[Mapping[str, Any]],
    *,
    actor: str,
    now: datetime | None = None,
) -> InstallLog:
    """Merge one install run into ``rollover/install.json`` and return the log.

    ``outcomes``: mappings with at least ``identity`` and ``outcome``. A station keeps its
    latest outcome, except that "offline" or "error" never overwrites an earlier success: the
    station has the new root all the same.
    """
    now = now or datetime.now(UTC)
    prepared = load_prepared(settings)
    paths = RolloverPaths(settings.effective_ca_dir)
    log = _read_install_log(paths.install_log)
    if log is None or log.new_root_sha256 != prepared.new_root_sha256:
        log = InstallLog(prepared.new_root_sha256, (), {})
    stations = dict(log.stations)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        entry = {k: v for k, v in outcome.items() if k != "identity"} | {"at": now.isoformat()}
        identity = str(outcome["identity"])
        counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
        previous = stations.get(identity)
        failed = entry["outcome"] in ("offline", "error")
        if previous is not None and previous["outcome"] in INSTALLED_OUTCOMES and failed:
            continue
        stations[identity] = entry
    runs = (*log.runs, {"at": now.isoformat(), "actor": actor, "counts": counts})[-KEPT_RUNS:]
    updated = InstallLog(prepared.new_root_sha256, runs, stations)
    document = {
        "new_root_sha256": updated.new_root_sha256,
        "runs": list(updated.runs),
        "stations": updated.stations,
    }
    write_atomic(
        paths.install_log, json.dumps(document, indent=1, sort_keys=True).encode(), mode=0o600
    )
    return updated


# ---------------------------------------------------------------------------------- switch


@dataclass(frozen=True)
class SwitchResult:
    archive: Path
    new_root: x509.Certificate
    retired_root: x509.Certificate
    recertified: tuple[str, ...]
    reissued_servers: tuple[str, ...]
    resumed: bool
    pki: Pki = field(repr=False)
    warnings: tuple[str, ...] = ()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, document: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(document, indent=1, sort_keys=True).encode(), mode=0o600)


def _archive_old_root(pki: Pki, archive: Path) -> None:
    """Copy the old root (certificate and key) and the old certificates of the CAs it issued
    into ``archive``, all at once (staging directory, then rename)."""
    if (archive / "cert.pem").exists():
        return
    ensure_dir(archive.parent)
    staging = archive.parent / f".{archive.name}.{secrets.token_hex(6)}"
    try:
        ensure_dir(staging / "issued")
        layout = pki.layout
        write_atomic(staging / "key.pem", layout.key(CPO_ROOT).read_bytes(), mode=0o600)
        write_public(staging / "cert.pem", layout.cert(CPO_ROOT).read_bytes())
        for ca_name in ROOT_CHILDREN:
            if layout.cert(ca_name).exists():
                write_public(
                    staging / "issued" / f"{ca_name}.pem", layout.cert(ca_name).read_bytes()
                )
        os.rename(staging, archive)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)


def _recertify(
    certificate: x509.Certificate,
    ca_name: str,
    root: x509.Certificate,
    root_key: PrivateKey,
    settings: Settings,
    now: datetime,
) -> x509.Certificate:
    """``certificate``'s subject and key, issued by the new root: a fresh lifetime (the old one
    was capped at the old root's expiry, often the very reason for the rollover), never beyond
    the new root; the path length as before."""
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    not_before, not_after = validity(now, SPEC_BY_NAME[ca_name].lifetime)
    return issue_ca(
        certificate.subject,
        certificate.public_key(),  # type: ignore[arg-type]
        root_key,
        issuer_cert=root,
        not_before=not_before,
        not_after=min(not_after, root.not_valid_after_utc),
        path_length=constraints.path_length,
        crl_url=crl_url(settings, CPO_ROOT),
    )


def switch_root(
    settings: Settings, passphrase: bytes, *, force: bool = False, now: datetime | None = None
) -> SwitchResult:
    """Make the prepared new root the CPO root (see the module docstring); resumable.

    Refuses unless a rollover is prepared, and, without ``force``, unless ``install`` has run.
    Interrupted, it continues where it stopped when run again (``rollover/switch.json``).
    PkiError if the result does not pass ``Pki.check`` (nothing is lost: run it again once
    the cause is fixed).
    """
    now = now or datetime.now(UTC)
    paths = RolloverPaths(settings.effective_ca_dir)
    layout = Layout(settings.effective_ca_dir)
    prepared = load_prepared(settings, passphrase)
    assert prepared.new_root_key is not None
    state = _read_json(paths.switch_state)
    warnings: list[str] = []
    resumed = state is not None
    if state is None:
        install = _read_install_log(paths.install_log)
        if install is None or not install.runs:
            if not force:
                raise PkiError(
                    "the new root has not been installed on any station: run 'chargewarden ca "
                    "rollover install' first (or switch with --force: stations without the new "
                    "root then fail TLS with this CSMS)"
                )
            warnings.append("no install has run: stations without the new root will fail TLS")
        elif install.not_installed:
            warnings.append(
                f"{len(install.not_installed)} station(s) did not get the new root and will "
                f"fail TLS: {', '.join(list(install.not_installed)[:20])}"
                + (" ..." if len(install.not_installed) > 20 else "")
            )
        pki = Pki.load(settings, passphrase)
        # Start only from a sound CA (the generated server certificates excepted: the switch
        # re-issues them anyway), so a failure at the end is the switch's own.
        servers = tuple(f"{kind} server:" for kind in SERVER_KINDS)
        problems = [p for p in pki.check(now) if not p.startswith(servers)]
        if problems:
            raise PkiError("fix the CA before switching ('ca show'): " + "; ".join(problems))
        old_root = pki.root.certificate
        if old_root == prepared.new_root:
            raise PkiError("the prepared new root is the CPO root already")
        if signature_problems("cross", prepared.cross, old_root):
            raise PkiError(
                f"the prepared rollover was made for another CPO root than the one in "
                f"{layout.cert(CPO_ROOT)}; remove {paths.directory} and prepare again"
            )
        archive = paths.retired / f"{ARCHIVE_PREFIX}{now:%Y%m%dT%H%M%SZ}"
        if archive.exists():
            archive = archive.with_name(f"{archive.name}-{secrets.token_hex(3)}")
        state = {
            "started_at": now.isoformat(),
            "archive": archive.name,
            "old_root_sha256": fingerprint(old_root),
            "new_root_sha256": prepared.new_root_sha256,
            "forced": force,
        }
        _write_json(paths.switch_state, state)
        _archive_old_root(pki, archive)
    else:
        archive = paths.retired / str(state["archive"])
        if not (archive / "cert.pem").exists():
            # The switch stopped before the archive was complete; the old root is still there
            # (it is replaced only after the archive is complete).
            if load_certificates(layout.cert(CPO_ROOT))[0] == prepared.new_root:
                raise PkiError(f"{archive} is missing, and the old root with it")
            _archive_old_root(Pki.load(settings, passphrase), archive)
    retired_root = load_certificates(archive / "cert.pem")[0]

    # The new root into place: key first, then the certificate (the certificate says which
    # root is in place; a rerun rewrites both until it is the new one).
    try:
        current = load_certificates(layout.cert(CPO_ROOT))[0]
    except PkiError:
        current = None
    if current != prepared.new_root:
        write_private_key(layout.key(CPO_ROOT), prepared.new_root_key, passphrase)
        write_public(layout.cert(CPO_ROOT), pem_of(prepared.new_root))

    # The CAs the root issued: the same key and subject, certified by the new root.
    pki = Pki.load(settings, passphrase)
    recertified = []
    for ca_name in ROOT_CHILDREN:
        entry = pki.entries.get(ca_name)
        if entry is None:
            if (settings.effective_ca_dir / ca_name).exists():
                raise PkiError(
                    f"{ca_name} cannot be read, so it cannot be re-certified: "
                    + "; ".join(p for p in pki.load_problems if p.startswith(ca_name))
                )
            continue  # a CA added later (V2G): created under the new root at the next start
        if not signature_problems(ca_name, entry.certificate, prepared.new_root):
            continue
        certificate = _recertify(
            entry.certificate, ca_name, prepared.new_root, prepared.new_root_key, settings, now
        )
        write_public(entry.cert_path, pem_of(certificate))
        recertified.append(ca_name)

    # The server certificates: re-issued under the re-certified server CA (new keys, as at
    # every renewal), so the chain presented ends at the new root.
    pki = Pki.load(settings, passphrase)
    server_ca = pki.server_ca
    reissued = []
    for kind in SERVER_KINDS:
        entry = pki.servers.get(kind)
        if entry is None or entry.chain[:1] != (server_ca.certificate,):
            pki.issue_server(kind, now)
            reissued.append(kind)
    if pki.imported_servers:
        warnings.append(
            "imported server certificates are in use: the chain they present does not depend "
            "on the CPO root, and the re-issued generated ones are not presented"
        )

    pki = Pki.load(settings, passphrase)
    problems = pki.check(now)
    if problems:
        raise PkiError(
            "the switch did not leave a usable CA (run it again once fixed): " + "; ".join(problems)
        )
    # Done: the rollover's files go into the archive, which marks the switch complete.
    state["finished_at"] = now.isoformat()
    _write_json(paths.switch_state, state)
    os.rename(paths.directory, archive / ROLLOVER_DIR)
    return SwitchResult(
        archive=archive,
        new_root=prepared.new_root,
        retired_root=retired_root,
        recertified=tuple(recertified),
        reissued_servers=tuple(reissued),
        resumed=resumed,
        pki=pki,
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class LastSwitch:
    archive: Path
    finished_at: datetime
    retired_root: x509.Certificate | None


@dataclass(frozen=True)
class RolloverStatus:
    ca_dir: Path
    current_root: x509.Certificate | None
    prepared: PreparedRollover | None
    install: InstallLog | None
    switch_started_at: datetime | None  # a switch started and has not finished
    last_switch: LastSwitch | None
    problems: tuple[str, ...] = ()
    # rollover/ exists (``prepared`` is None if its files are broken: see ``problems``)
    pending: bool = False

    @property
    def state(self) -> str:
        if self.switch_started_at is not None:
            return "switching"
        return "prepared" if self.pending else "idle"

    @property
    def switched(self) -> bool:
        """True when the last rollover is complete and none is prepared since."""
        return self.last_switch is not None and self.state == "idle"

    def as_dict(self) -> dict[str, Any]:
        def cert(c: x509.Certificate | None) -> dict[str, Any] | None:
            if c is None:
                return None
            return {
                "subject": c.subject.rfc4514_string(),
                "issuer": c.issuer.rfc4514_string(),
                "serial": format(c.serial_number, "x"),
                "sha256": fingerprint(c),
                "not_before": c.not_valid_before_utc.isoformat(),
                "not_after": c.not_valid_after_utc.isoformat(),
            }

        install = None
        if self.install is not None:
            last = self.install.last_run
            install = {
                "runs": len(self.install.runs),
                "last_run": last.isoformat() if last else None,
                "counts": self.install.counts(),
                "installed": len(self.install.installed),
                "not_installed": [
                    {"identity": identity, **entry}
                    for identity, entry in self.install.not_installed.items()
                ],
            }
        last_switch = None
        if self.last_switch is not None:
            last_switch = {
                "archive": str(self.last_switch.archive),
                "finished_at": self.last_switch.finished_at.isoformat(),
                "retired_root": cert(self.last_switch.retired_root),
            }
        return {
            "state": self.state,
            "prepared": self.pending,
            "switched": self.switched,
            "current_root": cert(self.current_root),
            "new_root": cert(self.prepared.new_root if self.prepared else None),
            "cross_certificate": cert(self.prepared.cross if self.prepared else None),
            "install": install,
            "switch_started_at": (
                self.switch_started_at.isoformat() if self.switch_started_at else None
            ),
            "last_switch": last_switch,
            "problems": list(self.problems),
        }


def rollover_status(settings: Settings) -> RolloverStatus:
    """Where the rollover stands, from the files alone (no passphrase needed)."""
    ca_dir = settings.effective_ca_dir
    paths = RolloverPaths(ca_dir)
    problems: list[str] = []
    try:
        current: x509.Certificate | None = load_certificates(Layout(ca_dir).cert(CPO_ROOT))[0]
    except PkiError as exc:
        current, problems = None, [str(exc)]
    prepared = install = started = None
    if paths.directory.is_dir():
        try:
            prepared = load_prepared(settings)
        except PkiError as exc:
            problems.append(str(exc))
        try:
            install = _read_install_log(paths.install_log)
            state = _read_json(paths.switch_state)
        except PkiError as exc:
            problems.append(str(exc))
            state = None
        if state is not None and "started_at" in state:
            started = datetime.fromisoformat(state["started_at"])
    last_switch = None
    for archive in reversed(paths.archives()):
        try:
            state = _read_json(archive / ROLLOVER_DIR / SWITCH_FILE)
        except PkiError:
            continue
        if state is None or "finished_at" not in state:
            continue
        try:
            retired: x509.Certificate | None = load_certificates(archive / "cert.pem")[0]
        except PkiError:
            retired = None
        last_switch = LastSwitch(archive, datetime.fromisoformat(state["finished_at"]), retired)
        break
    return RolloverStatus(
        ca_dir=ca_dir,
        current_root=current,
        prepared=prepared,
        install=install,
        switch_started_at=started,
        last_switch=last_switch,
        problems=tuple(problems),
        pending=paths.directory.is_dir(),
    )
