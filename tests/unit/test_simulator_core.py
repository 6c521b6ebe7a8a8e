"""The simulated station's pure core, both versions (SIM-03/04/06, PWD-01/02, UPG-03)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chargewarden.rpc.schemas import schema_registry
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.core import RegistrationStatus, StationCore

V16, V201 = OcppVersion.V16, OcppVersion.V201
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
KEY = bytes.fromhex("0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF")  # OCPP-J 1.6 §6.2.2 example
NEW_KEY_HEX = "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678"
PASSWORD = "Old-Password-0123456789"
NEW_PASSWORD = "New-Password:9876543210xyz"
ACCEPTED_BOOT = {"status": "Accepted", "interval": 60, "currentTime": "2025-03-01T12:00:00Z"}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def config(version: OcppVersion = V16, **overrides: Any) -> StationConfig:
    params: dict[str, Any] = {
        "identity": "AL1000",
        "ocpp_version": version,
        "url": "ws://127.0.0.1:9000/ocpp",
        "security_profile": 1,
        "auth_key": KEY,
        "password": PASSWORD,
    }
    params.update(overrides)
    return StationConfig(**params)


def station(version: OcppVersion = V16, **overrides: Any) -> StationCore:
    return StationCore(config(version, **overrides), Clock())


def booted(version: OcppVersion = V16, **overrides: Any) -> StationCore:
    core = station(version, **overrides)
    core.on_connected(NOW)
    core.on_boot_response(ACCEPTED_BOOT, NOW)
    core.take_outgoing()
    return core


async def handle(core: StationCore, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Call a handler the way the RPC layer does: request and response both schema-checked."""
    registry = schema_registry(core.version)
    registry.validate_request(action, payload)
    response = await core.handlers()[action](payload)
    registry.validate_response(action, response)
    return response


def assert_valid_requests(core: StationCore, messages: list[tuple[str, dict[str, Any]]]) -> None:
    registry = schema_registry(core.version)
    for action, payload in messages:
        registry.validate_request(action, payload)


# ---- configuration ------------------------------------------------------------------------------


def test_config_repr_hides_secrets() -> None:
    cfg = config(V16, auth_key=b"\x00secret-key-bytes!!", password="TopSecretPassword123")
    for text in (repr(cfg), str(cfg), f"{cfg}"):
        assert "secret-key" not in text
        assert "TopSecretPassword123" not in text
        assert "AL1000" in text


def test_auth_header_16_sends_raw_key_bytes() -> None:
    # The exact example of OCPP-J 1.6 §6.2.2.
    assert config(V16).auth_header() == "Basic QUwxMDAwOgABAgMEBQYH////////////////"


def test_auth_header_16_hex_interop_mode() -> None:
    header = config(V16, send_key_as_hex=True).auth_header()
    assert header is not None

    decoded = base64.b64decode(header.removeprefix("Basic "))
    assert decoded == b"AL1000:0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF"


def test_auth_header_201_password_and_profiles_without_basic() -> None:

    header = config(V201, username="someone-else").auth_header()
    assert header is not None
    assert base64.b64decode(header[6:]) == f"someone-else:{PASSWORD}".encode()
    assert config(V201, security_profile=0).auth_header() is None
    assert config(V16, security_profile=3).auth_header() is None


def test_config_defaults_and_url() -> None:
    cfg = config("ocpp2.0.1", identity="CP 1/ä", tls_url="wss://csms.example:8443/ocpp/")
    assert cfg.ocpp_version is V201
    assert cfg.serial_number == "CP 1/ä"
    assert cfg.connection_url() == "ws://127.0.0.1:9000/ocpp/CP%201%2F%C3%A4"
    assert cfg.connection_url(2) == "wss://csms.example:8443/ocpp/CP%201%2F%C3%A4"
    assert cfg.subprotocols == ("ocpp2.0.1",)
    assert config(offered_subprotocols=("ocpp9",)).subprotocols == ("ocpp9",)
    with pytest.raises(ValueError):
        config(security_profile=4)


# ---- boot ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [V16, V201])
def test_boot_payload_validates(version: OcppVersion) -> None:
    core = station(version)
    action, payload = core.boot_request()
    assert action == "BootNotification"
    schema_registry(version).validate_request(action, payload)
    if version is V201:
        assert payload["reason"] == "PowerUp"
        assert payload["chargingStation"]["serialNumber"] == "AL1000"
    else:
        assert payload["chargePointSerialNumber"] == "AL1000"


def test_boot_payload_omits_serial_over_schema_limit() -> None:
    core = station(V201, identity="X" * 40)
    action, payload = core.boot_request()
    schema_registry(V201).validate_request(action, payload)
    assert "serialNumber" not in payload["chargingStation"]


@pytest.mark.parametrize("version", [V16, V201])
def test_first_accepted_boot_emits_startup_once(version: OcppVersion) -> None:
    core = station(version, connector_count=2)
    assert core.on_connected(NOW) is True
    assert core.on_boot_response(ACCEPTED_BOOT, NOW) is RegistrationStatus.ACCEPTED
    assert core.heartbeat_interval == 60
    messages = core.take_outgoing()
    assert_valid_requests(core, messages)
    assert [a for a, _ in messages] == [
        "StatusNotification",
        "StatusNotification",
        "SecurityEventNotification",
    ]
    assert messages[2][1]["type"] == "StartupOfTheDevice"
    assert [e.type for e in core.security_log] == ["StartupOfTheDevice"]
    # A reconnect that boots again is not a new start-up of the device.
    core.on_connected(NOW)
    core.on_boot_response(ACCEPTED_BOOT, NOW)
    assert [a for a, _ in core.take_outgoing()] == ["StatusNotification"] * 2


def test_pending_keeps_retry_interval_and_holds_untriggered_messages() -> None:
    core = station(V201)
    core.on_connected(NOW)
    pending = {"status": "Pending", "interval": 7, "currentTime": "2025-03-01T12:00:00Z"}
    assert core.on_boot_response(pending, NOW) is RegistrationStatus.PENDING
    assert core.retry_interval == 7
    core.record_security_event("TamperDetectionActivated", NOW)  # critical, waits for Accepted
    assert core.take_outgoing() == []
    assert core.on_boot_response({**pending, "interval": 0}, NOW) is RegistrationStatus.PENDING
    assert core.retry_interval == 30  # interval 0: the station's own default


async def test_triggered_boot_while_pending_is_sent_and_accepted() -> None:
    core = station(V201)
    core.on_connected(NOW)
    core.on_boot_response({**ACCEPTED_BOOT, "status": "Pending"}, NOW)
    assert await handle(core, "TriggerMessage", {"requestedMessage": "BootNotification"}) == {
        "status": "Accepted"
    }
    [(action, payload)] = core.take_outgoing()
    assert (action, payload["reason"]) == ("BootNotification", "Triggered")
    core.on_response(action, ACCEPTED_BOOT, NOW)
    assert core.registration is RegistrationStatus.ACCEPTED
    actions = [a for a, _ in core.take_outgoing()]
    assert actions == ["StatusNotification", "SecurityEventNotification"]
    # F06.FR.17: once accepted, a triggered boot is refused.
    assert await handle(core, "TriggerMessage", {"requestedMessage": "BootNotification"}) == {
        "status": "Rejected"
    }


def test_reconnect_without_boot_when_configured() -> None:
    core = booted(V16, boot_on_reconnect=False)
    assert core.on_connected(NOW) is False
    assert [a for a, _ in core.take_outgoing()] == ["StatusNotification"]


def test_security_log_is_bounded_and_tech_info_truncated() -> None:
    core = station(V16, security_log_size=3)
    for i in range(5):
        core.log_security_event("InvalidMessages", NOW + timedelta(seconds=i), "x" * 300)
    assert len(core.security_log) == 3
    assert core.security_log[0].time == NOW + timedelta(seconds=2)
    assert all(len(e.tech_info or "") == 255 for e in core.security_log)
    action, payload = core.security_event_request("SettingSystemTime", NOW, "clock set")
    schema_registry(V16).validate_request(action, payload)
    assert core.security_log[-1].type == "SettingSystemTime"


# ---- 1.6 configuration keys ---------------------------------------------------------------------


async def test_get_configuration_never_discloses_authorization_key() -> None:
    core = booted(V16)
    everything = await handle(core, "GetConfiguration", {})
    keys = {k["key"]: k for k in everything["configurationKey"]}
    assert "AuthorizationKey" not in keys
    assert keys["SecurityProfile"] == {"key": "SecurityProfile", "readonly": False, "value": "1"}
    assert keys["NumberOfConnectors"]["readonly"] is True
    asked = await handle(core, "GetConfiguration", {"key": ["AuthorizationKey", "CpoName"]})
    assert asked["unknownKey"] == ["AuthorizationKey"]
    assert [k["key"] for k in asked["configurationKey"]] == ["CpoName"]
    text = json.dumps([everything, asked]).lower()
    assert KEY.hex() not in text


async def test_change_authorization_key_accepted_switches_credentials() -> None:
    core = booted(V16)
    old_header = core.auth_header()
    response = await handle(
        core, "ChangeConfiguration", {"key": "AuthorizationKey", "value": NEW_KEY_HEX}
    )
    assert response == {"status": "Accepted"}
    assert core.auth_key == bytes.fromhex(NEW_KEY_HEX)
    assert core.reconnect_requested
    assert core.auth_header() != old_header
    # A01.FR.11/12: the change is logged, the key is not.
    entry = core.security_log[-1]
    assert entry.type == "ReconfigurationOfSecurityParameters"
    assert NEW_KEY_HEX.lower() not in str(entry).lower()
    # Write-only after the change too.
    asked = await handle(core, "GetConfiguration", {"key": ["AuthorizationKey"]})
    assert asked == {"configurationKey": [], "unknownKey": ["AuthorizationKey"]}


async def test_new_key_sent_as_hex_in_interop_mode_keeps_csms_text() -> None:

    core = booted(V16, send_key_as_hex=True)
    await handle(core, "ChangeConfiguration", {"key": "AuthorizationKey", "value": NEW_KEY_HEX})
    header = core.auth_header()
    assert header is not None
    assert base64.b64decode(header[6:]) == f"AL1000:{NEW_KEY_HEX}".encode()


@pytest.mark.parametrize(
    "value",
    ["00" * 15, "00" * 21, "0" * 33, "zz" * 20, "00 " * 16, ""],
    ids=["15-bytes", "21-bytes", "odd", "not-hex", "spaces", "empty"],
)
async def test_change_authorization_key_rejected_keeps_old(value: str) -> None:
    core = booted(V16)
    response = await handle(
        core, "ChangeConfiguration", {"key": "AuthorizationKey", "value": value}
    )
    assert response == {"status": "Rejected"}
    assert core.auth_key == KEY
    assert not core.reconnect_requested


@pytest.mark.parametrize("value", ["0", "1", "-1", "x", "4"])
async def test_security_profile_never_lowered(value: str) -> None:
    core = booted(V16)
    response = await handle(core, "ChangeConfiguration", {"key": "SecurityProfile", "value": value})
    assert response == {"status": "Rejected"}  # A05.FR.01
    assert core.security_profile == 1
    assert not core.reconnect_requested


async def test_security_profile_raise_needs_prerequisites() -> None:
    core = booted(V16)
    change = {"key": "SecurityProfile", "value": "2"}
    assert await handle(core, "ChangeConfiguration", change) == {"status": "Rejected"}  # no root
    core.csms_root_installed = True
    change3 = {"key": "SecurityProfile", "value": "3"}
    assert await handle(core, "ChangeConfiguration", change3) == {"status": "Rejected"}  # no cert
    no_key = booted(V16, security_profile=0, auth_key=None)
    assert await handle(
        no_key, "ChangeConfiguration", {"key": "SecurityProfile", "value": "1"}
    ) == {
        "status": "Rejected"  # A05.FR.02
    }


async def test_security_profile_raise_reconnects_over_tls_and_falls_back_on_failure() -> None:
    core = booted(V16, csms_root_installed=True, tls_url="wss://csms.example/ocpp")
    response = await handle(core, "ChangeConfiguration", {"key": "SecurityProfile", "value": "2"})
    assert response == {"status": "Accepted"}
    assert core.reconnect_requested
    assert core.connection_url() == "wss://csms.example/ocpp/AL1000"
    core.on_connect_failed(NOW)  # A05.FR.08
    assert core.security_profile == 1
    assert core.connection_url().startswith("ws://")
    # Once a connection at the raised profile succeeded, there is no way back.
    await handle(core, "ChangeConfiguration", {"key": "SecurityProfile", "value": "2"})
    core.on_connected(NOW)
    core.on_connect_failed(NOW)
    assert core.security_profile == 2


async def test_change_configuration_other_keys() -> None:
    core = booted(V16)
    assert await handle(
        core, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "17"}
    ) == {"status": "Accepted"}
    assert core.heartbeat_interval == 17
    assert await handle(
        core, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "-3"}
    ) == {"status": "Rejected"}
    assert await handle(core, "ChangeConfiguration", {"key": "NoSuchKey", "value": "1"}) == {
        "status": "NotSupported"
    }
    assert await handle(
        core, "ChangeConfiguration", {"key": "NumberOfConnectors", "value": "3"}
    ) == {"status": "Rejected"}
    assert await handle(core, "ChangeConfiguration", {"key": "CpoName", "value": "ACME CPO"}) == {
        "status": "Accepted"
    }
    assert core.cpo_name == "ACME CPO"
    assert not core.reconnect_requested


async def test_trigger_message_16_queues_after_the_answer() -> None:
    core = booted(V16, connector_count=2)
    assert core.take_outgoing() == []
    response = await handle(
        core, "TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 2}
    )
    # The answer exists before anything is sent: the message only sits in the queue.
    assert response == {"status": "Accepted"}
    messages = core.take_outgoing()
    assert_valid_requests(core, messages)
    assert [(a, p["connectorId"]) for a, p in messages] == [("StatusNotification", 2)]
    assert await handle(core, "TriggerMessage", {"requestedMessage": "Heartbeat"}) == {
        "status": "Accepted"
    }
    assert core.take_outgoing() == [("Heartbeat", {})]
    assert await handle(
        core, "TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 3}
    ) == {"status": "Rejected"}
    assert await handle(core, "TriggerMessage", {"requestedMessage": "MeterValues"}) == {
        "status": "NotImplemented"
    }
    assert await handle(core, "TriggerMessage", {"requestedMessage": "BootNotification"}) == {
        "status": "Accepted"
    }
    assert [a for a, _ in core.take_outgoing()] == ["BootNotification"]


@pytest.mark.parametrize("version", [V16, V201])
async def test_reset_reboots_with_startup_and_reset_events(version: OcppVersion) -> None:
    core = booted(version)
    reset = {"type": "Hard"} if version is V16 else {"type": "Immediate"}
    assert await handle(core, "Reset", reset) == {"status": "Accepted"}
    assert core.reconnect_requested
    assert core.on_connected(NOW) is True  # a reboot always boots again
    _, boot = core.boot_request()
    if version is V201:
        assert boot["reason"] == "RemoteReset"
    core.on_boot_response(ACCEPTED_BOOT, NOW)
    events = [p["type"] for a, p in core.take_outgoing() if a == "SecurityEventNotification"]
    assert events == ["ResetOrReboot", "StartupOfTheDevice"]


@pytest.mark.parametrize("version", [V16, V201])
async def test_clear_cache_and_data_transfer(version: OcppVersion) -> None:
    core = booted(version)
    assert await handle(core, "ClearCache", {}) == {"status": "Accepted"}
    assert await handle(core, "DataTransfer", {"vendorId": "com.example"}) == {
        "status": "UnknownVendorId"
    }


@pytest.mark.parametrize("version", [V16, V201])
def test_handlers_are_known_actions_only(version: OcppVersion) -> None:
    handlers = station(version).handlers()
    assert set(handlers) <= schema_registry(version).known_actions()
    common = {"Reset", "TriggerMessage", "ClearCache", "DataTransfer"}
    common |= {  # certificates (SIM-02/03)
        "CertificateSigned",
        "InstallCertificate",
        "DeleteCertificate",
        "GetInstalledCertificateIds",
    }
    common |= {"UpdateFirmware", "GetLog"}  # firmware and logs (SIM-05/06)
    specific = (
        {"GetConfiguration", "ChangeConfiguration", "ExtendedTriggerMessage"}
        | {"SignedUpdateFirmware"}
        if version is V16
        else {"GetVariables", "SetVariables", "SetNetworkProfile"}
    )
    assert set(handlers) == common | specific


# ---- 2.0.1 device model -------------------------------------------------------------------------


def var(component: str, variable: str, **extra: Any) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": variable}, **extra}


async def test_get_variables_basic_auth_password_is_write_only() -> None:
    core = booted(V201)
    response = await handle(
        core,
        "GetVariables",
        {
            "getVariableData": [
                var("SecurityCtrlr", "BasicAuthPassword"),
                var("SecurityCtrlr", "SecurityProfile"),
                var("SecurityCtrlr", "Identity"),
                var("OCPPCommCtrlr", "HeartbeatInterval", attributeType="Actual"),
                var("SecurityCtrlr", "SecurityProfile", attributeType="Target"),
                var("SecurityCtrlr", "NoSuchVariable"),
                var("NoSuchCtrlr", "HeartbeatInterval"),
            ]
        },
    )
    results = response["getVariableResult"]
    assert [r["attributeStatus"] for r in results] == [
        "Rejected",
        "Accepted",
        "Accepted",
        "Accepted",
        "NotSupportedAttributeType",
        "UnknownVariable",
        "UnknownComponent",
    ]
    assert "attributeValue" not in results[0]
    assert [r.get("attributeValue") for r in results[1:4]] == ["1", "AL1000", "60"]
    assert PASSWORD not in json.dumps(response)


async def test_set_variables_password_profile_and_heartbeat() -> None:
    core = booted(V201)
    old_header = core.auth_header()
    response = await handle(
        core,
        "SetVariables",
        {
            "setVariableData": [
                {**var("SecurityCtrlr", "SecurityProfile"), "attributeValue": "2"},
                {**var("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "45"},
                {**var("SecurityCtrlr", "BasicAuthPassword"), "attributeValue": NEW_PASSWORD},
            ]
        },
    )
    statuses = [r["attributeStatus"] for r in response["setVariableResult"]]
    assert statuses == ["Rejected", "Accepted", "Accepted"]
    assert core.security_profile == 1  # read-only: only SetNetworkProfile + reboot change it
    assert core.heartbeat_interval == 45
    assert core.password == NEW_PASSWORD
    assert core.reconnect_requested
    assert core.auth_header() != old_header
    assert NEW_PASSWORD not in str(list(core.security_log))


@pytest.mark.parametrize(
    "value", ["short-pass", "x" * 41, "contains space 0123456789", "ümlaut-password-0123"]
)
async def test_set_variables_bad_password_rejected(value: str) -> None:
    core = booted(V201)
    data = {**var("SecurityCtrlr", "BasicAuthPassword"), "attributeValue": value}
    response = await handle(core, "SetVariables", {"setVariableData": [data]})
    assert response["setVariableResult"][0]["attributeStatus"] == "Rejected"  # TC_A_10_CS
    assert core.password == PASSWORD
    assert not core.reconnect_requested


async def test_trigger_message_201_status_and_heartbeat() -> None:
    core = booted(V201, connector_count=2)
    assert await handle(
        core, "TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 2}}
    ) == {"status": "Accepted"}
    messages = core.take_outgoing()
    assert_valid_requests(core, messages)
    assert [p["evseId"] for _, p in messages] == [2]
    assert await handle(
        core, "TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 9}}
    ) == {"status": "Rejected"}
    assert await handle(core, "TriggerMessage", {"requestedMessage": "Heartbeat"}) == {
        "status": "Accepted"
    }
    assert core.take_outgoing() == [("Heartbeat", {})]
    assert await handle(
        core, "TriggerMessage", {"requestedMessage": "SignCombinedCertificate"}
    ) == {
        "status": "NotImplemented"  # F06.FR.08
    }
    assert await handle(core, "Reset", {"type": "OnIdle", "evseId": 1}) == {"status": "Rejected"}
