"""Payloads of the station's own routine calls, per version (pure functions, no state)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.values import ocpp_timestamp

Payload = dict[str, Any]


def boot_notification(
    config: StationConfig, reason: str, firmware_version: str | None = None
) -> tuple[str, Payload]:
    """BootNotification; `reason` (2.0.1 BootReasonEnumType) is not part of a 1.6 boot.
    `firmware_version`: what the station runs now (after an update), else the provisioned."""
    serial = config.boot_serial_number()
    firmware = config.firmware_version if firmware_version is None else firmware_version
    if config.ocpp_version is OcppVersion.V16:
        payload: Payload = {
            "chargePointVendor": config.vendor,
            "chargePointModel": config.model,
            "firmwareVersion": firmware,
        }
        if serial is not None:
            payload["chargePointSerialNumber"] = serial
        return "BootNotification", payload
    station: Payload = {
        "model": config.model,
        "vendorName": config.vendor,
        "firmwareVersion": firmware,
    }
    if serial is not None:
        station["serialNumber"] = serial
    return "BootNotification", {"reason": reason, "chargingStation": station}


def status_notifications(
    config: StationConfig, now: datetime, connector: int | None = None
) -> list[tuple[str, Payload]]:
    """An "Available" StatusNotification per connector (1.6) / per EVSE's connector 1 (2.0.1);
    `connector` (1.6 connectorId, 2.0.1 evseId) narrows it to one."""
    ids = [connector] if connector is not None else range(1, config.connector_count + 1)
    stamp = ocpp_timestamp(now)
    if config.ocpp_version is OcppVersion.V16:
        return [
            (
                "StatusNotification",
                {
                    "connectorId": i,
                    "errorCode": "NoError",
                    "status": "Available",
                    "timestamp": stamp,
                },
            )
            for i in ids
        ]
    return [
        (
            "StatusNotification",
            {"timestamp": stamp, "connectorStatus": "Available", "evseId": i, "connectorId": 1},
        )
        for i in ids
    ]
