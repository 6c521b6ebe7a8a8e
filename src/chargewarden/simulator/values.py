"""Parsing and formatting of the values a station exchanges (pure helpers, no state)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from chargewarden.security.credentials import (
    AUTH_KEY_MAX_BYTES,
    AUTH_KEY_MIN_BYTES,
    PASSWORD_ALPHABET,
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
)

# A station applies the specification's rules only; the CSMS's stricter strength policy
# (security.credentials.validate_password_201) is the operator's business, not the station's.
_HEX_KEY = re.compile(f"[0-9A-Fa-f]{{{2 * AUTH_KEY_MIN_BYTES},{2 * AUTH_KEY_MAX_BYTES}}}")


def utc_now() -> datetime:
    return datetime.now(UTC)


def ocpp_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and 'Z', the form both OCPP versions recommend."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_non_negative_int(text: str) -> int | None:
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit():
        return None
    return int(stripped)


def parse_key_hex(text: str) -> bytes | None:
    """A valid 1.6 AuthorizationKey: hex text of 16–20 bytes (whitepaper §7.2)."""
    # fullmatch + even length: bytes.fromhex alone would also take spaces and odd lengths.
    if _HEX_KEY.fullmatch(text) is None or len(text) % 2:
        return None
    return bytes.fromhex(text)


def is_valid_password(password: str) -> bool:
    """2.0.1 BasicAuthPassword: 16–40 characters, alphanumerics plus identifierString's
    specials (TC_A_01_CS)."""
    return PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS and all(
        c in PASSWORD_ALPHABET for c in password
    )


def is_valid_cpo_name(text: str) -> bool:
    """CpoName / OrganizationName goes into the O of the station's CSRs: at most 64 printable
    characters (X.509 ub-organization-name); empty leaves O out."""
    return len(text) <= 64 and text.isprintable()
