"""Profiles 2 and 3 over real TLS on loopback, both OCPP versions, with the stored event."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from tlskit import CPO, PASSWORD, client_context, foreign_ca, pem, station_certificate, tls_settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from wsclient import BOOT_16, BOOT_201, basic, call

from chargewarden.app import RunningCsms, start_csms
from chargewarden.pki.material import csms_root_pem
from chargewarden.pki.provision import provision_station
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.events import CsmsEvent
from chargewarden.stations import NewStation, register_station

V16, V201 = OcppVersion.V16, OcppVersion.V201
# What a client sees when the server ends the TLS handshake: an alert, a reset, or a close.
HANDSHAKE_REFUSED = (OSError, InvalidHandshake, ConnectionClosed, ssl.SSLError)
SUBPROTOCOL = {V16: "ocpp1.6", V201: "ocpp2.0.1"}
BOOT = {V16: BOOT_16, V201: BOOT_201}


@pytest.fixture
async def tls_csms(tmp_path: Path, pki_template: Path) -> AsyncIterator[RunningCsms]:
    running = await start_csms(tls_settings(tmp_path, pki_template), with_api=False)
    try:
        yield running
    finally:
        await running.stop()


def wss_url(csms: RunningCsms, identity: str) -> str:
    assert csms.wss_address is not None
    return f"wss://127.0.0.1:{csms.wss_address[1]}/ocpp/{quote(identity, safe='')}"


def open_tls(
    csms: RunningCsms,
    identity: str,
    context: ssl.SSLContext,
    version: OcppVersion,
    authorization: str | None = None,
) -> Any:
    headers = {"Authorization": authorization} if authorization else {}
    return connect(
        wss_url(csms, identity),
        ssl=context,
        server_hostname="localhost",
        subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
        additional_headers=headers,
        open_timeout=5,
    )


async def add_station(
    csms: RunningCsms, identity: str, version: OcppVersion, profile: int, serial: str | None = None
) -> None:
    await register_station(
        csms.store,
        NewStation(
            identity=identity,
            ocpp_version=version,
            security_profile=profile,
            auth_key_hex="9F3A61C2D4E5F60718293A4B5C6D7E8F90A1B2C3"
            if version is V16 and profile == 2
            else None,
            password=PASSWORD if version is V201 and profile == 2 else None,
            generate_secret=False,
            serial_number=serial,
            cpo_name=None,
            strict_password=False,
        ),
        actor="test",
    )


def basic_for(identity: str, version: OcppVersion) -> str:
    secret = (
        bytes.fromhex("9F3A61C2D4E5F60718293A4B5C6D7E8F90A1B2C3")
        if version is V16
        else PASSWORD.encode()
    )
    return basic(identity, secret)


def root(csms: RunningCsms) -> bytes:
    return csms_root_pem(csms.settings)


async def last_event(csms: RunningCsms, identity: str | None = None) -> Any:
    for _ in range(100):
        events = await csms.store.events.list(station=identity, limit=1)
        if events:
            return events[0]
        await asyncio.sleep(0.02)
    raise AssertionError("no security event was stored")


async def provisioned(
    csms: RunningCsms, tmp_path: Path, identity: str, cn: str | None = None
) -> ssl.SSLContext:
    assert csms.pki is not None
    out = tmp_path / f"station-{identity}"
    done = await provision_station(
        csms.pki, csms.store, identity=identity, cn=cn or identity, o=CPO, out_dir=out
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=root(csms).decode())
    context.load_cert_chain(done.chain_path, done.key_path)
    return context


# ---- profile 2 ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [V16, V201])
async def test_sec_06_profile_2_over_tls_with_basic_auth(
    tls_csms: RunningCsms, version: OcppVersion
) -> None:
    await add_station(tls_csms, "CP-P2", version, 2)
    async with open_tls(
        tls_csms, "CP-P2", client_context(root(tls_csms)), version, basic_for("CP-P2", version)
    ) as ws:
        assert ws.subprotocol == SUBPROTOCOL[version]
        assert (await call(ws, "BootNotification", BOOT[version]))[2]["status"] == "Accepted"
        info = tls_csms.registry.get("CP-P2").info  # type: ignore[union-attr]
        assert (info.transport, info.security_profile) == ("wss", 2)


@pytest.mark.parametrize("version", [V16, V201])
async def test_sec_01_profile_2_station_with_wrong_password_over_tls(
    tls_csms: RunningCsms, version: OcppVersion
) -> None:
    await add_station(tls_csms, "CP-P2W", version, 2)
    with pytest.raises(InvalidStatus) as refused:
        async with open_tls(
            tls_csms, "CP-P2W", client_context(root(tls_csms)), version, basic("CP-P2W", b"x" * 20)
        ):
            pass
    assert refused.value.response.status_code == 401
    assert (await last_event(tls_csms, "CP-P2W")).type == CsmsEvent.INVALID_CREDENTIALS


# ---- profile 3 ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [V16, V201])
async def test_sec_09_profile_3_with_a_provisioned_certificate(
    tls_csms: RunningCsms, tmp_path: Path, version: OcppVersion
) -> None:
    await add_station(tls_csms, "CP-P3", version, 3)
    context = await provisioned(tls_csms, tmp_path, "CP-P3")
    async with open_tls(tls_csms, "CP-P3", context, version) as ws:
        assert (await call(ws, "BootNotification", BOOT[version]))[2]["status"] == "Accepted"
        info = tls_csms.registry.get("CP-P3").info  # type: ignore[union-attr]
        assert info.security_profile == 3 and info.certificate_fingerprint


async def test_sec_01_profile_3_station_without_a_certificate(tls_csms: RunningCsms) -> None:
    await add_station(tls_csms, "CP-NOCERT", V201, 3)
    with pytest.raises(InvalidStatus) as refused:
        async with open_tls(
            tls_csms,
            "CP-NOCERT",
            client_context(root(tls_csms)),
            V201,
            basic("CP-NOCERT", PASSWORD.encode()),
        ):
            pass
    assert refused.value.response.status_code == 401
    event = await last_event(tls_csms, "CP-NOCERT")
    assert event.type == CsmsEvent.PROFILE_TRANSPORT_MISMATCH
    assert "without a client certificate" in event.tech_info


@pytest.mark.parametrize(
    ("cn", "o", "words"),
    [("OTHER-SERIAL", CPO, "CN 'OTHER-SERIAL'"), ("CP-ID", "Wrong CPO", "O 'Wrong CPO'")],
)
async def test_tc_a_08_cn_and_o_mismatch_refused(
    tls_csms: RunningCsms, cn: str, o: str, words: str
) -> None:
    await add_station(tls_csms, "CP-ID", V16, 3)
    assert tls_csms.pki is not None
    leaf, key, chain = station_certificate(tls_csms.pki, cn=cn, o=o)
    context = client_context(root(tls_csms), leaf, key, chain)
    with pytest.raises(InvalidStatus) as refused:
        async with open_tls(tls_csms, "CP-ID", context, V16):
            pass
    assert refused.value.response.status_code == 403
    event = await last_event(tls_csms, "CP-ID")
    assert event.type == CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH and words in event.tech_info


async def test_sec_10_certificate_of_station_a_presented_for_b(
    tls_csms: RunningCsms, tmp_path: Path
) -> None:
    await add_station(tls_csms, "CP-A", V201, 3, serial="SERIAL-SHARED")
    await add_station(tls_csms, "CP-B", V201, 3, serial="SERIAL-SHARED")
    context = await provisioned(tls_csms, tmp_path, "CP-A", cn="SERIAL-SHARED")
    with pytest.raises(InvalidStatus) as refused:
        async with open_tls(tls_csms, "CP-B", context, V201):
            pass
    assert refused.value.response.status_code == 403
    event = await last_event(tls_csms, "CP-B")
    assert event.type == CsmsEvent.CERTIFICATE_IDENTITY_MISMATCH
    assert "issued to station CP-A" in event.tech_info


async def test_tc_087_revoked_certificate_refused(tls_csms: RunningCsms, tmp_path: Path) -> None:
    await add_station(tls_csms, "CP-REV", V16, 3)
    context = await provisioned(tls_csms, tmp_path, "CP-REV")
    await tls_csms.store.certificates.revoke_station("CP-REV", "keyCompromise", datetime.now(UTC))
    with pytest.raises(InvalidStatus) as refused:
        async with open_tls(tls_csms, "CP-REV", context, V16):
            pass
    assert refused.value.response.status_code == 403
    assert (await last_event(tls_csms, "CP-REV")).type == CsmsEvent.REVOKED_CERTIFICATE


async def test_revocation_closes_the_live_connection(tls_csms: RunningCsms, tmp_path: Path) -> None:
    await add_station(tls_csms, "CP-LIVE", V201, 3)
    context = await provisioned(tls_csms, tmp_path, "CP-LIVE")
    async with open_tls(tls_csms, "CP-LIVE", context, V201) as ws:
        await call(ws, "Heartbeat", {})
        await tls_csms.store.certificates.revoke_station(
            "CP-LIVE", "keyCompromise", datetime.now(UTC)
        )
        assert tls_csms.watcher is not None
        await tls_csms.watcher.tick()
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    event = await last_event(tls_csms, "CP-LIVE")
    assert (
        event.type == CsmsEvent.REVOKED_CERTIFICATE and "live connection closed" in event.tech_info
    )


@pytest.mark.parametrize(
    ("validity", "words"),
    [
        ((timedelta(days=-30), timedelta(days=-1)), "expired"),
        ((timedelta(days=1), timedelta(days=30)), "not yet valid"),
    ],
)
async def test_tc_a_08_expired_and_not_yet_valid_refused_in_the_handshake(
    tls_csms: RunningCsms, validity: tuple[timedelta, timedelta], words: str
) -> None:
    assert tls_csms.pki is not None
    now = datetime.now(UTC)
    leaf, key, chain = station_certificate(
        tls_csms.pki, cn="CP-T", o=CPO, not_before=now + validity[0], not_after=now + validity[1]
    )
    with pytest.raises(HANDSHAKE_REFUSED):
        async with open_tls(
            tls_csms, "CP-T", client_context(root(tls_csms), leaf, key, chain), V16
        ) as ws:
            await asyncio.wait_for(ws.recv(), 5)
    event = await last_event(tls_csms)
    assert event.type == CsmsEvent.INVALID_CLIENT_CERTIFICATE
    assert words in event.tech_info and event.peer_address == "127.0.0.1"


async def test_tc_a_08_unknown_ca_refused_in_the_handshake(tls_csms: RunningCsms) -> None:
    assert tls_csms.pki is not None
    leaf, key, chain = station_certificate(tls_csms.pki, cn="CP-T", o=CPO, issuer=foreign_ca())
    with pytest.raises(HANDSHAKE_REFUSED):
        async with open_tls(
            tls_csms, "CP-T", client_context(root(tls_csms), leaf, key, chain), V16
        ) as ws:
            await asyncio.wait_for(ws.recv(), 5)
    event = await last_event(tls_csms)
    assert event.type == CsmsEvent.INVALID_CLIENT_CERTIFICATE
    assert any(words in event.tech_info for words in ("issuer", "self-signed", "unknown ca"))


# ---- TLS versions and suites ------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
async def test_tc_a_06_tls_below_1_2_refused(tls_csms: RunningCsms, legacy: ssl.TLSVersion) -> None:
    try:
        context = client_context(root(tls_csms), maximum_version=legacy)
    except ssl.SSLError:
        pytest.skip("this OpenSSL cannot even build a TLS < 1.2 client")
    with pytest.raises((OSError, ssl.SSLError)):
        async with open_tls(tls_csms, "CP-OLD", context, V16):
            pass
    event = await last_event(tls_csms)
    assert event.type == CsmsEvent.TLS_VERSION_REFUSED


@pytest.mark.parametrize(
    "suite",
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
    ],
)
async def test_tc_a_07_each_required_tls12_suite_is_accepted(
    tls_csms: RunningCsms, suite: str
) -> None:
    await add_station(tls_csms, "CP-SUITE", V201, 2)
    context = client_context(root(tls_csms), ciphers=suite)
    async with open_tls(tls_csms, "CP-SUITE", context, V201, basic_for("CP-SUITE", V201)) as ws:
        ssl_object = ws.transport.get_extra_info("ssl_object")
        assert ssl_object.cipher()[0] == suite and ssl_object.version() == "TLSv1.2"


@pytest.mark.parametrize(
    "suite", ["ECDHE-RSA-AES128-SHA256", "AES128-SHA", "ECDHE-ECDSA-AES256-SHA"]
)
async def test_tc_a_07_cbc_suites_refused(tls_csms: RunningCsms, suite: str) -> None:
    context = client_context(root(tls_csms), ciphers=suite + ":@SECLEVEL=0")
    with pytest.raises((OSError, ssl.SSLError)):
        async with open_tls(tls_csms, "CP-CBC", context, V201):
            pass
    assert (await last_event(tls_csms)).type == CsmsEvent.TLS_CIPHER_REFUSED


# ---- rotation without dropping anyone ------------------------------------------------------


async def test_sec_14_new_handshakes_get_the_rotated_server_certificate(
    tls_csms: RunningCsms,
) -> None:
    await add_station(tls_csms, "CP-ROT", V16, 2)
    header = basic_for("CP-ROT", V16)
    async with open_tls(tls_csms, "CP-ROT", client_context(root(tls_csms)), V16, header) as before:
        old = before.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert tls_csms.pki is not None and tls_csms.watcher is not None
        for kind in list(tls_csms.pki.servers):
            tls_csms.pki.issue_server(kind, datetime.now(UTC))
        await tls_csms.watcher.tick()
        async with open_tls(
            tls_csms, "CP-ROT", client_context(root(tls_csms)), V16, header
        ) as after:
            new = after.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
            assert new != old
            assert (await call(after, "Heartbeat", {}))[0] == 3


async def test_sec_14_rotation_does_not_drop_a_live_connection(tls_csms: RunningCsms) -> None:
    await add_station(tls_csms, "CP-STAY", V201, 2)
    async with open_tls(
        tls_csms, "CP-STAY", client_context(root(tls_csms)), V201, basic_for("CP-STAY", V201)
    ) as ws:
        assert tls_csms.pki is not None and tls_csms.watcher is not None
        for kind in list(tls_csms.pki.servers):
            tls_csms.pki.issue_server(kind, datetime.now(UTC))
        await tls_csms.watcher.tick()
        assert (await call(ws, "Heartbeat", {}))[0] == 3


# ---- proxy mode -------------------------------------------------------------------------------


async def test_sec_12_forwarded_certificate_honoured_from_a_trusted_proxy(
    tmp_path: Path, pki_template: Path
) -> None:
    settings = tls_settings(tmp_path, pki_template, proxy={"trusted": ["127.0.0.1/32"]})
    csms = await start_csms(settings, with_api=False)
    try:
        await add_station(csms, "CP-PROXY", V16, 3)
        assert csms.pki is not None
        done = await provision_station(
            csms.pki, csms.store, identity="CP-PROXY", cn="CP-PROXY", o=CPO, out_dir=tmp_path / "p"
        )
        forwarded = quote(done.chain_path.read_text(), safe="")
        headers = {"X-Client-Cert": forwarded, "X-Forwarded-Proto": "https"}
        async with connect(
            f"{csms.ws_url}/CP-PROXY", subprotocols=["ocpp1.6"], additional_headers=headers
        ) as ws:  # type: ignore[list-item]
            assert (await call(ws, "Heartbeat", {}))[0] == 3
            assert csms.registry.get("CP-PROXY").info.security_profile == 3  # type: ignore[union-attr]
    finally:
        await csms.stop()


async def test_sec_12_forwarded_headers_from_anyone_else_are_ignored_with_event(
    tmp_path: Path, pki_template: Path
) -> None:
    settings = tls_settings(tmp_path, pki_template, proxy={"trusted": ["10.9.8.0/24"]})
    csms = await start_csms(settings, with_api=False)
    try:
        await add_station(csms, "CP-SPOOF", V16, 3)
        assert csms.pki is not None
        done = await provision_station(
            csms.pki, csms.store, identity="CP-SPOOF", cn="CP-SPOOF", o=CPO, out_dir=tmp_path / "p"
        )
        headers = {
            "X-Client-Cert": quote(done.chain_path.read_text(), safe=""),
            "X-Forwarded-Proto": "https",
        }
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"{csms.ws_url}/CP-SPOOF", subprotocols=["ocpp1.6"], additional_headers=headers
            ):  # type: ignore[list-item]
                pass
        assert refused.value.response.status_code == 401
        types = [e.type for e in await csms.store.events.list(station="CP-SPOOF")]
        assert CsmsEvent.UNTRUSTED_PROXY_HEADERS in types
        assert CsmsEvent.PROFILE_TRANSPORT_MISMATCH in types
    finally:
        await csms.stop()


async def test_sec_12_forged_certificate_from_trusted_proxy_is_verified_anyway(
    tmp_path: Path, pki_template: Path
) -> None:
    settings = tls_settings(tmp_path, pki_template, proxy={"trusted": ["127.0.0.1/32"]})
    csms = await start_csms(settings, with_api=False)
    try:
        await add_station(csms, "CP-FORGED", V16, 3)
        assert csms.pki is not None
        leaf, _, chain = station_certificate(csms.pki, cn="CP-FORGED", o=CPO, issuer=foreign_ca())
        headers = {
            "X-Client-Cert": quote(pem(leaf, *chain).decode(), safe=""),
            "X-Forwarded-Proto": "https",
        }
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"{csms.ws_url}/CP-FORGED", subprotocols=["ocpp1.6"], additional_headers=headers
            ):  # type: ignore[list-item]
                pass
        assert refused.value.response.status_code == 403
        event = (await csms.store.events.list(station="CP-FORGED"))[0]
        assert event.type == CsmsEvent.INVALID_CLIENT_CERTIFICATE
    finally:
        await csms.stop()


async def test_sec_13_repeated_refused_handshakes_block_the_peer_with_one_event(
    tmp_path: Path, pki_template: Path
) -> None:
    throttle = {
        "slowdown_after": 3,
        "base_delay": 0.01,
        "max_delay": 0.02,
        "block_after": 3,
        "identity_block_after": 1000,
    }
    csms = await start_csms(tls_settings(tmp_path, pki_template, throttle=throttle), with_api=False)
    try:
        assert csms.pki is not None
        leaf, key, chain = station_certificate(csms.pki, cn="CP-X", o=CPO, issuer=foreign_ca())
        context = client_context(root(csms), leaf, key, chain)
        for _ in range(6):
            with pytest.raises(HANDSHAKE_REFUSED):
                async with open_tls(csms, "CP-X", context, V16) as ws:
                    await asyncio.wait_for(ws.recv(), 5)
            await asyncio.sleep(0.05)  # the refusal is recorded just after the client sees it
        types = [e.type for e in await csms.store.events.list(limit=100)]
        # Three handshakes refused with their reason, then one block; the rest cost nothing.
        assert types.count(CsmsEvent.INVALID_CLIENT_CERTIFICATE) == 3
        assert types.count(CsmsEvent.RATE_LIMITED) == 1
    finally:
        await csms.stop()
