"""Station registration: the one service behind `chargewarden station add` and the REST API.

Every rule about what a station record may look like lives here, so the CLI and the API cannot
drift apart. Secrets are validated, hashed (Argon2id) and forgotten; a generated secret is
returned to the caller exactly once and never logged, audited or stored in clear.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.credentials import (
    CredentialError,
    auth_key_to_hex,
    generate_auth_key,
    generate_password_201,
    hash_secret,
    parse_auth_key_hex,
    secret_bytes_for_storage,
    validate_password_201,
)
from chargewarden.store.records import AuditRecord, StationRecord

if TYPE_CHECKING:
    from chargewarden.store import Store

MAX_IDENTITY_CHARS = 48  # OCPP-J 2.0.1 Part 4 §3.1.1
# X.509 upper bounds for commonName and organizationName (RFC 5280 ub-common-name etc.): a
# profile-3 certificate must be able to carry them.
MAX_SERIAL_CHARS = 64
MAX_CPO_NAME_CHARS = 64
PROFILES = (0, 1, 2, 3)
_BASIC_AUTH_PROFILES = (1, 2)


class RegistrationError(ValueError):
    """The station cannot be registered as requested; the message says why (never a secret)."""


@dataclass(frozen=True)
class NewStation:
    identity: str
    ocpp_version: OcppVersion
    security_profile: int
    # Secrets are excluded from repr: a NewStation may end up in a log line or a traceback.
    auth_key_hex: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    generate_secret: bool = False
    serial_number: str | None = None
    cpo_name: str | None = None
    strict_password: bool = False


def validate_identity(identity: str) -> str:
    """The station identity rule, shared with the gateway (RPC-02).

    Not empty, at most 48 characters, no ':' (it would end the Basic-auth username, A00.FR.204),
    printable, and no leading or trailing whitespace (invisible in a CLI or a log, so two
    stations could look identical). Spaces inside are allowed: OCPP-J 1.6 §3.1.1 uses
    "RDAM 123" as an example.
    """
    if not isinstance(identity, str) or not identity:
        raise RegistrationError("station identity is empty")
    if len(identity) > MAX_IDENTITY_CHARS:
        raise RegistrationError(
            f"station identity is {len(identity)} characters long; at most "
            f"{MAX_IDENTITY_CHARS} are allowed"
        )
    if ":" in identity:
        raise RegistrationError(
            "station identity must not contain ':' (it separates user name and password in "
            "HTTP Basic authentication)"
        )
    if not identity.isprintable():
        raise RegistrationError("station identity contains control or non-printable characters")
    if identity != identity.strip():
        raise RegistrationError("station identity must not start or end with whitespace")
    return identity


def _optional_text(value: str | None, what: str, limit: int) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if len(text) > limit:
        raise RegistrationError(f"{what} is {len(text)} characters long; at most {limit} allowed")
    if not text.isprintable():
        raise RegistrationError(f"{what} contains control or non-printable characters")
    return text


def _version(value: OcppVersion | str) -> OcppVersion:
    if isinstance(value, OcppVersion):
        return value
    try:
        return OcppVersion.parse(str(value))
    except ValueError as exc:
        raise RegistrationError(str(exc)) from None


def _profile(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in PROFILES:
        raise RegistrationError(f"security profile must be 0, 1, 2 or 3, not {value!r}")
    return value


def _secret_bytes(new: NewStation, version: OcppVersion, profile: int) -> tuple[bytes, str | None]:
    """(bytes to hash, generated secret text or None) for a profile-1/2 station."""
    given = [
        name
        for name, present in (
            ("auth_key_hex", new.auth_key_hex is not None),
            ("password", new.password is not None),
            ("generate_secret", new.generate_secret),
        )
        if present
    ]
    if not given:
        what = "an AuthorizationKey (hex)" if version is OcppVersion.V16 else "a BasicAuthPassword"
        raise RegistrationError(
            f"security profile {profile} uses HTTP Basic authentication: give {what} or ask "
            "for one to be generated"
        )
    if len(given) > 1:
        raise RegistrationError(
            "give exactly one of: an AuthorizationKey, a password, or generate a secret "
            f"(got {', '.join(given)})"
        )
    try:
        if version is OcppVersion.V16:
            if new.password is not None:
                raise RegistrationError(
                    "OCPP 1.6 stations authenticate with an AuthorizationKey given as 32-40 hex "
                    "digits, not a password (to use a text password, give its hex encoding)"
                )
            if new.generate_secret:
                key = generate_auth_key()
                return key, auth_key_to_hex(key)
            assert new.auth_key_hex is not None
            return parse_auth_key_hex(new.auth_key_hex), None
        if new.auth_key_hex is not None:
            raise RegistrationError(
                "OCPP 2.0.1 stations authenticate with a BasicAuthPassword (16-40 characters), "
                "not an AuthorizationKey"
            )
        if new.generate_secret:
            password = generate_password_201()
            return secret_bytes_for_storage(version, password), password
        assert new.password is not None
        return validate_password_201(new.password).encode("utf-8"), None
    except CredentialError as exc:
        # CredentialError messages are written for operators and never contain the secret.
        raise RegistrationError(str(exc)) from None


def _check_no_secret(new: NewStation, profile: int) -> None:
    if new.auth_key_hex is None and new.password is None and not new.generate_secret:
        return
    if profile == 3:
        raise RegistrationError(
            "security profile 3 stations authenticate with a client certificate, not a "
            "password or key; register the station without a secret"
        )
    raise RegistrationError(
        "security profile 0 has no authentication at all, so a secret would never be checked; "
        "register the station without one (or use profile 1 or 2)"
    )


async def register_station(
    store: Store, new: NewStation, *, actor: str
) -> tuple[StationRecord, str | None]:
    """Validate, hash and store a new station; audit it. Returns (record, generated secret).

    The generated secret (40 hex digits for 1.6, the password for 2.0.1) is returned this once
    and exists nowhere else. Raises RegistrationError for invalid input and lets the store's
    StationExists through for a duplicate identity.
    """
    identity = validate_identity(new.identity)
    version = _version(new.ocpp_version)
    profile = _profile(new.security_profile)
    serial = _optional_text(new.serial_number, "serial number", MAX_SERIAL_CHARS)
    cpo_name = _optional_text(new.cpo_name, "CPO name", MAX_CPO_NAME_CHARS)
    if new.strict_password and version is not OcppVersion.V16:
        raise RegistrationError(
            "strict password checking only applies to OCPP 1.6 (the raw AuthorizationKey "
            "versus its hex text); OCPP 2.0.1 passwords are always text"
        )
    if new.strict_password and profile not in _BASIC_AUTH_PROFILES:
        raise RegistrationError(
            f"strict password checking needs a Basic-auth profile (1 or 2), not {profile}"
        )

    credential_hash: str | None = None
    generated: str | None = None
    credential_source = "none"
    if profile in _BASIC_AUTH_PROFILES:
        secret, generated = _secret_bytes(new, version, profile)
        credential_source = "generated" if generated is not None else "provided"
        # Argon2id takes tens of milliseconds; keep the event loop (API, gateway) responsive.
        credential_hash = await asyncio.to_thread(hash_secret, secret)
    else:
        _check_no_secret(new, profile)

    record = StationRecord(
        identity=identity,
        ocpp_version=version,
        security_profile=profile,
        credential_hash=credential_hash,
        strict_password=new.strict_password,
        serial_number=serial,
        cpo_name=cpo_name,
    )
    record = await store.stations.add(record)  # StationExists propagates to the caller
    details: dict[str, Any] = {
        "ocpp_version": str(version),
        "security_profile": profile,
        "secret": credential_source,  # how the secret came to be, never the secret
        "strict_password": new.strict_password,
    }
    if serial is not None:
        details["serial_number"] = serial
    if cpo_name is not None:
        details["cpo_name"] = cpo_name
    await store.audit.add(
        AuditRecord(actor=actor, action="station.add", target=identity, details=details)
    )
    return record, generated
