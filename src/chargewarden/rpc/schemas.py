"""Validation of OCPP payloads against the official schemas shipped in the `ocpp` package.

The schema files are the OCA's own (DESIGN.md: never retype them). Each one is compiled to
Python by fastjsonschema the first time its action is seen, then reused: compiling all 206 files
up front would add well over a second to start-up for messages most stations never send.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import cache
from importlib.resources import files
from typing import Any

import fastjsonschema

from chargewarden.rpc.errors import ErrorKind, RpcError
from chargewarden.rpc.versions import OcppVersion

Validator = Callable[[Any], Any]

_SCHEMA_DIRS: Mapping[OcppVersion, str] = {OcppVersion.V16: "v16", OcppVersion.V201: "v201"}
_REQUEST_SUFFIX: Mapping[OcppVersion, str] = {OcppVersion.V16: "", OcppVersion.V201: "Request"}
_RESPONSE_SUFFIX = "Response"

# Schema rule → CALLERROR kind (OCPP-J 1.6 Table 7, 2.0.1 Part 4 Table 8). Anything not listed,
# additionalProperties included, is a structural problem: FormationViolation / FormatViolation.
_RULE_KINDS: Mapping[str, ErrorKind] = {
    "required": ErrorKind.OCCURRENCE_CONSTRAINT,
    "minItems": ErrorKind.OCCURRENCE_CONSTRAINT,
    "maxItems": ErrorKind.OCCURRENCE_CONSTRAINT,
    "type": ErrorKind.TYPE_CONSTRAINT,
    "enum": ErrorKind.PROPERTY_CONSTRAINT,
    "const": ErrorKind.PROPERTY_CONSTRAINT,
    "maxLength": ErrorKind.PROPERTY_CONSTRAINT,
    "minLength": ErrorKind.PROPERTY_CONSTRAINT,
    "pattern": ErrorKind.PROPERTY_CONSTRAINT,
    "format": ErrorKind.PROPERTY_CONSTRAINT,
    "minimum": ErrorKind.PROPERTY_CONSTRAINT,
    "maximum": ErrorKind.PROPERTY_CONSTRAINT,
    "exclusiveMinimum": ErrorKind.PROPERTY_CONSTRAINT,
    "exclusiveMaximum": ErrorKind.PROPERTY_CONSTRAINT,
    "multipleOf": ErrorKind.PROPERTY_CONSTRAINT,
}

# Paths are built from schema property names and array indices, but a path that ever contained
# a key chosen by the peer must not reach the wire or the logs, so anything else is cut back.
_SAFE_PATH = re.compile(r"data(?:\.[A-Za-z0-9_]{1,64}|\[\d{1,6}\]){0,32}")


class _Cyclic(Exception):
    pass


def _inline_definitions(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Replace every "#/definitions/X" reference by a copy of X.

    fastjsonschema turns each reference into a function call that also builds a path string,
    on every item of every array; inlined, a 2.0.1 MeterValues validates about 40 % faster.
    OCPP schemas are not recursive; one that is raises _Cyclic and is compiled as it is.
    """
    definitions = schema.get("definitions", {})

    def resolve(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/definitions/")
            if name == ref or name in seen or name not in definitions:
                raise _Cyclic(ref)
            # Siblings of "$ref" are ignored in drafts 4 and 6, so the definition replaces all.
            return resolve(definitions[name], seen | {name})
        return {key: resolve(value, seen) for key, value in node.items()}

    body = {key: value for key, value in schema.items() if key != "definitions"}
    inlined: dict[str, Any] = resolve(body, frozenset())
    return inlined


def compile_schema(schema: Mapping[str, Any]) -> Validator:
    """Compile one OCPP schema.

    use_default=False: fastjsonschema would otherwise write schema defaults into the payload
    while validating, and validation must never change what the station sent. Unknown keywords
    such as the 2.0.1 files' "javaType" and "comment" are ignored, and "$id" URNs (1.6 security
    extension and official 2.0.1 files) are only a base for "#/definitions/..." references.
    """
    try:
        prepared = _inline_definitions(schema)
    except _Cyclic:
        prepared = dict(schema)
    return fastjsonschema.compile(prepared, use_default=False)


def _schema_error(exc: fastjsonschema.JsonSchemaValueException) -> RpcError:
    rule = exc.rule or "unknown"
    path = exc.name or "data"
    if rule == "required" and isinstance(exc.value, dict):
        # fastjsonschema reports the parent object; name the missing property instead. The
        # name comes from the schema, not from the peer, so it is safe to send back.
        required = exc.rule_definition or ()
        missing = next((name for name in required if name not in exc.value), None)
        if missing is not None:
            path = f"{path}.{missing}"
    if _SAFE_PATH.fullmatch(path) is None:
        path = "data"
    # Only the location and the rule: the offending value may be a password or a key.
    return RpcError(
        _RULE_KINDS.get(rule, ErrorKind.FORMAT),
        f"{path}: violates {rule}",
        {"path": path, "rule": rule},
    )


class SchemaRegistry:
    """The request and response validators of one OCPP version."""

    def __init__(self, version: OcppVersion) -> None:
        self.version = version
        self._dir = files("ocpp").joinpath(_SCHEMA_DIRS[version], "schemas")
        self._request_suffix = _REQUEST_SUFFIX[version]
        names = {entry.name for entry in self._dir.iterdir() if entry.name.endswith(".json")}
        responses = {
            name.removesuffix(".json").removesuffix(_RESPONSE_SUFFIX)
            for name in names
            if name.endswith(_RESPONSE_SUFFIX + ".json")
        }
        requests = {
            name.removesuffix(".json").removesuffix(self._request_suffix)
            for name in names
            if not name.endswith(_RESPONSE_SUFFIX + ".json")
            and name.endswith(self._request_suffix + ".json")
        }
        # An action needs both halves: a request we could check but whose answer we could not
        # (or the reverse) would be half-validated traffic.
        self._actions = frozenset(requests & responses)
        self._requests: dict[str, Validator] = {}
        self._responses: dict[str, Validator] = {}

    def known_actions(self) -> frozenset[str]:
        return self._actions

    def is_known(self, action: str) -> bool:
        return action in self._actions

    def validate_request(self, action: str, payload: dict[str, Any]) -> None:
        validator = self._requests.get(action)
        if validator is None:
            validator = self._requests[action] = self._load(action, self._request_suffix)
        try:
            validator(payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise _schema_error(exc) from None

    def validate_response(self, action: str, payload: dict[str, Any]) -> None:
        validator = self._responses.get(action)
        if validator is None:
            validator = self._responses[action] = self._load(action, _RESPONSE_SUFFIX)
        try:
            validator(payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise _schema_error(exc) from None

    def _load(self, action: str, suffix: str) -> Validator:
        if action not in self._actions:
            raise RpcError(ErrorKind.NOT_IMPLEMENTED, "unknown action")
        text = self._dir.joinpath(f"{action}{suffix}.json").read_text(encoding="utf-8-sig")
        return compile_schema(json.loads(text))


@cache
def schema_registry(version: OcppVersion) -> SchemaRegistry:
    """The process-wide registry for `version`; validators compiled once are shared by all
    connections."""
    return SchemaRegistry(version)
