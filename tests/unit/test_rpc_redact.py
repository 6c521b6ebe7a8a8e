"""Redaction of credentials from payloads before they are logged or traced."""

from __future__ import annotations

import copy
import json
from typing import Any

from chargewarden.rpc.redact import redact_payload

KEY = "0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF"
PASSWORD = "correct-horse-battery-staple"


def assert_hidden(action: str, payload: dict[str, Any], secret: str) -> dict[str, Any]:
    original = copy.deepcopy(payload)
    redacted = redact_payload(action, payload)
    assert secret not in json.dumps(redacted)
    assert payload == original, "the input must not be modified"
    return redacted


def test_16_change_configuration_authorization_key() -> None:
    redacted = assert_hidden(
        "ChangeConfiguration", {"key": "AuthorizationKey", "value": KEY}, KEY
    )
    assert redacted == {"key": "AuthorizationKey", "value": "***"}


def test_16_other_configuration_values_are_kept() -> None:
    payload = {"key": "HeartbeatInterval", "value": "300"}
    assert redact_payload("ChangeConfiguration", payload) == payload


def test_16_get_configuration_response_entry() -> None:
    redacted = assert_hidden(
        "GetConfiguration",
        {
            "configurationKey": [
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                {"key": "AuthorizationKey", "readonly": False, "value": KEY},
            ]
        },
        KEY,
    )
    assert redacted["configurationKey"][0]["value"] == "300"
    assert redacted["configurationKey"][1]["value"] == "***"


def test_201_set_and_get_variables_basic_auth_password() -> None:
    component = {"name": "SecurityCtrlr"}
    set_request = {
        "setVariableData": [
            {
                "attributeValue": PASSWORD,
                "component": component,
                "variable": {"name": "BasicAuthPassword"},
            },
            {"attributeValue": "60", "component": component, "variable": {"name": "Interval"}},
        ]
    }
    redacted = assert_hidden("SetVariables", set_request, PASSWORD)
    assert [item["attributeValue"] for item in redacted["setVariableData"]] == ["***", "60"]
    get_response = {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "attributeValue": PASSWORD,
                "component": component,
                "variable": {"name": "BasicAuthPassword"},
            }
        ]
    }
    assert_hidden("GetVariables", get_response, PASSWORD)


def test_201_report_of_a_password_variable() -> None:
    report = {
        "requestId": 1,
        "generatedAt": "2024-05-01T12:00:00Z",
        "seqNo": 0,
        "reportData": [
            {
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
                "variableAttribute": [{"type": "Actual", "value": PASSWORD}],
            }
        ],
    }
    assert_hidden("NotifyReport", report, PASSWORD)


def test_any_password_property_and_vpn_key_are_hidden() -> None:
    profile = {
        "configurationSlot": 1,
        "connectionData": {
            "apn": {"apn": "internet", "apnPassword": PASSWORD, "apnAuthentication": "PAP"},
            "vpn": {"server": "vpn", "user": "u", "password": PASSWORD, "key": KEY,
                    "type": "IPSec"},
        },
    }
    redacted = assert_hidden("SetNetworkProfile", profile, PASSWORD)
    assert KEY not in json.dumps(redacted)
    assert redacted["connectionData"]["apn"]["apn"] == "internet"


def test_authorization_key_property_in_any_case() -> None:
    assert_hidden("DataTransfer", {"vendorId": "x", "AUTHORIZATIONKEY": KEY}, KEY)
    assert_hidden("DataTransfer", {"vendorId": "x", "authorizationKey": KEY}, KEY)


def test_ordinary_payloads_are_unchanged_copies() -> None:
    payload = {"chargePointVendor": "V", "nested": [{"a": 1}]}
    redacted = redact_payload("BootNotification", payload)
    assert redacted == payload
    assert redacted is not payload and redacted["nested"] is not payload["nested"]
