"""The release registry: an image is registered only once its signing certificate chains to a
trusted manufacturer root and its signature verifies (A00.FR.706), and it is checked again
before each update is sent (the certificate may have expired or been revoked since, or the
stored file changed). Every refusal is a FirmwareRefused security event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from chargewarden.firmware.trust import FirmwareTrust, TrustProvider
from chargewarden.pki import PkiError
from chargewarden.pki.firmware import FirmwareRefused, verify_firmware
from chargewarden.pki.hierarchy import pem_of
from chargewarden.security.events import CsmsEvent
from chargewarden.security.recorder import SecurityRecorder
from chargewarden.store import Store
from chargewarden.store.records import AuditRecord
from chargewarden.store.transfer_records import FirmwareReleaseRecord
from chargewarden.transfer.storage import TransferStorage, safe_filename

log = logging.getLogger(__name__)

MAX_NAME = 64


class ReleaseError(Exception):
    """A request about releases that cannot be done (unknown name, taken name, ...)."""


class FirmwareReleases:
    def __init__(
        self,
        store: Store,
        storage: TransferStorage,
        trust: TrustProvider,
        recorder: SecurityRecorder,
        clock: Callable[[], datetime],
        max_bytes: int,
    ) -> None:
        self._store = store
        self._storage = storage
        self._trust = trust
        self._recorder = recorder
        self._clock = clock
        self._max_bytes = max_bytes

    async def _revocations(
        self, chain: list[x509.Certificate], trust: FirmwareTrust
    ) -> dict[bytes, str]:
        """Revocation reasons of chain members, from our store and the manufacturer CRLs."""
        reasons: dict[bytes, str] = {}
        for certificate in chain:
            fingerprint = certificate.fingerprint(hashes.SHA256())
            record = await self._store.certificates.find_by_fingerprint(fingerprint.hex())
            if record is not None and record.revoked:
                reasons[fingerprint] = record.revocation_reason or "revoked"
            elif (reason := trust.crl_reason(certificate)) is not None:
                reasons[fingerprint] = reason
        return reasons

    async def _verify(
        self, image: Path, signature: str, chain: list[x509.Certificate]
    ) -> tuple[str, int, x509.Certificate, str]:
        try:
            trust = self._trust()
        except PkiError as exc:
            raise FirmwareRefused(f"the manufacturer roots cannot be read: {exc}") from None
        reasons = await self._revocations(chain, trust)
        verified = await asyncio.to_thread(
            verify_firmware,
            image,
            signature,
            chain,
            trust.roots,
            self._clock(),
            lambda c: reasons.get(c.fingerprint(hashes.SHA256())),
        )
        return verified.sha256_hex, verified.size, verified.signer, verified.algorithm

    async def _refused(self, what: str, exc: FirmwareRefused, peer: str | None) -> None:
        await self._recorder.csms(
            CsmsEvent.FIRMWARE_REFUSED, identity=None, peer=peer, reason=f"{what}: {exc}"
        )

    async def register(
        self,
        image: Path,
        signature: str,
        chain_pem: bytes,
        *,
        name: str | None,
        actor: str,
        peer: str | None = None,
    ) -> FirmwareReleaseRecord:
        """Check and store a release. FirmwareRefused (recorded) or ReleaseError."""
        release_name = (name or image.name).strip()
        if not release_name or len(release_name) > MAX_NAME:
            raise ReleaseError(f"a release name must be 1 to {MAX_NAME} characters")
        if await self._store.firmware_releases.by_name(release_name) is not None:
            raise ReleaseError(f"a firmware release named {release_name!r} exists already")
        try:
            size = (await asyncio.to_thread(image.stat)).st_size
            if size > self._max_bytes:
                raise FirmwareRefused(f"the image is larger than {self._max_bytes} bytes")
            try:
                chain = x509.load_pem_x509_certificates(chain_pem)
            except ValueError:
                raise FirmwareRefused("the signing certificate is not a PEM certificate") from None
            sha256, size, signer, algorithm = await self._verify(image, signature, chain)
        except FirmwareRefused as exc:
            await self._refused(f"release {release_name!r} refused", exc, peer)
            raise
        filename = safe_filename(image.name, "firmware.bin")
        await asyncio.to_thread(self._storage.store_firmware, image, sha256, filename)
        record = await self._store.firmware_releases.add(
            FirmwareReleaseRecord(
                name=release_name,
                filename=filename,
                sha256=sha256,
                size=size,
                signature="".join(signature.split()),
                signing_certificate_pem=pem_of(*chain).decode("ascii"),
                signer_subject=signer.subject.rfc4514_string(),
                algorithm=algorithm,
                signer_not_after=signer.not_valid_after_utc,
                actor=actor,
            )
        )
        await self._store.audit.add(
            AuditRecord(
                actor=actor,
                action="firmware.release.add",
                target=f"firmware:{release_name}",
                details={"sha256": sha256, "size": size, "signer": record.signer_subject},
            )
        )
        log.info("firmware release %s registered (%d bytes, %s)", release_name, size, algorithm)
        return record

    async def get(self, name: str) -> FirmwareReleaseRecord:
        release = await self._store.firmware_releases.by_name(name)
        if release is None:
            raise ReleaseError(f"no firmware release {name!r}; see 'chargewarden firmware list'")
        return release

    async def check_before_sending(self, release: FirmwareReleaseRecord, station: str) -> None:
        """The release is still good now: stored file intact, chain valid, nothing revoked.
        FirmwareRefused (recorded) if not."""
        path = self._storage.firmware_path(release.sha256, release.filename)
        try:
            if not await asyncio.to_thread(path.is_file):
                raise FirmwareRefused(f"the stored image {release.filename} is missing")
            chain = x509.load_pem_x509_certificates(release.signing_certificate_pem.encode())
            sha256, *_ = await self._verify(path, release.signature, chain)
            if sha256 != release.sha256:
                raise FirmwareRefused(
                    "the stored image no longer matches the registered one (SHA-256 changed)"
                )
        except FirmwareRefused as exc:
            await self._refused(
                f"release {release.name!r} not sent to station {station}", exc, None
            )
            raise
