"""OCPP 2.0.1: station-initiated calls translated to the domain."""

from __future__ import annotations

from typing import Any

from chargewarden.domain.shared_handlers import boot_answer, shared_handlers
from chargewarden.domain.station_calls import StationCalls, StationSession, parse_time
from chargewarden.rpc.router import Handler

Payload = dict[str, Any]


def station_handlers(calls: StationCalls, session: StationSession) -> dict[str, Handler]:
    async def boot_notification(payload: Payload) -> Payload:
        station = payload["chargingStation"]
        decision = await calls.boot(
            session,
            vendor=station["vendorName"],
            model=station["model"],
            serial_number=station.get("serialNumber"),
            firmware_version=station.get("firmwareVersion"),
        )
        return boot_answer(decision)

    async def status_notification(payload: Payload) -> Payload:
        await calls.connector_status(
            session,
            evse_id=payload["evseId"],
            connector_id=payload["connectorId"],
            status=payload["connectorStatus"],
            error_code=None,
            timestamp=parse_time(payload["timestamp"]),
        )
        return {}

    return shared_handlers(calls, session) | {
        "BootNotification": boot_notification,
        "StatusNotification": status_notification,
    }
