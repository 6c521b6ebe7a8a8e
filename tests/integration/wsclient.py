"""Raw WebSocket station helpers for gateway tests: exact control over headers and frames."""

from __future__ import annotations

import base64
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from chargewarden.app import RunningCsms


def basic(username: str | bytes, password: bytes) -> str:
    user = username.encode() if isinstance(username, str) else username
    return "Basic " + base64.b64encode(user + b":" + password).decode("ascii")


def station_url(csms: RunningCsms, identity: str) -> str:
    return f"{csms.ws_url}/{identity}"


def open_station(
    csms: RunningCsms,
    identity: str,
    authorization: str | None,
    subprotocols: tuple[str, ...] = ("ocpp1.6",),
    **kwargs: Any,
) -> Any:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return connect(
        station_url(csms, identity),
        subprotocols=list(subprotocols),  # type: ignore[arg-type]
        additional_headers=headers,
        open_timeout=5,
        **kwargs,
    )


async def call(
    ws: ClientConnection, action: str, payload: dict[str, Any], uid: str = "1"
) -> list[Any]:
    await ws.send(json.dumps([2, uid, action, payload]))
    return json.loads(await ws.recv())


BOOT_16 = {"chargePointVendor": "TestVendor", "chargePointModel": "T1"}
BOOT_201 = {"reason": "PowerUp", "chargingStation": {"model": "T1", "vendorName": "TestVendor"}}
