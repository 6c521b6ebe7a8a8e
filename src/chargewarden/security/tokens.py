"""Operator API tokens: ``cw_<lookup>_<secret>``.

The lookup (12 URL-safe characters, public) finds the operator row through an index without
comparing secrets in SQL; the whole token is then checked against the stored hash with
`hmac.compare_digest`.

The hash is a plain SHA-256, not a slow password hash: the secret part is 32 random bytes
(256 bits), so neither guessing nor inverting the hash is feasible however fast it is, and a
fast hash keeps every API request cheap. Slow hashing only helps for low-entropy secrets that
people choose; nobody chooses these.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "cw_"
LOOKUP_CHARS = 12
SECRET_BYTES = 32
_LOOKUP_BYTES = LOOKUP_CHARS * 3 // 4  # base64: 9 bytes → 12 characters, no padding
_SECRET_CHARS = 43  # base64url of 32 bytes without padding
_TOKEN = re.compile(
    rf"{PREFIX}(?P<lookup>[A-Za-z0-9_-]{{{LOOKUP_CHARS}}})_[A-Za-z0-9_-]{{{_SECRET_CHARS}}}"
)
# A token is 59 characters; refuse to hash anything much longer a client throws at us.
_MAX_TOKEN_CHARS = 128


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str, str]:
    """(token, lookup, token_hash). Show the token once; store only lookup and hash."""
    lookup = secrets.token_urlsafe(_LOOKUP_BYTES)
    token = f"{PREFIX}{lookup}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return token, lookup, _digest(token)


def split_lookup(token: str) -> str | None:
    """The lookup part of a well-formed token, None for anything else."""
    if len(token) > _MAX_TOKEN_CHARS:
        return None
    # Fixed positions, not split("_"): the lookup and the secret may themselves contain '_'.
    match = _TOKEN.fullmatch(token)
    return match.group("lookup") if match else None


def token_matches(token: str, token_hash: str) -> bool:
    """Constant-time check of a presented token against the stored hash."""
    if len(token) > _MAX_TOKEN_CHARS:
        return False
    try:
        expected = token_hash.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(_digest(token).encode("ascii"), expected)
