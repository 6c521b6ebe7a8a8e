"""Background duties of a running CSMS that keep TLS and revocation current without restarts.

Revocations may come from another process (the CLI, another node), so the store is polled:
every `pki_watch_seconds` the watcher closes live connections whose certificate was revoked,
regenerates CRLs, renews the server certificates when due (fast expiration, SEC-14), and
reloads TLS material that changed on disk. Each duty is isolated: one failing is logged and
retried on the next tick, never ends the loop.

The CA itself may change on disk too (``ca rollover switch`` re-certifies the CAs under a new
root, another process adds a CA): the watcher then reloads the hierarchy into the ``Pki`` the
whole CSMS shares (signer, CRLs, built-in roots), once the new files form a sound hierarchy, so
nothing keeps issuing with, or presenting, certificates of the previous root.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from chargewarden.config import Settings
from chargewarden.gateway.server import Gateway
from chargewarden.pki.authorities import PARENTS
from chargewarden.pki.crl import write_crls
from chargewarden.pki.health import signature_problems
from chargewarden.pki.hierarchy import Pki, record_hierarchy, renew_server_certificates_if_due
from chargewarden.pki.layout import CA_NAMES, Layout
from chargewarden.pki.material import TlsMaterial, load_tls_material, material_version
from chargewarden.store import Store

log = logging.getLogger(__name__)


def hierarchy_version(settings: Settings) -> str:
    """A tag that changes when a CA certificate or key changes on disk (stat() only)."""
    layout = Layout(settings.effective_ca_dir)
    digest = hashlib.sha256()
    for ca_name in CA_NAMES:
        for path in (layout.cert(ca_name), layout.key(ca_name)):
            try:
                st = path.stat()
                digest.update(f"{path}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except FileNotFoundError:
                digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()[:24]


def _hierarchy_problems(pki: Pki) -> list[str]:
    """What keeps a freshly loaded hierarchy from replacing the one in use: unreadable files, a
    CA not issued by its parent (e.g. half-way through a root switch)."""
    problems = pki.load_problems
    for ca_name, entry in pki.entries.items():
        parent = PARENTS.get(ca_name)
        issuer = pki.entries.get(parent) if parent else entry
        if issuer is None:
            problems.append(f"{ca_name}: its issuer {parent} is missing")
        else:
            problems += signature_problems(ca_name, entry.certificate, issuer.certificate)
    return problems


def adopt_hierarchy(pki: Pki, fresh: Pki) -> None:
    """Make ``pki`` (shared by the signer, the CRL provider, ...) hold what ``fresh`` loaded."""
    pki.entries = fresh.entries
    pki.servers = fresh.servers
    pki.imported_servers = fresh.imported_servers
    # Pki has no public way to replace its load problems; they belong to the files just read.
    pki._load_problems = fresh.load_problems


class PkiWatcher:
    def __init__(
        self, settings: Settings, store: Store, gateway: Gateway, pki: Pki, passphrase: bytes
    ) -> None:
        self._settings = settings
        self._store = store
        self._gateway = gateway
        self._pki = pki
        self._passphrase = passphrase
        self._revoked_checked_at = datetime.now(UTC)
        self._material_version = material_version(settings)
        self._hierarchy_version = hierarchy_version(settings)
        self._refused_version: str | None = None
        self._task: asyncio.Task[None] | None = None
        # Other TLS servers of the CSMS (the file-transfer listener) that follow the material.
        self.material_listeners: list[Callable[[TlsMaterial], None]] = []

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pki-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.pki_watch_seconds)
            await self.tick()

    async def tick(self) -> None:
        for duty in (
            self._reload_hierarchy,
            self._close_revoked,
            self._refresh_crls,
            self._renew_server_certificates,
            self._reload_material,
        ):
            try:
                await duty()
            except Exception:
                log.exception("PKI watcher: %s failed; retrying next time", duty.__name__)

    async def _reload_hierarchy(self) -> None:
        version = hierarchy_version(self._settings)
        if version == self._hierarchy_version:
            return
        # Decrypting every key takes a moment: off the loop.
        fresh = await asyncio.to_thread(Pki.load, self._settings, self._passphrase)
        problems = _hierarchy_problems(fresh)
        if problems:
            # Retried every tick until the files settle (a switch in progress, say); said once.
            if version != self._refused_version:
                log.warning(
                    "the CA changed on disk but is not usable yet; still using the previous "
                    "one: %s",
                    "; ".join(problems),
                )
                self._refused_version = version
            return
        adopt_hierarchy(self._pki, fresh)
        self._hierarchy_version = version
        await record_hierarchy(self._store, self._pki)
        log.info(
            "the CA changed on disk; reloaded it (root %s)",
            self._pki.root.certificate.subject.rfc4514_string(),
        )

    async def _close_revoked(self) -> None:
        since, now = self._revoked_checked_at, datetime.now(UTC)
        revoked = await self._store.certificates.revoked_since(since)
        self._revoked_checked_at = now
        if not revoked:
            return
        fingerprints = {record.fingerprint_sha256 for record in revoked}
        closed = await self._gateway.close_connections_using(
            fingerprints, "its client certificate was revoked"
        )
        if closed:
            log.warning("closed %d connection(s) using revoked certificates", len(closed))

    async def _refresh_crls(self) -> None:
        # Cheap when nothing changed; also re-signs a CRL before its nextUpdate passes.
        await write_crls(self._pki, self._store, datetime.now(UTC))

    async def _renew_server_certificates(self) -> None:
        if renew_server_certificates_if_due(self._pki, self._settings, datetime.now(UTC)):
            await record_hierarchy(self._store, self._pki)
            log.info("server certificates renewed (fast expiration)")

    async def _reload_material(self) -> None:
        version = material_version(self._settings)
        if version == self._material_version:
            return
        material = load_tls_material(self._settings, self._passphrase)
        self._gateway.use_tls_material(material)
        for listener in self.material_listeners:
            listener(material)
        self._material_version = version
        log.info("TLS material changed on disk; new handshakes use it, live connections stay")
