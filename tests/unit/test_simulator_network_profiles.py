"""SIM-04 in the simulated station, sans I/O: 2.0.1 network connection profiles and the profile
upgrade through them (TC_A_19..22_CS, TC_B_43_CS, B10 fallback), the refuse_changes failure hook
for both versions, and the state kept across restarts."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chargewarden.pki.issue import issue_ca, name
from chargewarden.rpc.schemas import schema_registry
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import REFUSABLE_CHANGES, StationConfig, TlsMaterialError
from chargewarden.simulator.core import StationCore
from chargewarden.simulator.network import (
    NetworkConfiguration,
    NetworkSlot,
    SlotChange,
    parse_priority,
)
from chargewarden.simulator.security import STATE_FILE

V16, V201 = OcppVersion.V16, OcppVersion.V201
NOW = datetime.now(UTC).replace(microsecond=0)
KEY = bytes.fromhex("0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF")
NEW_KEY_HEX = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
PASSWORD = "Old-Password-0123456789"
NEW_PASSWORD = "New-Password:9876543210xyz"
WS = "ws://127.0.0.1:9000/ocpp"
WSS = "wss://csms.example:8443/ocpp"
IDENTITY = "CS 1"  # percent-encoded in URLs
PRIORITY = {
    "component": {"name": "OCPPCommCtrlr"},
    "variable": {"name": "NetworkConfigurationPriority"},
}
PROFILE = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}}


def config(version: OcppVersion = V201, **overrides: Any) -> StationConfig:
    params: dict[str, Any] = {
        "identity": IDENTITY,
        "ocpp_version": version,
        "url": WS,
        "security_profile": 1,
        "auth_key": KEY,
        "password": PASSWORD,
    }
    params.update(overrides)
    return StationConfig(**params)


def station(version: OcppVersion = V201, **overrides: Any) -> StationCore:
    core = StationCore(config(version, **overrides), lambda: NOW)
    core.on_connected(NOW)
    return core


async def handle(core: StationCore, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """As the RPC layer does it: request and response both schema-checked."""
    registry = schema_registry(core.version)
    registry.validate_request(action, payload)
    response = await core.handlers()[action](payload)
    registry.validate_response(action, response)
    return response


def root_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_ca(
        name("Test CSMS Root", "Test CPO"), key.public_key(), key, issuer_cert=None,
        not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=30), path_length=1,
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def connection_data(url: str = WSS, profile: int = 2, **overrides: Any) -> dict[str, Any]:
    return {
        "ocppVersion": "OCPP20",
        "ocppTransport": "JSON",
        "ocppCsmsUrl": url,
        "messageTimeout": 30,
        "securityProfile": profile,
        "ocppInterface": "Wired0",
        **overrides,
    }


async def set_network_profile(core: StationCore, slot: int, **data: Any) -> dict[str, Any]:
    payload = {"configurationSlot": slot, "connectionData": connection_data(**data)}
    return await handle(core, "SetNetworkProfile", payload)


async def set_priority(core: StationCore, value: str) -> str:
    item = {**PRIORITY, "attributeValue": value}
    response = await handle(core, "SetVariables", {"setVariableData": [item]})
    return str(response["setVariableResult"][0]["attributeStatus"])


async def get(core: StationCore, item: dict[str, Any]) -> str | None:
    response = await handle(core, "GetVariables", {"getVariableData": [item]})
    return response["getVariableResult"][0].get("attributeValue")


async def upgrade_to_2(core: StationCore) -> None:
    """TC_A_19_CS steps 1-6 (the root installed over OCPP first, as seed 001 does)."""
    install = {"certificateType": "CSMSRootCertificate", "certificate": root_pem()}
    assert await handle(core, "InstallCertificate", install) == {"status": "Accepted"}
    assert await set_network_profile(core, 2) == {"status": "Accepted"}
    assert await set_priority(core, "2,1") == "RebootRequired"
    assert await handle(core, "Reset", {"type": "OnIdle"}) == {"status": "Accepted"}


# ---- the pure slot logic ------------------------------------------------------------------------


def test_priority_parsing() -> None:
    assert parse_priority("2,1") == (2, 1)
    assert parse_priority(" 3 , 1,2 ") == (3, 1, 2)
    for bad in ("", "1,,2", "1,1", "a", "-1", "1;2", "²"):
        assert parse_priority(bad) is None, bad


def test_slot_checks_of_set_network_profile() -> None:
    network = NetworkConfiguration(3, NetworkSlot(WS, 1))
    assert network.slot_problem(2, connection_data()) is None
    assert network.slot_problem(2, connection_data(WS, 1)) is None  # same profile: a migration
    cases = {
        "InvalidConfSlot": [(0, {}), (4, {}), (999, {}), (1, {})],  # range; slot 1 is in use
        "InvalidNetworkConf": [(2, {"ocppVersion": "OCPP16"}), (2, {"ocppTransport": "SOAP"})],
        "InvalidURL": [
            (2, {"url": WS}),  # profile 2 over ws
            (2, {"url": WSS, "profile": 1}),  # profile 1 over wss
            (2, {"url": "https://csms.example/ocpp"}),
            (2, {"url": WSS + "?id=1"}),  # the identity goes last
        ],
        "InvalidSecurityLevel": [(2, {"profile": 4})],
    }
    for code, attempts in cases.items():
        for slot, overrides in attempts:
            problem = network.slot_problem(slot, connection_data(**overrides))
            assert problem is not None and problem.code == code, (slot, overrides)
    network.floor = 2
    downgrade = network.slot_problem(2, connection_data(WS, 1))
    assert downgrade is not None and downgrade.code == "NoSecurityDowngrade"


def test_fallback_walks_the_priority_list_and_a_proven_profile_ends_it() -> None:
    network = NetworkConfiguration(3, NetworkSlot(WS, 1))
    network.store(2, NetworkSlot(WSS, 2))
    network.set_priority((2, 1))
    assert network.current == 1  # only a boot applies the list
    assert network.restart() == NetworkSlot(WSS, 2)
    assert network.on_connect_failed() == SlotChange(2, 2, 1, 1)
    assert network.on_connect_failed() == SlotChange(1, 1, 2, 2)  # after the last: the first
    assert network.on_connected() is True
    assert (network.floor, network.priority, network.current) == (2, (2,), 2)
    assert network.on_connect_failed() is None  # nowhere lower to go
    assert network.priority_problem((2, 1)) is not None
    assert network.priority_problem((3,)) == "slot 3 is empty"


def test_network_state_round_trips_and_bad_state_is_refused() -> None:
    network = NetworkConfiguration(3, NetworkSlot(WS, 1))
    network.store(3, NetworkSlot(WSS, 3, 45, "Wireless0"))
    network.set_priority((3, 1))
    network.restart()
    again = NetworkConfiguration.from_json(3, json.loads(json.dumps(network.to_json())))
    assert again.to_json() == network.to_json()
    assert again.slot == NetworkSlot(WSS, 3, 45, "Wireless0")
    with pytest.raises(ValueError, match="network_slots"):
        NetworkConfiguration.from_json(2, network.to_json())
    state = network.to_json() | {"floor": 3, "current": 1}
    with pytest.raises(ValueError, match="below the proven profile"):
        NetworkConfiguration.from_json(3, state)


def test_slot_repr_hides_credentials_in_the_url() -> None:
    slot = NetworkSlot("wss://user:s3cret-Pass@csms.example:8443/ocpp", 2)
    assert "s3cret" not in repr(slot) and "user" not in repr(slot)
    assert "csms.example:8443" in repr(slot)


# ---- TC_A_19: upgrade through a network profile ------------------------------------------------


async def test_upgrade_1_to_2_uses_the_new_slot_after_the_reset() -> None:
    core = station()
    assert await get(core, PRIORITY) == "1"
    await upgrade_to_2(core)
    assert core.reconnect_requested
    assert core.connection_url() == "wss://csms.example:8443/ocpp/CS%201"
    assert core.security_profile == 2 and core.auth_header() is not None  # profile 2: Basic
    assert core.uses_tls
    core.on_connected(NOW)
    assert await get(core, PROFILE) == "2"  # TC_A_19 step 11
    assert await get(core, PRIORITY) == "2"  # step 13: the old slot is gone
    # Slot 1 (profile 1) may not come back: that would be a downgrade (A00.FR.005).
    assert await set_priority(core, "2,1") == "Rejected"
    assert await set_network_profile(core, 1, url=WS, profile=1) == {
        "status": "Rejected",
        "statusInfo": {
            "reasonCode": "NoSecurityDowngrade",
            "additionalInfo": "securityProfile 1 is below the station's 2",
        },
    }
    types = [entry.type for entry in core.security_log]
    assert types.count("ReconfigurationOfSecurityParameters") >= 4


async def test_failed_first_connection_falls_back_to_the_previous_slot() -> None:
    core = station()
    await upgrade_to_2(core)
    core.on_connect_failed(NOW)
    assert core.security_profile == 1
    assert core.connection_url() == "ws://127.0.0.1:9000/ocpp/CS%201"
    assert core.security_log[-1].type == "ReconfigurationOfSecurityParameters"
    assert "fell back to SecurityProfile 1" in (core.security_log[-1].tech_info or "")
    core.on_connected(NOW)
    assert await get(core, PROFILE) == "1"
    assert await get(core, PRIORITY) == "2,1"  # the next reboot tries profile 2 again
    core.reset("OnIdle")
    assert core.security_profile == 2


async def test_migration_to_another_url_at_the_same_profile() -> None:
    core = station()  # TC_B_45_CS: no root needed, the profile does not change
    other = "ws://10.0.0.2:9000/ocpp/"
    assert await set_network_profile(core, 3, url=other, profile=1) == {"status": "Accepted"}
    assert await set_priority(core, "3,1") == "RebootRequired"
    assert await set_priority(core, "3,1") == "Accepted"  # unchanged
    core.reset("Immediate")
    assert core.connection_url() == "ws://10.0.0.2:9000/ocpp/CS%201"
    core.on_connect_failed(NOW)  # same profile: no security event for the move
    assert core.connection_url().startswith(WS)
    assert all("fell back" not in (e.tech_info or "") for e in core.security_log)


async def test_prerequisites_are_checked_when_a_slot_enters_the_priority_list() -> None:
    core = station()
    # TC_A_20_CS: no CSMS root. The profile is stored, the priority write is Rejected.
    assert await set_network_profile(core, 2) == {"status": "Accepted"}
    assert await set_priority(core, "2,1") == "Rejected"
    # TC_A_21_CS: a root but no ChargingStationCertificate for profile 3.
    core.csms_root_installed = True
    assert await set_network_profile(core, 3, profile=3) == {"status": "Accepted"}
    assert await set_priority(core, "3,1") == "Rejected"
    assert await set_priority(core, "2,1") == "RebootRequired"
    # A slot already in the list is used at the next boot unchecked: checked when set.
    refused = await set_network_profile(core, 2, profile=3)
    assert refused["status"] == "Rejected"
    assert refused["statusInfo"]["additionalInfo"] == "no ChargingStationCertificate installed"
    no_password = station(password=None, security_profile=0, csms_root_installed=True)
    assert await set_network_profile(no_password, 2) == {"status": "Accepted"}
    assert await set_priority(no_password, "2,1") == "Rejected"


async def test_set_network_profile_rejections() -> None:
    core = station(network_slots=2)
    assert (await set_network_profile(core, 999))["statusInfo"]["reasonCode"] == (
        "InvalidConfSlot"  # TC_B_43_CS
    )
    assert (await set_network_profile(core, 3))["status"] == "Rejected"  # only 2 slots
    assert (await set_network_profile(core, 1))["status"] == "Rejected"  # in use
    downgrade = station(security_profile=2, url=WSS, csms_root_installed=True)
    response = await set_network_profile(downgrade, 2, url=WS, profile=1)  # TC_A_22_CS
    assert response["statusInfo"]["reasonCode"] == "NoSecurityDowngrade"
    assert await set_priority(core, "2") == "Rejected"  # an empty slot
    assert await set_priority(core, "x") == "Rejected"
    assert [e.type for e in core.security_log] == []  # nothing changed, nothing logged


async def test_secrets_and_urls_stay_out_of_the_security_log() -> None:
    core = station(csms_root_installed=True)
    url = "wss://operator:Url-Secret-0001@csms.example:8443/ocpp"
    assert await set_network_profile(core, 2, url=url) == {"status": "Accepted"}
    password = {
        "component": {"name": "SecurityCtrlr"},
        "variable": {"name": "BasicAuthPassword"},
        "attributeValue": NEW_PASSWORD,
    }
    response = await handle(core, "SetVariables", {"setVariableData": [password]})
    assert response["setVariableResult"][0]["attributeStatus"] == "Accepted"
    assert core.password == NEW_PASSWORD and core.reconnect_requested
    text = repr(list(core.security_log)) + repr(core.security) + repr(core.config)
    for secret in ("Url-Secret-0001", NEW_PASSWORD, PASSWORD, "operator"):
        assert secret not in text


# ---- 1.6 -----------------------------------------------------------------------------------------


async def test_16_raise_falls_back_to_the_last_proven_profile() -> None:
    core = station(V16, tls_url=WSS, csms_root_installed=True, station_certificate_installed=True)
    change = {"key": "SecurityProfile", "value": "2"}
    assert await handle(core, "ChangeConfiguration", change) == {"status": "Accepted"}
    change3 = {"key": "SecurityProfile", "value": "3"}
    assert await handle(core, "ChangeConfiguration", change3) == {"status": "Accepted"}
    assert core.connection_url() == "wss://csms.example:8443/ocpp/CS%201"
    core.on_connect_failed(NOW)
    assert core.security_profile == 1  # not 2: that one never connected either (A05.FR.08)
    assert "SetNetworkProfile" not in core.handlers()


# ---- refuse_changes -----------------------------------------------------------------------------


def test_refuse_changes_names_are_checked() -> None:
    assert config(refuse_changes=["Reset"]).refuse_changes == frozenset({"Reset"})
    with pytest.raises(ValueError, match="unknown change Rest"):
        config(refuse_changes={"Rest"})
    with pytest.raises(TypeError):
        config(refuse_changes="Reset")
    with pytest.raises(ValueError):
        config(network_slots=0)
    assert set(REFUSABLE_CHANGES) == {
        "AuthorizationKey",
        "BasicAuthPassword",
        "SecurityProfile",
        "NetworkProfile",
        "InstallCertificate",
        "Reset",
    }


async def test_refused_changes_16() -> None:
    core = station(
        V16, tls_url=WSS, csms_root_installed=True, refuse_changes=set(REFUSABLE_CHANGES)
    )
    for key, value in (("AuthorizationKey", NEW_KEY_HEX), ("SecurityProfile", "2")):
        change = {"key": key, "value": value}
        assert await handle(core, "ChangeConfiguration", change) == {"status": "Rejected"}
    assert await handle(core, "Reset", {"type": "Soft"}) == {"status": "Rejected"}
    install = {"certificateType": "CentralSystemRootCertificate", "certificate": root_pem()}
    assert await handle(core, "InstallCertificate", install) == {"status": "Rejected"}
    assert (core.auth_key, core.security_profile, core.reconnect_requested) == (KEY, 1, False)
    assert core.certificates.roots("CentralSystemRootCertificate") == []


async def test_refused_changes_201() -> None:
    core = station(csms_root_installed=True, refuse_changes={"BasicAuthPassword", "Reset"})
    password = {
        "component": {"name": "SecurityCtrlr"},
        "variable": {"name": "BasicAuthPassword"},
        "attributeValue": NEW_PASSWORD,
    }
    response = await handle(core, "SetVariables", {"setVariableData": [password]})
    assert response["setVariableResult"][0]["attributeStatus"] == "Rejected"
    assert await handle(core, "Reset", {"type": "Immediate"}) == {"status": "Rejected"}
    assert (core.password, core.reconnect_requested) == (PASSWORD, False)
    install = {"certificateType": "CSMSRootCertificate", "certificate": root_pem()}
    assert await handle(core, "InstallCertificate", install) == {"status": "Accepted"}

    no_network = station(csms_root_installed=True, refuse_changes={"NetworkProfile"})
    assert await set_network_profile(no_network, 2) == {"status": "Rejected"}
    no_raise = station(csms_root_installed=True, refuse_changes={"SecurityProfile"})
    assert await set_network_profile(no_raise, 2) == {"status": "Rejected"}
    assert await set_network_profile(no_raise, 2, url=WS, profile=1) == {"status": "Accepted"}
    assert await set_priority(no_raise, "2,1") == "RebootRequired"  # same profile: allowed
    refused_install = station(refuse_changes={"InstallCertificate"})
    assert await handle(refused_install, "InstallCertificate", install) == {"status": "Rejected"}


# ---- state directory ----------------------------------------------------------------------------


async def test_16_state_survives_a_restart(tmp_path: Path) -> None:
    cfg = config(V16, tls_url=WSS, csms_root_installed=True, state_dir=tmp_path / "cp")
    core = StationCore(cfg, lambda: NOW)
    core.on_connected(NOW)
    assert not (tmp_path / "cp" / STATE_FILE).exists()  # nothing changed yet
    for key, value in (("AuthorizationKey", NEW_KEY_HEX), ("SecurityProfile", "2")):
        change = {"key": key, "value": value}
        assert await handle(core, "ChangeConfiguration", change) == {"status": "Accepted"}
    path = tmp_path / "cp" / STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    restarted = StationCore(cfg, lambda: NOW)  # power cycle before the new profile connected
    assert restarted.auth_key == bytes.fromhex(NEW_KEY_HEX)
    assert restarted.security_profile == 2
    restarted.on_connect_failed(NOW)  # the raise is still unproven: fall back
    assert restarted.security_profile == 1

    proven = StationCore(cfg, lambda: NOW)
    assert proven.security_profile == 1  # the fallback was kept too
    change = {"key": "SecurityProfile", "value": "2"}
    assert await handle(proven, "ChangeConfiguration", change) == {"status": "Accepted"}
    proven.on_connected(NOW)
    again = StationCore(cfg, lambda: NOW)
    again.on_connect_failed(NOW)
    assert again.security_profile == 2  # proven before the restart: no way back
    assert again.auth_key == bytes.fromhex(NEW_KEY_HEX)


async def test_16_hex_text_of_the_key_is_kept_for_interop_mode(tmp_path: Path) -> None:
    cfg = config(V16, send_key_as_hex=True, state_dir=tmp_path)
    core = station(V16, send_key_as_hex=True, state_dir=tmp_path)
    await handle(core, "ChangeConfiguration", {"key": "AuthorizationKey", "value": NEW_KEY_HEX})
    assert StationCore(cfg).auth_header() == core.auth_header()


async def test_201_state_survives_a_restart(tmp_path: Path) -> None:
    cfg = config(state_dir=tmp_path)
    core = StationCore(cfg, lambda: NOW)
    core.on_connected(NOW)
    await upgrade_to_2(core)
    password = {
        "component": {"name": "SecurityCtrlr"},
        "variable": {"name": "BasicAuthPassword"},
        "attributeValue": NEW_PASSWORD,
    }
    await handle(core, "SetVariables", {"setVariableData": [password]})
    core.on_connected(NOW)

    restarted = StationCore(cfg, lambda: NOW)
    assert restarted.connection_url() == "wss://csms.example:8443/ocpp/CS%201"
    assert (restarted.security_profile, restarted.password) == (2, NEW_PASSWORD)
    assert restarted.csms_root_installed  # the root store is in the directory too
    assert await get(restarted, PRIORITY) == "2"
    restarted.on_connect_failed(NOW)
    assert restarted.security_profile == 2


async def test_201_unproven_priority_applies_at_the_next_start(tmp_path: Path) -> None:
    cfg = config(state_dir=tmp_path, csms_root_installed=True)
    core = StationCore(cfg, lambda: NOW)
    core.on_connected(NOW)
    assert await set_network_profile(core, 2) == {"status": "Accepted"}
    assert await set_priority(core, "2,1") == "RebootRequired"
    restarted = StationCore(cfg, lambda: NOW)  # a power cycle is a reboot
    assert restarted.security_profile == 2
    restarted.on_connect_failed(NOW)
    assert restarted.security_profile == 1


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json " + PASSWORD.encode(), "not a station security state"),
        (b'{"format": 1, "ocpp_version": "1.6"}', "another OCPP version"),
    ],
)
def test_unusable_state_file_is_named_without_its_content(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    with pytest.raises(TlsMaterialError) as error:
        StationCore(config(state_dir=tmp_path))
    assert error.value.field == "state_dir"
    assert fragment in str(error.value) and STATE_FILE in str(error.value)
    assert PASSWORD not in str(error.value)
