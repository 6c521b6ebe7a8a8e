"""OCPP 2.0.1: station-initiated calls translated to the domain."""

from __future__ import annotations

from typing import Any

from chargewarden.domain.station_calls import StationCalls, StationSession, format_time, parse_time
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
        return {
            "status": decision.status.value,
            "currentTime": format_time(decision.current_time),
            "interval": decision.interval,
        }

    async def heartbeat(payload: Payload) -> Payload:
        return {"currentTime": format_time(await calls.heartbeat(session))}

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

    async def security_event_notification(payload: Payload) -> Payload:
        await calls.security_event(
            session,
            event_type=payload["type"],
            timestamp=parse_time(payload["timestamp"]),
            tech_info=payload.get("techInfo"),
        )
        return {}

    async def data_transfer(payload: Payload) -> Payload:
        return {"status": "UnknownVendorId"}

    return {
        "BootNotification": boot_notification,
        "Heartbeat": heartbeat,
        "StatusNotification": status_notification,
        "SecurityEventNotification": security_event_notification,
        "DataTransfer": data_transfer,
    }
