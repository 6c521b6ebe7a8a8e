"""Security events go to one store and one log stream, whoever raised them (EVT-01/03).

The log line is structured (logger `chargewarden.security`), so a JSON log formatter or a
syslog handler ships it to the operator's SIEM. Critical events are logged at WARNING.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.events import CsmsEvent, classify, csms_event_critical
from chargewarden.store import Store
from chargewarden.store.records import EventSource, SecurityEventRecord

log = logging.getLogger("chargewarden.security")

TECH_INFO_LIMIT = 255


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= TECH_INFO_LIMIT else text[: TECH_INFO_LIMIT - 1] + "…"


class SecurityRecorder:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def csms(
        self,
        event: CsmsEvent,
        *,
        identity: str | None,
        peer: str | None,
        reason: str,
        version: OcppVersion | None = None,
    ) -> SecurityEventRecord:
        critical = csms_event_critical(event)
        record = SecurityEventRecord(
            type=str(event),
            source=EventSource.CSMS,
            critical=critical,
            station_identity=identity,
            occurred_at=datetime.now(UTC),
            tech_info=_clip(reason),
            peer_address=peer,
            ocpp_version=version,
        )
        log.log(
            logging.WARNING if critical else logging.INFO,
            "security event %s station=%s peer=%s: %s",
            event,
            identity,
            peer,
            record.tech_info,
            extra={
                "security_event": str(event),
                "station": identity,
                "peer": peer,
                "critical": critical,
                "source": "csms",
            },
        )
        return await self._store.events.add(record)

    async def station(
        self,
        identity: str,
        version: OcppVersion,
        event_type: str,
        occurred_at: datetime,
        tech_info: str | None,
        peer: str | None,
    ) -> SecurityEventRecord:
        kind = classify(version, event_type)
        record = SecurityEventRecord(
            type=event_type,
            source=EventSource.STATION,
            critical=kind.critical,
            station_identity=identity,
            occurred_at=occurred_at,
            tech_info=_clip(tech_info),
            peer_address=peer,
            ocpp_version=version,
        )
        log.log(
            logging.WARNING if kind.critical else logging.INFO,
            "station security event %s station=%s%s",
            event_type,
            identity,
            "" if kind.known else " (type not in the OCPP catalogue)",
            extra={
                "security_event": event_type,
                "station": identity,
                "critical": kind.critical,
                "source": "station",
            },
        )
        return await self._store.events.add(record)
