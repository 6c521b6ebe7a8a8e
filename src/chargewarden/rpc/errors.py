"""CALLERROR kinds and their wire codes, which differ between OCPP 1.6J and 2.0.1.

Code inside ChargeWarden speaks in `ErrorKind`; the wire string is chosen only when a frame is
encoded, so no module can accidentally send a 2.0.1 spelling to a 1.6 station or vice versa.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from chargewarden.rpc.versions import OcppVersion


class ErrorKind(Enum):
    NOT_IMPLEMENTED = "not_implemented"
    NOT_SUPPORTED = "not_supported"
    INTERNAL = "internal"
    PROTOCOL = "protocol"
    SECURITY = "security"
    FORMAT = "format"
    PROPERTY_CONSTRAINT = "property_constraint"
    OCCURRENCE_CONSTRAINT = "occurrence_constraint"
    TYPE_CONSTRAINT = "type_constraint"
    GENERIC = "generic"
    RPC_FRAMEWORK = "rpc_framework"
    MESSAGE_TYPE_NOT_SUPPORTED = "message_type_not_supported"


_COMMON: dict[ErrorKind, str] = {
    ErrorKind.NOT_IMPLEMENTED: "NotImplemented",
    ErrorKind.NOT_SUPPORTED: "NotSupported",
    ErrorKind.INTERNAL: "InternalError",
    ErrorKind.PROTOCOL: "ProtocolError",
    ErrorKind.SECURITY: "SecurityError",
    ErrorKind.PROPERTY_CONSTRAINT: "PropertyConstraintViolation",
    ErrorKind.TYPE_CONSTRAINT: "TypeConstraintViolation",
    ErrorKind.GENERIC: "GenericError",
}

_CODES: dict[OcppVersion, dict[ErrorKind, str]] = {
    # OCPP-J 1.6 Table 7. The errata (§5.1, §5.2) keep the misspellings on purpose: changing
    # them would break deployed stations. 1.6 has no RpcFrameworkError or
    # MessageTypeNotSupported, so the nearest 1.6 codes stand in (REQUIREMENTS RPC-03).
    OcppVersion.V16: {
        **_COMMON,
        ErrorKind.FORMAT: "FormationViolation",
        ErrorKind.OCCURRENCE_CONSTRAINT: "OccurenceConstraintViolation",
        ErrorKind.RPC_FRAMEWORK: "FormationViolation",
        ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED: "ProtocolError",
    },
    # OCPP 2.0.1 Part 4, Table 8.
    OcppVersion.V201: {
        **_COMMON,
        ErrorKind.FORMAT: "FormatViolation",
        ErrorKind.OCCURRENCE_CONSTRAINT: "OccurrenceConstraintViolation",
        ErrorKind.RPC_FRAMEWORK: "RpcFrameworkError",
        ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED: "MessageTypeNotSupported",
    },
}


def error_code(kind: ErrorKind, version: OcppVersion) -> str:
    """The errorCode string `version` uses on the wire for `kind`."""
    return _CODES[version][kind]


class RpcError(Exception):
    """A failure that becomes a CALLERROR.

    `description` and `details` go on the wire: never put payload values, secrets or
    traceback text in them.
    """

    def __init__(
        self,
        kind: ErrorKind,
        description: str = "",
        details: dict[str, Any] | None = None,
        unique_id: str | None = None,
    ) -> None:
        super().__init__(kind, description)
        self.kind = kind
        self.description = description
        self.details: dict[str, Any] = details if details is not None else {}
        self.unique_id = unique_id

    def __str__(self) -> str:
        return f"{self.kind.name}: {self.description}" if self.description else self.kind.name
