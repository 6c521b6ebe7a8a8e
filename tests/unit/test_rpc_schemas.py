"""Validation against the official schemas, and which CALLERROR each violation becomes."""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from typing import Any

import pytest

from chargewarden.rpc.errors import ErrorKind, RpcError
from chargewarden.rpc.schemas import compile_schema, schema_registry
from chargewarden.rpc.versions import OcppVersion

V16, V201 = OcppVersion.V16, OcppVersion.V201
SCHEMA_DIRS = {V16: "v16", V201: "v201"}
NOW = "2024-05-01T12:00:00Z"
SECRET = "S3cr3t-V4lue-N0t-F0r-The-Wire"


def request_error(version: OcppVersion, action: str, payload: dict[str, Any]) -> RpcError:
    with pytest.raises(RpcError) as caught:
        schema_registry(version).validate_request(action, payload)
    return caught.value


@pytest.mark.parametrize("version", [V16, V201])
def test_every_schema_file_of_both_versions_compiles_and_validates(version: OcppVersion) -> None:
    registry = schema_registry(version)
    directory = files("ocpp").joinpath(SCHEMA_DIRS[version], "schemas")
    schema_files = [entry.name for entry in directory.iterdir() if entry.name.endswith(".json")]
    # Every file belongs to a known action: nothing shipped is silently unreachable.
    assert len(schema_files) == 2 * len(registry.known_actions())
    for action in sorted(registry.known_actions()):
        for validate in (registry.validate_request, registry.validate_response):
            try:
                validate(action, {})
            except RpcError as error:  # an empty payload may well be invalid, but not unknown
                assert error.kind is not ErrorKind.NOT_IMPLEMENTED, action


def test_known_actions_match_each_version() -> None:
    assert {"BootNotification", "SecurityEventNotification", "SignCertificate"} <= (
        schema_registry(V16).known_actions()
    )
    assert schema_registry(V16).is_known("ChangeConfiguration")
    assert not schema_registry(V16).is_known("SetVariables")
    assert schema_registry(V201).is_known("SetVariables")
    assert not schema_registry(V201).is_known("ChangeConfiguration")
    assert schema_registry(V16) is schema_registry(V16)


def test_rpc_05_unknown_action_is_not_implemented() -> None:
    assert request_error(V16, "FlyToTheMoon", {}).kind is ErrorKind.NOT_IMPLEMENTED
    with pytest.raises(RpcError) as caught:
        schema_registry(V201).validate_response("FlyToTheMoon", {})
    assert caught.value.kind is ErrorKind.NOT_IMPLEMENTED


def test_valid_messages_pass() -> None:
    schema_registry(V16).validate_request(
        "BootNotification", {"chargePointVendor": "VendorX", "chargePointModel": "Model"}
    )
    schema_registry(V16).validate_response(
        "BootNotification", {"status": "Accepted", "currentTime": NOW, "interval": 300}
    )
    schema_registry(V201).validate_request(
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
    )


BOOT_16 = {"chargePointVendor": "VendorX", "chargePointModel": "Model"}
BOOT_201 = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}

VIOLATIONS = [
    # (version, action, payload, kind, path, rule)
    (V16, "BootNotification", {"chargePointModel": "M"}, ErrorKind.OCCURRENCE_CONSTRAINT,
     "data.chargePointVendor", "required"),
    (V16, "BootNotification", {**BOOT_16, "chargePointVendor": 42}, ErrorKind.TYPE_CONSTRAINT,
     "data.chargePointVendor", "type"),
    (V16, "BootNotification", {**BOOT_16, "chargePointVendor": "V" * 21},
     ErrorKind.PROPERTY_CONSTRAINT, "data.chargePointVendor", "maxLength"),
    (V16, "BootNotification", {**BOOT_16, "colour": "red"}, ErrorKind.FORMAT, "data",
     "additionalProperties"),
    (V16, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Flying"},
     ErrorKind.PROPERTY_CONSTRAINT, "data.status", "enum"),
    (V16, "SecurityEventNotification", {"type": "x", "timestamp": "yesterday"},
     ErrorKind.PROPERTY_CONSTRAINT, "data.timestamp", "format"),
    (V16, "Authorize", {"idTag": SECRET}, ErrorKind.PROPERTY_CONSTRAINT, "data.idTag",
     "maxLength"),
    (V201, "BootNotification", {"chargingStation": {"model": "M", "vendorName": "V"}},
     ErrorKind.OCCURRENCE_CONSTRAINT, "data.reason", "required"),
    (V201, "BootNotification", {"reason": "PowerUp", "chargingStation": {"model": "M"}},
     ErrorKind.OCCURRENCE_CONSTRAINT, "data.chargingStation.vendorName", "required"),
    (V201, "BootNotification", {**BOOT_201, "chargingStation": {"model": 5, "vendorName": "V"}},
     ErrorKind.TYPE_CONSTRAINT, "data.chargingStation.model", "type"),
    (V201, "BootNotification", {**BOOT_201, "reason": "Bored"}, ErrorKind.PROPERTY_CONSTRAINT,
     "data.reason", "enum"),
    (V201, "BootNotification", {**BOOT_201, "extra": 1}, ErrorKind.FORMAT, "data",
     "additionalProperties"),
    (V201, "Authorize", {"idToken": {"idToken": "T" * 37, "type": "ISO14443"}},
     ErrorKind.PROPERTY_CONSTRAINT, "data.idToken.idToken", "maxLength"),
    (V201, "MeterValues", {"evseId": 1, "meterValue": []}, ErrorKind.OCCURRENCE_CONSTRAINT,
     "data.meterValue", "minItems"),
    (V201, "MeterValues",
     {"evseId": 1, "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "12"}]}]},
     ErrorKind.TYPE_CONSTRAINT, "data.meterValue[0].sampledValue[0].value", "type"),
]


@pytest.mark.parametrize(
    ("version", "action", "payload", "kind", "path", "rule"),
    VIOLATIONS,
    ids=[f"{v}-{a}-{r}" for v, a, _, _, _, r in VIOLATIONS],
)
def test_rpc_04_schema_violation_maps_to_its_kind_with_path_and_rule(
    version: OcppVersion,
    action: str,
    payload: dict[str, Any],
    kind: ErrorKind,
    path: str,
    rule: str,
) -> None:
    error = request_error(version, action, payload)
    assert error.kind is kind
    assert error.details == {"path": path, "rule": rule}
    assert error.description == f"{path}: violates {rule}"


@pytest.mark.parametrize(
    "payload",
    [
        {"idTag": SECRET},  # too long
        {"idTag": 12345678901234567},  # wrong type
    ],
)
def test_error_never_echoes_the_offending_value(payload: dict[str, Any]) -> None:
    error = request_error(V16, "Authorize", payload)
    shown = json.dumps([error.description, error.details])
    assert str(payload["idTag"]) not in shown


def test_error_never_echoes_unexpected_property_names() -> None:
    error = request_error(V16, "Heartbeat", {SECRET: 1})
    assert SECRET not in json.dumps([error.description, error.details])


def test_validation_does_not_insert_schema_defaults() -> None:
    # The 2.0.1 schema gives "context" a default; the payload must stay as the station sent it.
    payload = {"evseId": 1, "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": 1}]}]}
    before = copy.deepcopy(payload)
    schema_registry(V201).validate_request("MeterValues", payload)
    assert payload == before


def test_decimal_multiple_of_is_checked_exactly() -> None:
    # 1.6 charging limits are multipleOf 0.1; binary floats must not make 21.4 invalid.
    def profile(limit: float) -> dict[str, Any]:
        return {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
                },
            },
        }

    schema_registry(V16).validate_request("SetChargingProfile", profile(21.4))
    error = request_error(V16, "SetChargingProfile", profile(21.45))
    assert (error.kind, error.details["rule"]) == (ErrorKind.PROPERTY_CONSTRAINT, "multipleOf")


def test_compiles_schemas_with_urn_id_and_java_type() -> None:
    # Shape of the official 2.0.1 files: "$id" URN, "javaType", "comment", local references.
    validate = compile_schema(
        {
            "$schema": "http://json-schema.org/draft-06/schema#",
            "$id": "urn:OCPP:Cp:2:2020:3:ExampleRequest",
            "comment": "OCPP 2.0.1 FINAL",
            "definitions": {
                "ThingEnumType": {"javaType": "ThingEnum", "type": "string", "enum": ["A", "B"]}
            },
            "type": "object",
            "additionalProperties": False,
            "properties": {"thing": {"$ref": "#/definitions/ThingEnumType"}},
            "required": ["thing"],
        }
    )
    validate({"thing": "A"})
    with pytest.raises(ValueError):
        validate({"thing": "C"})
