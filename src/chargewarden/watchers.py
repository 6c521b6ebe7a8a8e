"""Background duties of a running CSMS that keep TLS and revocation current without restarts.

Revocations may come from another process (the CLI, another node), so the store is polled:
every `pki_watch_seconds` the watcher closes live connections whose certificate was revoked,
regenerates CRLs, renews the server certificates when due (fast expiration, SEC-14), and
reloads TLS material that changed on disk. Each duty is isolated: one failing is logged and
retried on the next tick, never ends the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from chargewarden.config import Settings
from chargewarden.gateway.server import Gateway
from chargewarden.pki.crl import write_crls
from chargewarden.pki.hierarchy import Pki, record_hierarchy, renew_server_certificates_if_due
from chargewarden.pki.material import load_tls_material, material_version
from chargewarden.store import Store

log = logging.getLogger(__name__)


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
        self._task: asyncio.Task[None] | None = None

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
            self._close_revoked,
            self._refresh_crls,
            self._renew_server_certificates,
            self._reload_material,
        ):
            try:
                await duty()
            except Exception:
                log.exception("PKI watcher: %s failed; retrying next time", duty.__name__)

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
        self._material_version = version
        log.info("TLS material changed on disk; new handshakes use it, live connections stay")
