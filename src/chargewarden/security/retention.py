"""Retention: security events and alerts older than configured are deleted (EVT-01..03).

The only way either leaves the store. Runs at start and then every ``purge_check_seconds``;
deletes in bounded batches, each its own short transaction, so the gateway keeps storing
events meanwhile (SQLite has a single writer). A failing pass is logged and retried on the
next tick; it never ends the loop. With several nodes each runs it: deletes are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chargewarden.config import EventSettings
from chargewarden.store import Store

log = logging.getLogger("chargewarden.retention")

BATCH = 1000
# Batches per table and pass: a huge backlog (retention just shortened) is worked off over
# several passes instead of one that never ends.
MAX_BATCHES = 1000
# Expired file-transfer tokens are kept this long, so a late download or upload is still told
# (and recorded as) "expired" rather than "unknown", then deleted: they are worth nothing.
TOKEN_KEEP = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Purged:
    events: int = 0
    alerts: int = 0
    tokens: int = 0


class Retention:
    def __init__(
        self,
        store: Store,
        settings: EventSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch: int = BATCH,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._batch = batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("retention pass failed; retrying in %ss",
                              self._settings.purge_check_seconds)
            await asyncio.sleep(self._settings.purge_check_seconds)

    async def tick(self) -> Purged:
        """One pass over both tables; returns (and logs) how many rows went."""
        now = self._clock()
        events = alerts = 0
        if self._settings.retention_days > 0:
            events = await self._purge(
                self._store.events.purge_older_than,
                now - timedelta(days=self._settings.retention_days),
            )
        if self._settings.alert_retention_days > 0:
            alerts = await self._purge(
                self._store.alerts.purge_older_than,
                now - timedelta(days=self._settings.alert_retention_days),
            )
        tokens = await self._store.file_tokens.purge_expired(now - TOKEN_KEEP)
        if events or alerts:
            log.info(
                "retention removed %d security event(s) older than %d days and %d alert(s) "
                "older than %d days",
                events,
                self._settings.retention_days,
                alerts,
                self._settings.alert_retention_days,
                extra={"purged_events": events, "purged_alerts": alerts},
            )
        return Purged(events=events, alerts=alerts, tokens=tokens)

    async def _purge(
        self, purge: Callable[..., Awaitable[int]], cutoff: datetime
    ) -> int:
        total = 0
        for _ in range(MAX_BATCHES):
            removed = await purge(cutoff, batch=self._batch)
            total += removed
            if removed < self._batch:
                break
            # Let the station calls waiting for the database in between batches.
            await asyncio.sleep(0)
        return total
