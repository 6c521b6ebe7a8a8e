"""Admission over real sockets: who gets in on profiles 0 and 1, who does not, and the event."""

from __future__ import annotations

import asyncio

import pytest
from conftest import Register
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed, InvalidStatus
from wsclient import BOOT_16, BOOT_201, basic, call, open_station

from chargewarden.app import RunningCsms
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.events import CsmsEvent
from chargewarden.store.db import build_engine

AL1000_KEY = "0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF"
AL1000_HEADER = "Basic QUwxMDAwOgABAgMEBQYH////////////////"


async def events_of(csms: RunningCsms, identity: str | None = None) -> list[str]:
    return [e.type for e in await csms.store.events.list(station=identity)]


async def refused(csms: RunningCsms, identity: str, authorization: str | None, **kw: object) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with open_station(csms, identity, authorization, **kw):
            pass
    return info.value.response.status_code


async def test_sec_04_ocppj16_al1000_example_header_authenticates(
    csms: RunningCsms, register: Register
) -> None:
    await register("AL1000", auth_key_hex=AL1000_KEY)
    async with open_station(csms, "AL1000", AL1000_HEADER) as ws:
        assert ws.subprotocol == "ocpp1.6"
        reply = await call(ws, "BootNotification", BOOT_16)
        assert reply[0] == 3 and reply[2]["status"] == "Accepted"


async def test_rpc_07_permessage_deflate_is_negotiated(
    csms: RunningCsms, register: Register
) -> None:
    await register("AL1000", auth_key_hex=AL1000_KEY)
    async with open_station(csms, "AL1000", AL1000_HEADER, compression="deflate") as ws:
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")


async def test_sec_04_hex_text_form_accepted_unless_strict(
    csms: RunningCsms, register: Register
) -> None:
    key = await register("HEX-1")
    async with open_station(csms, "HEX-1", basic("HEX-1", key.encode())) as ws:
        assert ws.subprotocol == "ocpp1.6"
    strict_key = await register("HEX-STRICT", strict=True)
    assert await refused(csms, "HEX-STRICT", basic("HEX-STRICT", strict_key.encode())) == 401
    async with open_station(csms, "HEX-STRICT", basic("HEX-STRICT", bytes.fromhex(strict_key))):
        pass
    assert CsmsEvent.INVALID_CREDENTIALS in await events_of(csms, "HEX-STRICT")


async def test_sec_04_binary_key_with_colon_and_ff_bytes(
    csms: RunningCsms, register: Register
) -> None:
    key = bytes(
        [
            0x3A,
            0xFF,
            0x00,
            0x3A,
            0x10,
            0x20,
            0x30,
            0x40,
            0x50,
            0x60,
            0x70,
            0x80,
            0x90,
            0xA0,
            0xB0,
            0xC0,
            0xD0,
            0xE0,
            0xFF,
            0x3A,
        ]
    )
    await register("BIN-1", auth_key_hex=key.hex())
    async with open_station(csms, "BIN-1", basic("BIN-1", key)) as ws:
        reply = await call(ws, "Heartbeat", {})
        assert reply[0] == 3 and "currentTime" in reply[2]


async def test_sec_04_201_password_with_colon(csms: RunningCsms, register: Register) -> None:
    password = "Pass:word*2026-OK_x+|@."  # passwordString allows ":"; split at the first one
    await register("CS-201", OcppVersion.V201, password=password)
    async with open_station(
        csms, "CS-201", basic("CS-201", password.encode()), ("ocpp2.0.1",)
    ) as ws:
        assert ws.subprotocol == "ocpp2.0.1"
        reply = await call(ws, "BootNotification", BOOT_201)
        assert reply[2]["status"] == "Accepted"


async def test_sec_03_wrong_password_401_challenge_and_event(
    csms: RunningCsms, register: Register
) -> None:
    await register("CP-W")
    with pytest.raises(InvalidStatus) as info:
        async with open_station(csms, "CP-W", basic("CP-W", b"wrong-password-bytes")):
            pass
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert b"password" not in response.body.lower()  # the station learns nothing specific
    assert await events_of(csms, "CP-W") == [CsmsEvent.INVALID_CREDENTIALS]


async def test_sec_03_username_differs_from_identity(csms: RunningCsms, register: Register) -> None:
    key = await register("CP-U")
    assert await refused(csms, "CP-U", basic("CP-OTHER", bytes.fromhex(key))) == 401
    assert await events_of(csms, "CP-U") == [CsmsEvent.USERNAME_MISMATCH]


async def test_sec_03_missing_authorization(csms: RunningCsms, register: Register) -> None:
    await register("CP-M")
    assert await refused(csms, "CP-M", None) == 401
    assert await events_of(csms, "CP-M") == [CsmsEvent.MISSING_CREDENTIALS]


async def test_rpc_02_unknown_identity_404_and_event(csms: RunningCsms) -> None:
    assert await refused(csms, "NOBODY", basic("NOBODY", b"x" * 20)) == 404
    assert await events_of(csms, "NOBODY") == [CsmsEvent.UNKNOWN_STATION]


async def test_rpc_02_identity_is_percent_decoded(csms: RunningCsms, register: Register) -> None:
    key = await register("CP 7/ä")
    async with open_station(csms, "CP%207%2F%C3%A4", basic("CP 7/ä", bytes.fromhex(key))) as ws:
        assert ws.subprotocol == "ocpp1.6"


async def test_rpc_02_invalid_identity_is_refused(csms: RunningCsms) -> None:
    assert await refused(csms, "A" * 49, basic("A" * 49, b"x" * 20)) == 404
    assert await refused(csms, "bad%3Aid", None) == 404
    assert (await csms.store.events.list())[0].type == CsmsEvent.INVALID_IDENTITY


async def test_sec_01_profile_2_station_on_ws_is_refused(
    csms: RunningCsms, register: Register
) -> None:
    key = await register("CP-TLS", profile=2)
    assert await refused(csms, "CP-TLS", basic("CP-TLS", bytes.fromhex(key))) == 401
    assert await events_of(csms, "CP-TLS") == [CsmsEvent.PROFILE_TRANSPORT_MISMATCH]


async def test_sec_02_profile_0_needs_no_credentials_when_enabled(
    csms: RunningCsms, register: Register
) -> None:
    await register("CP-0", profile=0)
    async with open_station(csms, "CP-0", None) as ws:
        reply = await call(ws, "BootNotification", BOOT_16)
        assert reply[2]["status"] == "Accepted"


async def test_rpc_01_no_common_subprotocol_completes_handshake_then_closes(
    csms: RunningCsms, register: Register
) -> None:
    key = await register("CP-SP")
    async with open_station(
        csms, "CP-SP", basic("CP-SP", bytes.fromhex(key)), ("ocpp9", "chat")
    ) as ws:
        assert ws.response.status_code == 101
        assert "Sec-WebSocket-Protocol" not in ws.response.headers
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert await events_of(csms, "CP-SP") == [CsmsEvent.NO_COMMON_SUBPROTOCOL]


async def test_rpc_01_url_path_does_not_pick_the_version(
    csms: RunningCsms, register: Register
) -> None:
    key = await register("CP-V")
    async with open_station(csms, "CP-V", basic("CP-V", bytes.fromhex(key)), ("ocpp2.0.1",)) as ws:
        assert ws.subprotocol is None
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert await events_of(csms, "CP-V") == [CsmsEvent.VERSION_MISMATCH]


async def test_newest_connection_wins_and_older_is_closed(
    csms: RunningCsms, register: Register
) -> None:
    key = await register("CP-TWICE")
    header = basic("CP-TWICE", bytes.fromhex(key))
    async with open_station(csms, "CP-TWICE", header) as first:
        async with open_station(csms, "CP-TWICE", header) as second:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(first.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
            reply = await call(second, "Heartbeat", {})
            assert reply[0] == 3
            assert csms.registry.get("CP-TWICE") is not None
    for _ in range(50):
        if csms.registry.get("CP-TWICE") is None:
            break
        await asyncio.sleep(0.02)
    assert csms.registry.get("CP-TWICE") is None


async def test_store_unavailable_fails_closed_with_503(
    csms: RunningCsms, register: Register
) -> None:
    key = await register("CP-DB")
    # Break the real database underneath the gateway: every station lookup now fails.
    engine = build_engine(csms.settings.effective_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE stations RENAME TO stations_gone"))
    finally:
        await engine.dispose()
    assert await refused(csms, "CP-DB", basic("CP-DB", bytes.fromhex(key))) == 503
