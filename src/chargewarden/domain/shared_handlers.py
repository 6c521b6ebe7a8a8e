"""Station calls whose payloads are the same in OCPP 1.6 and 2.0.1, translated once."""

from __future__ import annotations

from typing import Any

from chargewarden.domain.station_calls import (
    BootDecision,
    StationCalls,
    StationSession,
    format_time,
    parse_time,
)
from chargewarden.rpc.router import Handler
from chargewarden.rpc.versions import OcppVersion

Payload = dict[str, Any]


def boot_answer(decision: BootDecision) -> Payload:
    """BootNotification's answer has the same three fields in 1.6 and 2.0.1."""
    return {
        "status": decision.status.value,
        "currentTime": format_time(decision.current_time),
        "interval": decision.interval,
    }


def shared_handlers(calls: StationCalls, session: StationSession) -> dict[str, Handler]:
    async def heartbeat(payload: Payload) -> Payload:
        return {"currentTime": format_time(await calls.heartbeat(session))}

    async def security_event_notification(payload: Payload) -> Payload:
        await calls.security_event(
            session,
            event_type=payload["type"],
            timestamp=parse_time(payload["timestamp"]),
            tech_info=payload.get("techInfo"),
        )
        return {}

    async def sign_certificate(payload: Payload) -> Payload:
        # 1.6 has no certificateType: it only ever signs the charge point certificate.
        accepted = await calls.sign_certificate(
            session, csr=payload["csr"], certificate_type=payload.get("certificateType")
        )
        return {"status": "Accepted" if accepted else "Rejected"}

    async def firmware_status_notification(payload: Payload) -> Payload:
        # 1.6 SignedFirmwareStatusNotification and 2.0.1 FirmwareStatusNotification agree.
        await calls.firmware_status(
            session, status=payload["status"], request_id=payload.get("requestId")
        )
        return {}

    async def log_status_notification(payload: Payload) -> Payload:
        await calls.log_status(
            session, status=payload["status"], request_id=payload.get("requestId")
        )
        return {}

    async def data_transfer(payload: Payload) -> Payload:
        # No vendor extensions are configured; the station learns that, not a CALLERROR.
        return {"status": "UnknownVendorId"}

    handlers: dict[str, Handler] = {
        "Heartbeat": heartbeat,
        "SecurityEventNotification": security_event_notification,
        "DataTransfer": data_transfer,
        "SignCertificate": sign_certificate,
        "LogStatusNotification": log_status_notification,
    }
    name = (
        "SignedFirmwareStatusNotification"
        if session.version is OcppVersion.V16
        else ("FirmwareStatusNotification")
    )
    handlers[name] = firmware_status_notification
    return handlers
