"""Station identity from the connection URL (RPC-02, OCPP-J 2.0.1 Part 4 §3.1.1)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from chargewarden.stations import RegistrationError, validate_identity


def identity_from_path(path: str) -> str | None:
    """The percent-decoded last path segment, or None if it is not a valid identity.

    Only the last segment names the station, so operators may put the endpoint under any
    prefix (/ocpp/, /steve/websocket/CentralSystemService/ ...). The path never selects the
    OCPP version: that is the subprotocol's job.
    """
    raw_path = urlsplit(path).path
    segment = raw_path.rstrip("/").rsplit("/", 1)[-1] if raw_path.strip("/") else ""
    if not segment:
        return None
    try:
        decoded = unquote(segment, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return None
    try:
        return validate_identity(decoded)
    except RegistrationError:
        return None
