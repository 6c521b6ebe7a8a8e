"""A raw station that answers the CSMS's certificate calls from its own store, for API/CLI tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from cryptography import x509
from websockets.asyncio.client import ClientConnection

from chargewarden.pki.hashdata import certificate_hash_data
from chargewarden.rpc.versions import OcppVersion

V16 = OcppVersion.V16


class CallErrorAnswer(Exception):
    """Raised by a handler: the station answers with a CALLERROR."""


class AnsweringStation:
    """A raw station answering the CSMS's certificate calls from its own certificate store."""

    def __init__(self, ws: ClientConnection, version: OcppVersion) -> None:
        self.ws = ws
        self.version = version
        self.installed: list[tuple[str, dict[str, str]]] = []
        self.received: list[tuple[str, dict[str, Any]]] = []
        # Per action: a payload to answer instead, a CallErrorAnswer, or "silent".
        self.override: dict[str, Any] = {}
        self.signed = asyncio.Event()
        self._ids = 0
        self._pending: dict[str, asyncio.Future[list[Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._ids += 1
        unique_id = f"s{self._ids}"
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[unique_id] = future
        await self.ws.send(json.dumps([2, unique_id, action, payload]))
        frame = await asyncio.wait_for(future, 15)
        assert frame[0] == 3, frame
        return frame[2]

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    def actions(self) -> list[str]:
        return [action for action, _ in self.received]

    async def _read(self) -> None:
        async for message in self.ws:
            frame = json.loads(message)
            if frame[0] == 2:
                await self._answer(frame[1], frame[2], frame[3])
            elif frame[1] in self._pending:
                self._pending.pop(frame[1]).set_result(frame)

    async def _answer(self, unique_id: str, action: str, payload: dict[str, Any]) -> None:
        self.received.append((action, payload))
        override = self.override.get(action)
        if override == "silent":
            return
        try:
            if isinstance(override, BaseException):
                raise override
            answer = override if override is not None else self._handle(action, payload)
        except CallErrorAnswer as exc:
            await self.ws.send(json.dumps([4, unique_id, "InternalError", str(exc), {}]))
            return
        await self.ws.send(json.dumps([3, unique_id, answer]))

    def _handle(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "InstallCertificate":
            certificate = x509.load_pem_x509_certificate(payload["certificate"].encode())
            hash_data = certificate_hash_data(certificate).to_ocpp()
            self.installed.append((payload["certificateType"], hash_data))
            return {"status": "Accepted"}
        if action == "GetInstalledCertificateIds":
            wanted = payload.get("certificateType")
            found = [(t, h) for t, h in self.installed if wanted in (None, t)]
            if not found:
                return {"status": "NotFound"}
            if self.version is V16:
                return {"status": "Accepted", "certificateHashData": [h for _, h in found]}
            return {
                "status": "Accepted",
                "certificateHashDataChain": [
                    {"certificateType": t, "certificateHashData": h} for t, h in found
                ],
            }
        if action == "DeleteCertificate":
            wanted = payload["certificateHashData"]
            before = len(self.installed)
            self.installed = [(t, h) for t, h in self.installed if h != wanted]
            return {"status": "Accepted" if len(self.installed) < before else "NotFound"}
        if action in ("TriggerMessage", "ExtendedTriggerMessage"):
            return {"status": "Accepted"}
        if action == "CertificateSigned":
            self.signed.set()
            return {"status": "Accepted"}
        raise CallErrorAnswer(f"not implemented here: {action}")
