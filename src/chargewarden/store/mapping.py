"""Record <-> row conversion, in one place.

Values are checked here, before any SQL: the same bad input must fail the same way on SQLite
(which enforces almost nothing) and on PostgreSQL, and fail with a Python error that names the
field rather than a driver error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.models import (
    AuditRow,
    CertificateRow,
    ConnectorStatusRow,
    OperatorRow,
    SecurityEventRow,
    StationRow,
)
from chargewarden.store.records import (
    AuditRecord,
    CertificateRecord,
    CertificateRole,
    ConnectorStatusRecord,
    EventSource,
    OperatorRecord,
    OperatorRole,
    RegistrationStatus,
    SecurityEventRecord,
    StationRecord,
)

MAX_IDENTITY_LENGTH = 48  # OCPP-J: identity is at most 48 characters (also a CHECK constraint)


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: Any, name: str) -> datetime:
    """The datetime in UTC; naive ones are refused because their zone would be a guess."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _stamp(value: datetime | None, name: str, now: datetime) -> datetime:
    """A timestamp the store fills in when the caller left it out."""
    return now if value is None else aware(value, name)


def _optional(convert: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    def converter(value: Any, name: str) -> Any:
        return None if value is None else convert(value, name)

    return converter


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def _profile(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
        raise ValueError(f"{name} must be a security profile 0-3, got {value!r}")
    return value


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _version(value: Any, name: str) -> str:
    return OcppVersion(value).value


def _registration(value: Any, name: str) -> str:
    return RegistrationStatus(value).value


def identity(value: Any, name: str = "identity") -> str:
    text = _text(value, name)
    if not 1 <= len(text) <= MAX_IDENTITY_LENGTH:
        raise ValueError(f"{name} must be 1-{MAX_IDENTITY_LENGTH} characters, got {len(text)}")
    return text


# --- stations ------------------------------------------------------------------------------

# One converter per StationRecord field except identity/created_at (set once, at add).
_STATION_COLUMNS: dict[str, Callable[[Any, str], Any]] = {
    "ocpp_version": _version,
    "security_profile": _profile,
    "pending_profile": _optional(_profile),
    "credential_hash": _optional(_text),
    "pending_credential_hash": _optional(_text),
    "strict_password": _flag,
    "serial_number": _optional(_text),
    "cpo_name": _optional(_text),
    "registration_status": _registration,
    "needs_credential_update": _flag,
    "last_boot_status": _optional(_registration),
    "vendor": _optional(_text),
    "model": _optional(_text),
    "firmware_version": _optional(_text),
    "last_seen": _optional(aware),
}
STATION_UPDATABLE = frozenset(_STATION_COLUMNS)
if STATION_UPDATABLE | {"identity", "created_at"} != {f.name for f in fields(StationRecord)}:
    # A field added to StationRecord must get a column, a converter and a migration.
    raise RuntimeError("StationRecord fields and the stations table mapping disagree")


def station_values(record: StationRecord, now: datetime) -> dict[str, Any]:
    values = {name: conv(getattr(record, name), name) for name, conv in _STATION_COLUMNS.items()}
    values["identity"] = identity(record.identity)
    values["created_at"] = _stamp(record.created_at, "created_at", now)
    values["updated_at"] = now
    return values


def station_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for ``StationRepository.update``; TypeError for fields it cannot change."""
    unknown = sorted(set(changes) - STATION_UPDATABLE)
    if unknown:
        raise TypeError(
            f"cannot update station field(s) {', '.join(unknown)}; "
            f"updatable: {', '.join(sorted(STATION_UPDATABLE))}"
        )
    return {name: _STATION_COLUMNS[name](value, name) for name, value in changes.items()}


def station_record(row: StationRow) -> StationRecord:
    return StationRecord(
        identity=row.identity,
        ocpp_version=OcppVersion(row.ocpp_version),
        security_profile=row.security_profile,
        pending_profile=row.pending_profile,
        credential_hash=row.credential_hash,
        pending_credential_hash=row.pending_credential_hash,
        strict_password=row.strict_password,
        serial_number=row.serial_number,
        cpo_name=row.cpo_name,
        registration_status=RegistrationStatus(row.registration_status),
        needs_credential_update=row.needs_credential_update,
        last_boot_status=(
            RegistrationStatus(row.last_boot_status) if row.last_boot_status else None
        ),
        vendor=row.vendor,
        model=row.model,
        firmware_version=row.firmware_version,
        last_seen=row.last_seen,
        created_at=row.created_at,
    )


def connector_values(record: ConnectorStatusRecord, now: datetime) -> dict[str, Any]:
    return {
        "station_identity": identity(record.station_identity, "station_identity"),
        "evse_id": _count(record.evse_id, "evse_id"),
        "connector_id": _count(record.connector_id, "connector_id"),
        "status": _text(record.status, "status"),
        "error_code": _optional(_text)(record.error_code, "error_code"),
        "updated_at": _stamp(record.updated_at, "updated_at", now),
    }


def connector_record(row: ConnectorStatusRow) -> ConnectorStatusRecord:
    return ConnectorStatusRecord(
        station_identity=row.station_identity,
        evse_id=row.evse_id,
        connector_id=row.connector_id,
        status=row.status,
        error_code=row.error_code,
        updated_at=row.updated_at,
    )


# --- security events and audit -------------------------------------------------------------


def event_values(event: SecurityEventRecord, now: datetime) -> dict[str, Any]:
    # No identity length check: events about malformed identities of rejected connections are
    # exactly the ones an operator needs to see.
    return {
        "station_identity": _optional(_text)(event.station_identity, "station_identity"),
        "type": _text(event.type, "type"),
        "source": EventSource(event.source).value,
        "critical": _flag(event.critical, "critical"),
        "occurred_at": _optional(aware)(event.occurred_at, "occurred_at"),
        "received_at": _stamp(event.received_at, "received_at", now),
        "tech_info": _optional(_text)(event.tech_info, "tech_info"),
        "peer_address": _optional(_text)(event.peer_address, "peer_address"),
        "ocpp_version": _optional(_version)(event.ocpp_version, "ocpp_version"),
    }


def event_record(row: SecurityEventRow) -> SecurityEventRecord:
    return SecurityEventRecord(
        id=row.id,
        type=row.type,
        source=EventSource(row.source),
        critical=row.critical,
        station_identity=row.station_identity,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        tech_info=row.tech_info,
        peer_address=row.peer_address,
        ocpp_version=OcppVersion(row.ocpp_version) if row.ocpp_version else None,
    )


def audit_values(record: AuditRecord, now: datetime) -> dict[str, Any]:
    if not isinstance(record.details, Mapping):
        raise TypeError(f"details must be a dict, not {type(record.details).__name__}")
    try:
        # Round-trip now: a value JSON cannot hold must fail here, naming the audit entry,
        # and NaN is refused because PostgreSQL's json type refuses it while SQLite would not.
        details = json.loads(json.dumps(dict(record.details), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"audit details of {record.action!r} are not JSON: {exc}") from None
    return {
        "actor": _text(record.actor, "actor"),
        "action": _text(record.action, "action"),
        "target": _optional(_text)(record.target, "target"),
        "details": details,
        "at": _stamp(record.at, "at", now),
    }


def audit_record(row: AuditRow) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        actor=row.actor,
        action=row.action,
        target=row.target,
        details=dict(row.details),
        at=row.at,
    )


# --- operators -----------------------------------------------------------------------------


def operator_values(record: OperatorRecord, now: datetime) -> dict[str, Any]:
    return {
        "name": _text(record.name, "name"),
        "role": OperatorRole(record.role).value,
        "token_lookup": _text(record.token_lookup, "token_lookup"),
        "token_hash": _text(record.token_hash, "token_hash"),
        "created_at": _stamp(record.created_at, "created_at", now),
    }


def operator_record(row: OperatorRow) -> OperatorRecord:
    return OperatorRecord(
        id=row.id,
        name=row.name,
        role=OperatorRole(row.role),
        token_lookup=row.token_lookup,
        token_hash=row.token_hash,
        created_at=row.created_at,
    )


# --- certificates --------------------------------------------------------------------------


def serial(value: Any, name: str = "serial") -> str:
    """A certificate serial as stored: upper-case hex, no leading zeros.

    Accepts the spellings operators paste: any case, ``0x`` prefix, colons or spaces between
    bytes (``openssl x509 -serial``, browser dialogs).
    """
    text = _text(value, name).strip()
    compact = text.replace(":", "").replace(" ", "")
    if compact[:2].lower() == "0x":
        compact = compact[2:]
    try:
        number = int(compact, 16) if compact else -1
    except ValueError:
        number = -1
    if number < 0 or not all(c in "0123456789abcdefABCDEF" for c in compact):
        raise ValueError(f"{name} must be a hexadecimal certificate serial, got {text!r}")
    return format(number, "X")


def _fingerprint(value: Any, name: str) -> str:
    text = _text(value, name).replace(":", "").lower()
    if len(text) != 64 or not all(c in "0123456789abcdef" for c in text):
        raise ValueError(f"{name} must be 64 hex digits (SHA-256), got {value!r}")
    return text


def certificate_values(record: CertificateRecord, now: datetime) -> dict[str, Any]:
    not_before = aware(record.not_before, "not_before")
    not_after = aware(record.not_after, "not_after")
    if not_after <= not_before:
        raise ValueError("not_after must be later than not_before")
    return {
        "serial": serial(record.serial),
        "issuer_ca": _text(record.issuer_ca, "issuer_ca"),
        "role": CertificateRole(record.role).value,
        "subject_cn": _optional(_text)(record.subject_cn, "subject_cn"),
        "subject_o": _optional(_text)(record.subject_o, "subject_o"),
        "station_identity": _optional(identity)(record.station_identity, "station_identity"),
        "fingerprint_sha256": _fingerprint(record.fingerprint_sha256, "fingerprint_sha256"),
        "not_before": not_before,
        "not_after": not_after,
        "pem": _text(record.pem, "pem"),
        "key_type": _text(record.key_type, "key_type"),
        "revoked_at": _optional(aware)(record.revoked_at, "revoked_at"),
        "revocation_reason": _optional(_text)(record.revocation_reason, "revocation_reason"),
        "created_at": _stamp(record.created_at, "created_at", now),
    }


def fingerprint(value: Any) -> str:
    return _fingerprint(value, "fingerprint")


def certificate_record(row: CertificateRow) -> CertificateRecord:
    return CertificateRecord(
        id=row.id,
        serial=row.serial,
        issuer_ca=row.issuer_ca,
        role=CertificateRole(row.role),
        subject_cn=row.subject_cn,
        subject_o=row.subject_o,
        station_identity=row.station_identity,
        fingerprint_sha256=row.fingerprint_sha256,
        not_before=row.not_before,
        not_after=row.not_after,
        pem=row.pem,
        key_type=row.key_type,
        revoked_at=row.revoked_at,
        revocation_reason=row.revocation_reason,
        created_at=row.created_at,
    )
