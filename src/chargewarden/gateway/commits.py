"""What an admitted connection settles for good: a pending credential or profile becomes the
station's only one once the station has used it (PWD-01/02, SEC-11)."""

from __future__ import annotations

import logging

from chargewarden.store import Store
from chargewarden.store.records import AuditRecord, StationRecord

log = logging.getLogger("chargewarden.gateway.server")


async def commit_pending_credential(store: Store, station: StationRecord, pending: str) -> None:
    # The station proved it holds the new secret, so it applied the change even if its answer
    # never reached us (timeout, CSMS restart): from now on only the new one counts.
    if not await store.stations.promote_pending_credential(station.identity, pending):
        return  # already promoted by the rotation, or replaced meanwhile
    await store.audit.add(
        AuditRecord(
            actor="system",
            action="station.credential.committed",
            target=station.identity,
            details={"by": "connection with the new credential"},
        )
    )
    log.info(
        "station %s connected with its new credential; the old one is refused", station.identity
    )


async def commit_pending_profile(store: Store, station: StationRecord, profile: int) -> None:
    await store.stations.update(station.identity, security_profile=profile, pending_profile=None)
    await store.audit.add(
        AuditRecord(
            actor="system",
            action="station.profile.committed",
            target=station.identity,
            details={"from": station.security_profile, "to": profile},
        )
    )
    log.info(
        "station %s now on security profile %s; lower profiles are refused",
        station.identity,
        profile,
    )
