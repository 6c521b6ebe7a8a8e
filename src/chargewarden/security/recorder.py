"""Security events go to one store and one log stream, whoever raised them (EVT-01/03), and
critical ones alert an operator (EVT-02).

Order matters: the event is stored first, then logged, then alerted. Neither the log nor the
alert may make the event, or the station's call that carried it, fail: an alert that cannot be
raised is logged and the call is answered all the same.

The log line is structured (logger ``chargewarden.security``, the fields in ``extra``), so the
JSON log format ships it to the operator's SIEM as one object. Critical events are logged at
WARNING, the rest at INFO.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.alerts import Alerts
from chargewarden.security.coalesce import AlertCoalescer
from chargewarden.security.events import CsmsEvent, classify, csms_event_critical
from chargewarden.store import Store, StoreError
from chargewarden.store.records import AlertSeverity, EventSource, SecurityEventRecord

log = logging.getLogger("chargewarden.security")

TECH_INFO_LIMIT = 255
ALERT_KIND_PREFIX = "security-event."


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= TECH_INFO_LIMIT else text[: TECH_INFO_LIMIT - 1] + "…"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_details(event: SecurityEventRecord, suppressed: int = 0) -> dict[str, Any]:
    """What an alert (and so the webhook body) says about the event behind it."""
    return {
        "eventId": event.id,
        "station": event.station_identity,
        "type": event.type,
        "source": str(event.source),
        "critical": event.critical,
        "techInfo": event.tech_info,
        "peer": event.peer_address,
        "ocppVersion": str(event.ocpp_version) if event.ocpp_version else None,
        "occurredAt": _iso(event.occurred_at),
        "receivedAt": _iso(event.received_at),
        # Repeats of this (source, station, type) since the previous alert that raised none.
        "suppressedRepeats": suppressed,
    }


def alert_message(event: SecurityEventRecord, suppressed: int) -> str:
    who = f"station {event.station_identity}" if event.station_identity else "an unknown peer"
    if event.source is EventSource.STATION:
        text = f"critical security event {event.type} reported by {who}"
    else:
        text = f"critical security event {event.type} about {who}"
        if event.peer_address:
            text += f" from {event.peer_address}"
    if event.tech_info:
        text += f": {event.tech_info}"
    if suppressed:
        text += f" ({suppressed} repeat(s) since the previous alert raised none)"
    return text


class SecurityRecorder:
    def __init__(
        self,
        store: Store,
        alerts: Alerts | None = None,
        *,
        coalesce_seconds: float = 0.0,
        coalescer: AlertCoalescer | None = None,
    ) -> None:
        self._store = store
        # None in tests and tools that only need events stored: then nothing alerts.
        self._alerts = alerts
        self._coalescer = coalescer or AlertCoalescer(coalesce_seconds)

    async def csms(
        self,
        event: CsmsEvent,
        *,
        identity: str | None,
        peer: str | None,
        reason: str,
        version: OcppVersion | None = None,
    ) -> SecurityEventRecord:
        record = SecurityEventRecord(
            type=str(event),
            source=EventSource.CSMS,
            critical=csms_event_critical(event),
            station_identity=identity,
            occurred_at=datetime.now(UTC),
            tech_info=_clip(reason),
            peer_address=peer,
            ocpp_version=version,
        )
        return await self._record(record, known=True)

    async def station(
        self,
        identity: str,
        version: OcppVersion,
        event_type: str,
        occurred_at: datetime,
        tech_info: str | None,
        peer: str | None,
    ) -> SecurityEventRecord:
        # Unknown types are stored and answered like the others (EVT-01); never critical.
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
        return await self._record(record, known=kind.known)

    async def _record(self, record: SecurityEventRecord, *, known: bool) -> SecurityEventRecord:
        try:
            stored = await self._store.events.add(record)
        except StoreError:
            # The SIEM still hears of it when the database does not; the caller sees the error.
            _log(record, known)
            raise
        _log(stored, known)
        if stored.critical and self._alerts is not None:
            await self._alert(stored)
        return stored

    async def _alert(self, event: SecurityEventRecord) -> None:
        key = (str(event.source), event.station_identity, event.type)
        suppressed = self._coalescer.admit(key)
        if suppressed is None:
            return
        try:
            assert self._alerts is not None
            await self._alerts.raise_alert(
                AlertSeverity.CRITICAL,
                ALERT_KIND_PREFIX + event.type,
                alert_message(event, suppressed),
                station=event.station_identity,
                details=event_details(event, suppressed),
            )
        except Exception:
            # The event is stored and logged; a broken alert path must not fail the call. The
            # next repeat tries again instead of being coalesced into an alert that never was.
            self._coalescer.discard(key)
            log.exception("cannot raise the alert for security event %s", event.id)


def _log(event: SecurityEventRecord, known: bool) -> None:
    """One line per event; the fields in ``extra`` become JSON keys (logs.JsonFormatter)."""
    if event.source is EventSource.STATION:
        text = "station security event %s station=%s%s"
        args: tuple[Any, ...] = (
            event.type,
            event.station_identity,
            "" if known else " (type not in the OCPP catalogue)",
        )
    else:
        text, args = (
            "security event %s station=%s peer=%s: %s",
            (event.type, event.station_identity, event.peer_address, event.tech_info),
        )
    log.log(
        logging.WARNING if event.critical else logging.INFO,
        text,
        *args,
        extra={
            "security_event": event.type,
            "event_id": event.id,
            "station": event.station_identity,
            "peer": event.peer_address,
            "critical": event.critical,
            "source": str(event.source),
            "known_type": known,
            "tech_info": event.tech_info,
            "ocpp_version": str(event.ocpp_version) if event.ocpp_version else None,
            "occurred_at": _iso(event.occurred_at),
        },
    )
