"""Parsing and encoding OCPP-J frames."""

from __future__ import annotations

import json

import pytest

from chargewarden.rpc.errors import ErrorKind, RpcError
from chargewarden.rpc.frames import (
    MAX_MESSAGE_ID_LENGTH,
    Call,
    CallError,
    CallResult,
    MessageType,
    encode_call,
    encode_error,
    encode_result,
    parse_frame,
)


def parse_error(data: str | bytes) -> RpcError:
    with pytest.raises(RpcError) as caught:
        parse_frame(data)
    return caught.value


def test_parses_the_spec_examples() -> None:
    call = parse_frame(
        '[2, "19223201", "BootNotification", '
        '{"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"}]'
    )
    assert call == Call(
        "19223201",
        "BootNotification",
        {"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"},
    )
    result = parse_frame('[3, "19223201", {"status": "Accepted", "heartbeatInterval": 300}]')
    assert result == CallResult("19223201", {"status": "Accepted", "heartbeatInterval": 300})
    error = parse_frame('[4, "162376037", "NotSupported", "SetDisplayMessage not supported", {}]')
    assert error == CallError("162376037", "NotSupported", "SetDisplayMessage not supported", {})


def test_accepts_bytes_surrounding_whitespace_and_null_payload() -> None:
    # OCPP-J §4.2.1: null is an allowed notation for "no payload".
    assert parse_frame(b' \n[2,"1","Heartbeat",null] ') == Call("1", "Heartbeat", {})
    assert parse_frame('[3,"1",null]') == CallResult("1", {})


def test_callerror_without_details_is_still_an_error_answer() -> None:
    assert parse_frame('[4,"1","InternalError","boom"]') == CallError(
        "1", "InternalError", "boom", {}
    )


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "[2,\"1\",\"Heartbeat\",{}] trailing",
        b"\xff\xfe[2]",  # not UTF-8
        '{"messageTypeId": 2}',
        '"just a string"',
        "[]",
        "[2]",
        '[2, 12345, "Heartbeat", {}]',
        '[2, null, "Heartbeat", {}]',
        '[2, "' + "x" * (MAX_MESSAGE_ID_LENGTH + 1) + '", "Heartbeat", {}]',
        '[2, "1", "Heartbeat", {"x": NaN}]',
        '[2, "1", "Heartbeat", {"x": Infinity}]',
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=[
        "malformed-json",
        "trailing-garbage",
        "not-utf8",
        "object-not-array",
        "string-not-array",
        "empty-array",
        "no-id",
        "numeric-id",
        "null-id",
        "id-too-long",
        "nan",
        "infinity",
        "deeply-nested",
    ],
)
def test_rpc_03_unreadable_frames_get_framework_error_with_id_minus_one(data: str) -> None:
    error = parse_error(data)
    assert error.kind is ErrorKind.RPC_FRAMEWORK
    assert error.unique_id == "-1"


def test_rpc_06_id_of_exactly_36_characters_is_accepted() -> None:
    unique_id = "x" * MAX_MESSAGE_ID_LENGTH
    assert parse_frame(f'[2,"{unique_id}","Heartbeat",{{}}]') == Call(unique_id, "Heartbeat", {})


def test_rpc_03_unknown_message_type_keeps_the_readable_id() -> None:
    error = parse_error('[5, "abc", "Heartbeat", {}]')
    assert error.kind is ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED
    assert error.unique_id == "abc"
    assert parse_error("[7]").unique_id == "-1"


@pytest.mark.parametrize(
    "data",
    ['["2", "abc", "Heartbeat", {}]', '[true, "abc", "Heartbeat", {}]', '[2.0, "abc", "X", {}]'],
)
def test_rpc_03_message_type_that_is_not_an_integer_is_a_framework_error(data: str) -> None:
    error = parse_error(data)
    assert (error.kind, error.unique_id) == (ErrorKind.RPC_FRAMEWORK, "abc")


@pytest.mark.parametrize(
    "data",
    [
        '[2, "abc", "Heartbeat"]',
        '[2, "abc", "Heartbeat", {}, {}]',
        '[2, "abc", 7, {}]',
        '[3, "abc"]',
        '[4, "abc", "InternalError"]',
        '[4, "abc", 1, "x", {}]',
    ],
)
def test_rpc_03_wrong_shape_with_readable_id_is_framework_error_for_that_id(data: str) -> None:
    error = parse_error(data)
    assert (error.kind, error.unique_id) == (ErrorKind.RPC_FRAMEWORK, "abc")


@pytest.mark.parametrize(
    "data",
    ['[2, "abc", "Heartbeat", []]', '[2, "abc", "Heartbeat", "x"]', '[3, "abc", 5]'],
)
def test_rpc_04_payload_that_is_not_an_object_is_a_format_error(data: str) -> None:
    error = parse_error(data)
    assert (error.kind, error.unique_id) == (ErrorKind.FORMAT, "abc")


def test_frame_errors_say_which_message_type_was_broken() -> None:
    # The endpoint must not answer a broken CALLRESULT with a CALLERROR.
    assert getattr(parse_error('[3, "abc", 5]'), "message_type", None) is MessageType.CALLRESULT
    assert getattr(parse_error('[2, "abc", "X"]'), "message_type", None) is MessageType.CALL
    assert getattr(parse_error("nope"), "message_type", "unset") is None


def test_encoders_produce_compact_json_that_parses_back() -> None:
    call = Call("1", "DataTransfer", {"vendorId": "Ünïcode", "data": "€"})
    text = encode_call(call)
    assert text == '[2,"1","DataTransfer",{"vendorId":"Ünïcode","data":"€"}]'
    assert parse_frame(text) == call
    assert encode_result("1", {}) == '[3,"1",{}]'
    assert encode_error("1", "GenericError", "x", {"a": 1}) == '[4,"1","GenericError","x",{"a":1}]'


def test_error_description_is_cut_to_255_characters() -> None:
    text = encode_error("1", "GenericError", "é" * 1000, {})
    assert len(json.loads(text)[3]) == 255


def test_lone_surrogate_is_escaped_so_the_frame_can_be_sent_as_utf8() -> None:
    text = encode_result("1", {"data": "\ud800"})
    text.encode("utf-8")  # would raise if the surrogate were written raw
    assert json.loads(text)[2] == {"data": "\ud800"}


def test_non_finite_numbers_are_never_encoded() -> None:
    with pytest.raises(ValueError):
        encode_result("1", {"value": float("nan")})
