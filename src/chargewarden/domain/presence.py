"""When each station was last heard from, written behind.

Every connect and heartbeat updates last_seen. Written through, a reconnect storm of thousands
of stations is thousands of commits competing with the handshakes (bench/tls.py); written
behind, it is one transaction per interval. Nothing a station is promised depends on
last_seen, so a crash loses at most one interval of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from chargewarden.store import Store

log = logging.getLogger(__name__)


class PresenceRecorder:
    def __init__(self, store: Store, interval_seconds: float = 2.0) -> None:
        self._store = store
        self._interval = interval_seconds
        self._pending: dict[str, datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def seen(self, identity: str, at: datetime) -> None:
        self._pending[identity] = at
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._interval)
        await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, {}
        try:
            await self._store.stations.touch_many(batch)
        except Exception:
            # Keep the newest times for the next attempt rather than lose them.
            for identity, at in batch.items():
                self._pending.setdefault(identity, at)
            log.exception("could not record %d stations' last_seen; will retry", len(batch))

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pending:
            await self.flush()
