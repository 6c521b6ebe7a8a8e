"""Wire codes per version: the exact strings stations compare against."""

from __future__ import annotations

import pytest

from chargewarden.rpc.errors import ErrorKind, RpcError, error_code
from chargewarden.rpc.versions import OcppVersion

V16, V201 = OcppVersion.V16, OcppVersion.V201

EXPECTED = {
    ErrorKind.NOT_IMPLEMENTED: ("NotImplemented", "NotImplemented"),
    ErrorKind.NOT_SUPPORTED: ("NotSupported", "NotSupported"),
    ErrorKind.INTERNAL: ("InternalError", "InternalError"),
    ErrorKind.PROTOCOL: ("ProtocolError", "ProtocolError"),
    ErrorKind.SECURITY: ("SecurityError", "SecurityError"),
    # 1.6 errata §5.1/§5.2: the misspellings stay on the wire.
    ErrorKind.FORMAT: ("FormationViolation", "FormatViolation"),
    ErrorKind.PROPERTY_CONSTRAINT: ("PropertyConstraintViolation", "PropertyConstraintViolation"),
    ErrorKind.OCCURRENCE_CONSTRAINT: (
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
    ),
    ErrorKind.TYPE_CONSTRAINT: ("TypeConstraintViolation", "TypeConstraintViolation"),
    ErrorKind.GENERIC: ("GenericError", "GenericError"),
    # 1.6 has neither code; the nearest 1.6 codes stand in (RPC-03).
    ErrorKind.RPC_FRAMEWORK: ("FormationViolation", "RpcFrameworkError"),
    ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED: ("ProtocolError", "MessageTypeNotSupported"),
}


def test_every_kind_has_an_expected_code() -> None:
    assert set(EXPECTED) == set(ErrorKind)


@pytest.mark.parametrize("kind", list(ErrorKind), ids=lambda kind: kind.name)
def test_rpc_04_error_code_is_exact_per_version(kind: ErrorKind) -> None:
    assert (error_code(kind, V16), error_code(kind, V201)) == EXPECTED[kind]


def test_rpc_error_carries_its_fields_and_empty_details_by_default() -> None:
    error = RpcError(ErrorKind.SECURITY, "not accepted", unique_id="42")
    assert (error.kind, error.description, error.details, error.unique_id) == (
        ErrorKind.SECURITY,
        "not accepted",
        {},
        "42",
    )
    assert "not accepted" in str(error)
