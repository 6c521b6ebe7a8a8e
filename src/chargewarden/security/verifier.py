"""Station password verification with a keyed in-memory cache (SEC-04, SEC-05).

Argon2id costs tens of milliseconds of CPU and ~19 MiB per check on purpose. A reconnect storm
(a site's network comes back, the CSMS restarts) must not be bound by that, so a successful
verification is remembered in memory as a MAC, never as the password:

    HMAC-SHA256(process key, identity ‖ 0x00 ‖ stored PHC hash ‖ 0x00 ‖ password)

The key is random per process and never leaves it, so a memory dump of the cache alone does not
let anyone test password guesses offline faster than against the Argon2 hashes. Because the
stored hash is inside the MAC, a rotated credential can never match an old entry; `drop()` also
clears an identity explicitly on rotation. The cache is touched only from the event-loop thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import weakref
from collections import OrderedDict
from enum import Enum

from chargewarden.security.credentials import password_candidates, verify_secret
from chargewarden.store.records import StationRecord

DEFAULT_MAX_IDENTITIES = 100_000
# Current and pending credential, each possibly seen in two forms during a rotation; more
# entries than that for one identity are stale.
DEFAULT_ENTRIES_PER_IDENTITY = 4


class CredentialMatch(Enum):
    CURRENT = "current"
    PENDING = "pending"
    NONE = "none"


class VerificationCache:
    """Bounded LRU of MACs of successful verifications, keyed by identity."""

    def __init__(
        self,
        max_identities: int = DEFAULT_MAX_IDENTITIES,
        entries_per_identity: int = DEFAULT_ENTRIES_PER_IDENTITY,
    ) -> None:
        if max_identities < 1 or entries_per_identity < 1:
            raise ValueError("cache sizes must be at least 1")
        self._key = secrets.token_bytes(32)
        self._max_identities = max_identities
        self._per_identity = entries_per_identity
        self._entries: OrderedDict[str, list[bytes]] = OrderedDict()

    def __repr__(self) -> str:
        # The key is what makes the MACs useless to an attacker; keep it out of any output.
        return f"VerificationCache(identities={len(self._entries)}, max={self._max_identities})"

    def __len__(self) -> int:
        return len(self._entries)

    def _mac(self, identity: str, phc: str, password: bytes) -> bytes | None:
        encoded = identity.encode("utf-8")
        if b"\x00" in encoded:
            # The separator must be unambiguous; valid identities are printable, so never cache
            # anything else.
            return None
        message = encoded + b"\x00" + phc.encode("ascii", "replace") + b"\x00" + password
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def hit(self, identity: str, phc: str, password: bytes) -> bool:
        """True when this exact (identity, stored hash, password) verified successfully before."""
        entries = self._entries.get(identity)
        if not entries:
            return False
        mac = self._mac(identity, phc, password)
        if mac is None:
            return False
        found = False
        # Compare against every entry, not stopping at the first, so timing says nothing about
        # which slot matched.
        for entry in entries:
            found |= hmac.compare_digest(entry, mac)
        if found:
            self._entries.move_to_end(identity)
        return found

    def add(self, identity: str, phc: str, password: bytes) -> None:
        mac = self._mac(identity, phc, password)
        if mac is None:
            return
        entries = self._entries.get(identity)
        if entries is None:
            entries = []
            self._entries[identity] = entries
        else:
            self._entries.move_to_end(identity)
        if not any(hmac.compare_digest(e, mac) for e in entries):
            entries.append(mac)
            del entries[: -self._per_identity]
        while len(self._entries) > self._max_identities:
            self._entries.popitem(last=False)

    def drop(self, identity: str) -> None:
        """Forget every entry of an identity (credential rotated, station removed)."""
        self._entries.pop(identity, None)

    def clear(self) -> None:
        self._entries.clear()


class CredentialVerifier:
    """Checks a station's Basic-auth password against its current and pending hashes."""

    def __init__(
        self,
        cache: VerificationCache | None = None,
        *,
        max_concurrent_hashes: int | None = None,
    ) -> None:
        self._cache = cache if cache is not None else VerificationCache()
        # Each Argon2 check holds ~19 MiB; without a bound, a burst of bad passwords would put
        # one per executor thread (up to 32) in memory at once and starve the CPU.
        self._limit = max_concurrent_hashes or max(1, os.cpu_count() or 1)
        self._semaphores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()

    @property
    def cache(self) -> VerificationCache:
        return self._cache

    def _semaphore(self) -> asyncio.Semaphore:
        # One per event loop: an asyncio.Semaphore binds to the loop that first waits on it.
        loop = asyncio.get_running_loop()
        sem = self._semaphores.get(loop)
        if sem is None:
            sem = asyncio.Semaphore(self._limit)
            self._semaphores[loop] = sem
        return sem

    async def _slow_verify(self, phc: str, candidate: bytes) -> bool:
        async with self._semaphore():
            # In a worker thread: argon2-cffi releases the GIL, so the event loop keeps serving
            # other connections while the hash runs.
            return await asyncio.to_thread(verify_secret, phc, candidate)

    async def verify(self, station: StationRecord, password: bytes) -> CredentialMatch:
        """CURRENT or PENDING for the credential that matched, NONE otherwise (fail closed)."""
        stored = [
            (kind, phc)
            for kind, phc in (
                (CredentialMatch.CURRENT, station.credential_hash),
                (CredentialMatch.PENDING, station.pending_credential_hash),
            )
            if phc
        ]
        if not stored:
            return CredentialMatch.NONE
        candidates = password_candidates(
            station.ocpp_version, password, strict=station.strict_password
        )
        if not candidates:
            return CredentialMatch.NONE
        identity = station.identity
        for kind, phc in stored:
            for candidate in candidates:
                if self._cache.hit(identity, phc, candidate):
                    return kind
        for kind, phc in stored:
            for candidate in candidates:
                if await self._slow_verify(phc, candidate):
                    self._cache.add(identity, phc, candidate)
                    return kind
        return CredentialMatch.NONE

    def forget(self, identity: str) -> None:
        """Drop cached verifications of a station; call on every credential change."""
        self._cache.drop(identity)
