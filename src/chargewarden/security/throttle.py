"""Admission throttling after failed Basic-auth attempts (SEC-03, SEC-13).

Pure: the clock is injected, nothing sleeps here. The gateway asks `check()` before it verifies
a password, waits `delay` if told to, and reports the outcome with `record_failure()` /
`record_success()`.

Two counters, with different jobs:

* Per peer address: guessing from one address is slowed (exponential delay) and then blocked
  for `block_seconds`. This also bounds the Argon2 CPU an address can make us spend.
* Per identity: failures from any addresses. Past the threshold the identity is throttled for a
  SHORT time and only for peers that themselves failed for it recently. A station with the right
  password on a clean address is never held back by someone else's failures, and a station that
  failed itself waits at most `identity_block_seconds` (no lock-out of a real station by an
  attacker who knows its identity).

Peers behind one NAT share a counter: tune `block_after` up for fleets on a private APN/VPN.
IPv6 peers are counted per /64, because one host usually owns a whole /64.

Memory is bounded: state is only created by failures, entries expire, and at most
`max_tracked` peers and identities are kept (least recently active dropped first).
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

# Expired entries removed per call; keeps each call O(1) amortised without a background task.
_SWEEP_PER_CALL = 64


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    window: float = 60.0  # failures older than this are forgotten
    slowdown_after: int = 5  # per-peer failures before delays start
    base_delay: float = 0.25
    max_delay: float = 5.0
    block_after: int = 20  # per-peer failures that start a block
    block_seconds: float = 300.0
    identity_block_after: int = 10  # failures for one identity, from any peers
    identity_block_seconds: float = 15.0
    max_tracked: int = 100_000

    def __post_init__(self) -> None:
        if min(self.window, self.base_delay, self.max_delay, self.block_seconds) <= 0:
            raise ValueError("throttle times must be positive")
        if self.identity_block_seconds <= 0:
            raise ValueError("identity_block_seconds must be positive")
        if not 1 <= self.slowdown_after <= self.block_after:
            raise ValueError("need 1 <= slowdown_after <= block_after")
        if self.identity_block_after < 1 or self.max_tracked < 1:
            raise ValueError("identity_block_after and max_tracked must be at least 1")


@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    allowed: bool
    delay: float = 0.0  # seconds to wait before verifying (allowed only)
    retry_after: float = 0.0  # seconds until a refused peer may try again
    reason: str = "ok"


ALLOW = ThrottleDecision(allowed=True)


@dataclass(slots=True)
class _PeerState:
    # (time, identity) of recent failures; never longer than block_after.
    failures: deque[tuple[float, str]] = field(default_factory=deque)
    blocked_until: float = 0.0


@dataclass(slots=True)
class _IdentityState:
    # (time, peer key) of recent failures; never longer than identity_block_after.
    failures: deque[tuple[float, str]] = field(default_factory=deque)
    blocked_until: float = 0.0


_S = TypeVar("_S", _PeerState, _IdentityState)


def peer_key(peer: str) -> str:
    """Normalise an address (without port): IPv4-mapped IPv6 → IPv4, other IPv6 → its /64."""
    try:
        address = ipaddress.ip_address(peer.strip("[]"))
    except ValueError:
        return peer
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class AdmissionThrottle:
    def __init__(
        self,
        policy: ThrottlePolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or ThrottlePolicy()
        self._clock = clock
        self._peers: OrderedDict[str, _PeerState] = OrderedDict()
        self._identities: OrderedDict[str, _IdentityState] = OrderedDict()

    def __len__(self) -> int:
        """Tracked peers plus identities (for tests and metrics)."""
        return len(self._peers) + len(self._identities)

    # ---- queries -------------------------------------------------------------------------

    def check(self, identity: str, peer: str) -> ThrottleDecision:
        now = self._clock()
        self._sweep(now)
        key = peer_key(peer)
        state = self._peers.get(key)
        if state is not None:
            self._prune(state.failures, now)
            if state.blocked_until > now:
                return ThrottleDecision(
                    allowed=False,
                    retry_after=state.blocked_until - now,
                    reason="address blocked after repeated authentication failures",
                )
        ident = self._identities.get(identity)
        if (
            ident is not None
            and ident.blocked_until > now
            and state is not None
            and any(name == identity for _, name in state.failures)
        ):
            return ThrottleDecision(
                allowed=False,
                retry_after=ident.blocked_until - now,
                reason="identity briefly throttled after repeated failures, this address too",
            )
        if state is None:
            return ALLOW
        recent = len(state.failures)
        if recent < self.policy.slowdown_after:
            return ALLOW
        delay = self.policy.base_delay * 2.0 ** (recent - self.policy.slowdown_after)
        return ThrottleDecision(
            allowed=True,
            delay=min(self.policy.max_delay, delay),
            reason=f"slowed down after {recent} recent authentication failures",
        )

    # ---- outcomes ------------------------------------------------------------------------

    def record_failure(self, identity: str, peer: str) -> bool:
        """Count a failed attempt. True exactly when this failure starts a new block."""
        now = self._clock()
        self._sweep(now)
        key = peer_key(peer)
        policy = self.policy
        started = False

        state = self._touch(self._peers, key, _PeerState)
        if state.blocked_until > now:
            return False
        self._prune(state.failures, now)
        state.failures.append((now, identity))
        if len(state.failures) >= policy.block_after:
            state.blocked_until = now + policy.block_seconds
            # The block replaces the count; afterwards the address starts from zero.
            state.failures.clear()
            started = True

        ident = self._touch(self._identities, identity, _IdentityState)
        if ident.blocked_until <= now:
            self._prune(ident.failures, now)
            ident.failures.append((now, key))
            if len(ident.failures) >= policy.identity_block_after:
                ident.blocked_until = now + policy.identity_block_seconds
                ident.failures.clear()
                started = True

        self._evict()
        return started

    def record_success(self, identity: str, peer: str) -> None:
        """The peer proved it holds the identity's credential: forget its failures for it."""
        key = peer_key(peer)
        state = self._peers.get(key)
        if state is not None:
            kept = [(t, name) for t, name in state.failures if name != identity]
            state.failures = deque(kept)
        ident = self._identities.get(identity)
        if ident is not None:
            ident.failures = deque((t, p) for t, p in ident.failures if p != key)

    # ---- bookkeeping ---------------------------------------------------------------------

    def _prune(self, failures: deque[tuple[float, str]], now: float) -> None:
        horizon = now - self.policy.window
        while failures and failures[0][0] <= horizon:
            failures.popleft()

    @staticmethod
    def _touch(table: OrderedDict[str, _S], key: str, factory: Callable[[], _S]) -> _S:
        entry = table.get(key)
        if entry is None:
            entry = factory()
            table[key] = entry
        else:
            table.move_to_end(key)
        return entry

    def _expired(self, state: _PeerState | _IdentityState, now: float) -> bool:
        if state.blocked_until > now:
            return False
        return not state.failures or state.failures[-1][0] <= now - self.policy.window

    def _sweep(self, now: float) -> None:
        for table in (self._peers, self._identities):
            for _ in range(_SWEEP_PER_CALL):
                if not table:
                    break
                oldest_key = next(iter(table))
                if not self._expired(table[oldest_key], now):
                    break
                del table[oldest_key]

    def _evict(self) -> None:
        # Least recently active first. Under a flood of fresh addresses an old block can be
        # dropped early; that costs at most one more round of slow Argon2 checks for it.
        cap = self.policy.max_tracked
        while len(self._peers) > cap:
            self._peers.popitem(last=False)
        while len(self._identities) > cap:
            self._identities.popitem(last=False)
