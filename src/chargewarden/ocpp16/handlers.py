"""OCPP 1.6J: station-initiated calls translated to the domain."""

from __future__ import annotations

from typing import Any

from chargewarden.domain.shared_handlers import boot_answer, shared_handlers
from chargewarden.domain.station_calls import StationCalls, StationSession, parse_time
from chargewarden.rpc.router import Handler

Payload = dict[str, Any]


def station_handlers(calls: StationCalls, session: StationSession) -> dict[str, Handler]:
    async def boot_notification(payload: Payload) -> Payload:
        decision = await calls.boot(
            session,
            vendor=payload["chargePointVendor"],
            model=payload["chargePointModel"],
            serial_number=payload.get("chargePointSerialNumber")
            or payload.get("chargeBoxSerialNumber"),
            firmware_version=payload.get("firmwareVersion"),
        )
        return boot_answer(decision)

    async def status_notification(payload: Payload) -> Payload:
        # 1.6 has no EVSE level: connector 0 is the charge point itself.
        await calls.connector_status(
            session,
            evse_id=payload["connectorId"],
            connector_id=payload["connectorId"],
            status=payload["status"],
            error_code=payload["errorCode"],
            timestamp=parse_time(payload.get("timestamp")),
        )
        return {}

    # The CSMS never sends the unsigned UpdateFirmware / GetDiagnostics of plain 1.6
    # (whitepaper L01.FR.20), but stations report on ones started locally (or Idle at boot):
    # logged, matched to no request.
    async def unsigned_firmware_status(payload: Payload) -> Payload:
        await calls.firmware_status(session, status=payload["status"], request_id=None)
        return {}

    async def diagnostics_status(payload: Payload) -> Payload:
        await calls.log_status(session, status=payload["status"], request_id=None)
        return {}

    return shared_handlers(calls, session) | {
        "BootNotification": boot_notification,
        "StatusNotification": status_notification,
        "FirmwareStatusNotification": unsigned_firmware_status,
        "DiagnosticsStatusNotification": diagnostics_status,
    }
