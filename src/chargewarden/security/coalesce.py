"""Alert coalescing: one alert per (source, station, type) and window, repeats counted (EVT-02).

Pure apart from the clock, which is injected. A station that reboots in a loop, or a peer that
keeps presenting a revoked certificate, sends the same critical event again and again; every
one is stored, but the operator is paged once per window, and the next alert says how many
repeats it stood for. The window starts at the alert, not at the last repeat, so a steady
stream of repeats still raises one alert per window instead of none.

State is per process: with several CSMS nodes each may alert once per window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

log = logging.getLogger("chargewarden.alerts")

# Distinct keys kept at most; far above stations × critical types of a real fleet, so only a
# flood of distinct keys ever reaches it (and then alerting again is the safe side).
MAX_KEYS = 10_000


@dataclass(slots=True)
class _Window:
    alerted_at: float
    suppressed: int = 0


class AlertCoalescer:
    def __init__(
        self,
        window_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self._window = window_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._keys: dict[Hashable, _Window] = {}

    def admit(self, key: Hashable) -> int | None:
        """None: a repeat within the window, raise no alert. Otherwise raise one; the number
        is how many repeats of this key were suppressed since its previous alert."""
        if self._window <= 0:
            return 0
        now = self._clock()
        window = self._keys.get(key)
        if window is not None and now - window.alerted_at < self._window:
            window.suppressed += 1
            return None
        suppressed = window.suppressed if window is not None else 0
        # Re-inserted so the dict stays ordered by last alert: the oldest go first when full.
        self._keys.pop(key, None)
        self._keys[key] = _Window(alerted_at=now)
        if len(self._keys) > self._max_keys:
            self._prune(now)
        return suppressed

    def discard(self, key: Hashable) -> None:
        """Forget a key whose alert could not be raised, so its next repeat tries again."""
        self._keys.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [k for k, w in self._keys.items() if now - w.alerted_at >= self._window]:
            self._forget(key)
        while len(self._keys) > self._max_keys:
            self._forget(next(iter(self._keys)))

    def _forget(self, key: Hashable) -> None:
        window = self._keys.pop(key)
        if window.suppressed:
            # Their count would have gone into the key's next alert; say it here instead.
            log.warning(
                "%d repeat(s) of %s raised no alert of their own (coalesced)",
                window.suppressed,
                key,
                extra={"coalesced_key": str(key), "suppressed_repeats": window.suppressed},
            )

    def __len__(self) -> int:
        return len(self._keys)
