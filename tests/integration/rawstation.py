"""A raw WebSocket station for certificate tests: every frame under the test's control."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tlskit import CPO
from websockets.asyncio.client import ClientConnection
from wsclient import BOOT_16, BOOT_201, basic, open_station

from chargewarden.app import RunningCsms
from chargewarden.rpc.versions import OcppVersion
from chargewarden.stations import NewStation, register_station
from chargewarden.store import Store

AUTH_KEY = "9F3A61C2D4E5F60718293A4B5C6D7E8F90A1B2C3"
PASSWORD = "Csr-Station-Pass-42"
V16, V201 = OcppVersion.V16, OcppVersion.V201
SUBPROTOCOL = {V16: "ocpp1.6", V201: "ocpp2.0.1"}
BOOT = {V16: BOOT_16, V201: BOOT_201}


class RawStation:
    """Just enough of a station to send CALLs and to read and answer the CSMS's CALLs.

    The CSMS may send a CALL while the station waits for an answer (both directions have one
    CALL in flight): such CALLs are kept for ``expect_call``.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = 0
        self._calls: list[list[Any]] = []

    async def _frame(self, timeout: float) -> list[Any]:
        frame: list[Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        self._ids += 1
        unique_id = f"s{self._ids}"
        await self.ws.send(json.dumps([2, unique_id, action, payload]))
        while True:
            frame = await self._frame(15)
            if frame[0] == 2:
                self._calls.append(frame)
            elif frame[1] == unique_id:
                return frame

    async def expect_call(self, action: str, timeout: float = 15.0) -> tuple[str, dict[str, Any]]:
        frame = self._calls.pop(0) if self._calls else await self._frame(timeout)
        assert frame[0] == 2 and frame[2] == action, frame
        return frame[1], frame[3]

    async def answer(self, unique_id: str, payload: dict[str, Any]) -> None:
        await self.ws.send(json.dumps([3, unique_id, payload]))

    async def nothing_for(self, seconds: float) -> None:
        assert not self._calls, self._calls
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(self.ws.recv(), seconds)


def make_csr(
    cn: str,
    o: str | None = CPO,
    *,
    key: Any = None,
    ca: bool = False,
) -> tuple[str, Any]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if o is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


def tampered(pem: str) -> str:
    """The same CSR with one byte of its signature flipped: parsable, but not authentic."""
    csr = x509.load_pem_x509_csr(pem.encode())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01
    broken = x509.load_der_x509_csr(bytes(der))
    return broken.public_bytes(serialization.Encoding.PEM).decode()


async def register_test_station(
    store: Store, identity: str, version: OcppVersion, profile: int = 1
) -> None:
    """Register a station with this module's secret (profiles 1 and 2) or none (profile 3)."""
    with_secret = profile in (1, 2)
    await register_station(
        store,
        NewStation(
            identity=identity,
            ocpp_version=version,
            security_profile=profile,
            auth_key_hex=AUTH_KEY if with_secret and version is V16 else None,
            password=PASSWORD if with_secret and version is V201 else None,
            generate_secret=False,
            serial_number=None,
            cpo_name=None,
            strict_password=False,
        ),
        actor="test",
    )


async def add_station(csms: RunningCsms, identity: str, version: OcppVersion) -> None:
    await register_test_station(csms.store, identity, version)


def connect(csms: RunningCsms, identity: str, version: OcppVersion) -> Any:
    secret = bytes.fromhex(AUTH_KEY) if version is V16 else PASSWORD.encode()
    return open_station(csms, identity, basic(identity, secret), (SUBPROTOCOL[version],))


async def boot(station: RawStation, version: OcppVersion) -> None:
    reply = await station.call("BootNotification", BOOT[version])
    assert reply[2]["status"] == "Accepted"
