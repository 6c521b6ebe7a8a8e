"""last_seen is written behind, in one transaction per interval, and never lost on close."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chargewarden.domain.presence import PresenceRecorder
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.records import StationRecord


async def test_presence_is_batched_and_flushed_on_close(store: Any) -> None:
    for identity in ("CP-1", "CP-2"):
        await store.stations.add(
            StationRecord(identity=identity, ocpp_version=OcppVersion.V16, security_profile=0)
        )
    presence = PresenceRecorder(store, interval_seconds=3600)
    first = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    later = datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
    presence.seen("CP-1", first)
    presence.seen("CP-1", later)  # the newest time wins
    presence.seen("CP-2", first)
    presence.seen("UNKNOWN", first)  # a deleted station is skipped, not an error
    assert (await store.stations.get("CP-1")).last_seen is None  # not yet written
    await presence.close()
    assert (await store.stations.get("CP-1")).last_seen == later
    assert (await store.stations.get("CP-2")).last_seen == first
