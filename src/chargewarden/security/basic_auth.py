"""HTTP Basic credentials as OCPP stations send them (SEC-03, SEC-04).

Pure. The header is handled as bytes from start to end: an OCPP 1.6 password is the raw
AuthorizationKey, which is binary (OCPP-J 1.6 §6.2.2: identity ``AL1000`` with key
``0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF`` gives ``Basic QUwxMDAwOgABAgMEBQYH////////////////``,
whose password bytes are not valid UTF-8). Decoding it as text would corrupt or reject it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import NamedTuple

# A legitimate header is small: username ≤ 48 characters (≤ 192 UTF-8 bytes), password
# ≤ 40 characters (2.0.1) or ≤ 40 hex digits (1.6), so base64 stays far below this. The cap
# keeps a hostile client from making us decode megabytes before we reject it.
MAX_HEADER_LENGTH = 1024

_SCHEME = b"basic"
_WHITESPACE = b" \t"


class BasicCredentials(NamedTuple):
    username: bytes
    password: bytes

    def __repr__(self) -> str:
        # Never show the password: credentials end up in tracebacks, debug logs and test output.
        return f"BasicCredentials(username={self.username!r}, password=<redacted>)"

    __str__ = __repr__


def _as_bytes(value: str | bytes) -> bytes | None:
    if isinstance(value, bytes):
        return value
    try:
        # A Basic header is ASCII by construction (scheme + base64); anything else is malformed.
        return value.encode("ascii")
    except UnicodeEncodeError:
        return None


def parse_basic_authorization(value: str | bytes | None) -> BasicCredentials | None:
    """Parse an Authorization header value; None when missing or not valid Basic credentials.

    The scheme is case-insensitive (RFC 7617 §2), the base64 is decoded strictly (alphabet and
    padding checked), and the decoded bytes are split at the FIRST colon: the username (the
    station identity) cannot contain one, the password may, and may hold any byte.
    """
    if value is None or len(value) > MAX_HEADER_LENGTH:
        return None
    raw = _as_bytes(value)
    if raw is None:
        return None
    raw = raw.strip(_WHITESPACE)
    scheme, sep, rest = raw.partition(b" ")
    if not sep:
        scheme, sep, rest = raw.partition(b"\t")
    if not sep or scheme.lower() != _SCHEME:
        return None
    token = rest.strip(_WHITESPACE)
    if not token or any(c in token for c in _WHITESPACE):
        # token68 is a single token; extra parameters mean this is not a Basic header we know.
        return None
    try:
        decoded = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    username, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return BasicCredentials(username, password)


def basic_authorization_header(username: str, password: bytes) -> str:
    """The Authorization header value a station sends (simulator and tests)."""
    if ":" in username:
        # RFC 7617 §2: a user-id containing a colon cannot be split back out.
        raise ValueError("a Basic auth username must not contain ':'")
    token = base64.b64encode(username.encode("utf-8") + b":" + password).decode("ascii")
    return "Basic " + token


def username_matches(credentials: BasicCredentials, identity: str) -> bool:
    """Constant-time check that the Basic username is the station identity (A00.FR.204)."""
    return hmac.compare_digest(credentials.username, identity.encode("utf-8"))
