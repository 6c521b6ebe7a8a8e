"""Station Basic-auth secrets: formats, strength rules, hashing (SEC-04, SEC-05, PWD-01/02).

Pure except for the deliberate cost of Argon2id. Two secret kinds exist:

* OCPP 1.6 AuthorizationKey: 16–20 bytes, written to the station as up to 40 hexadecimal digits
  (whitepaper ed.3 A00.FR.205/304 and §7.2: "Minimal 16-bytes long ... randomly generated binary
  ... 20 bytes maximum, represented as a string of up to 40 hexadecimal digits"). On the wire the
  password is the raw bytes (OCPP-J 1.6 §6.2.2, example AL1000).
* OCPP 2.0.1 SecurityCtrlr.BasicAuthPassword: 16–40 characters, alphanumerics plus the special
  characters of identifierString ``* - _ = : + | @ .`` (Part 6 TC_A_01_CS and TC_A_03_CSMS
  "Tool validations"; Part 2 Appendix 3.1.15 calls it passwordString), sent as UTF-8 text.

Error messages are written for an operator at a CLI and never contain the secret.
"""

from __future__ import annotations

import re
import secrets
import string

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from chargewarden.rpc.versions import OcppVersion

# ---- 1.6 AuthorizationKey ----------------------------------------------------------------
AUTH_KEY_MIN_BYTES = 16
AUTH_KEY_MAX_BYTES = 20
# Random 20-byte keys have ~19 distinct values; fewer than 8 means a pattern, not randomness.
AUTH_KEY_MIN_DISTINCT = 8

# ---- 2.0.1 BasicAuthPassword -------------------------------------------------------------
PASSWORD_MIN_CHARS = 16
PASSWORD_MAX_CHARS = 40
PASSWORD_SPECIALS = "*-_=:+|@."  # noqa: S105 - a character set, not a password
PASSWORD_ALPHABET = frozenset(string.ascii_letters + string.digits + PASSWORD_SPECIALS)
PASSWORD_MIN_DISTINCT = 8
# 24 characters of one class (e.g. digits: 24·log2(10) ≈ 80 bits) is still strong; shorter ones
# of a single class are what people type ("1234567890123456"), so they need mixing.
PASSWORD_SINGLE_CLASS_MIN_CHARS = 24
# Generated passwords use letters and digits only: some chargers' web UIs and config parsers
# mangle punctuation, and 40 chars of 62 symbols already give ~238 bits.
GENERATED_PASSWORD_ALPHABET = string.ascii_letters + string.digits
GENERATED_PASSWORD_CHARS = 40

# ---- Argon2id (OWASP Password Storage Cheat Sheet minimum: m=19 MiB, t=2, p=1) -------------
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_PARALLELISM = 1
ARGON2_HASH_LEN = 32
ARGON2_SALT_LEN = 16
# A stored hash is trusted input only up to a point: refuse to run one whose parameters would
# let a tampered row exhaust memory or CPU of the gateway.
_ARGON2_MAX_MEMORY_KIB = 256 * 1024
_ARGON2_MAX_TIME_COST = 10
_ARGON2_MAX_PARALLELISM = 8

_HASHER = argon2.PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_KIB,
    parallelism=ARGON2_PARALLELISM,
    hash_len=ARGON2_HASH_LEN,
    salt_len=ARGON2_SALT_LEN,
    type=argon2.Type.ID,
)

_HEX_PASSWORD = re.compile(rb"[0-9A-Fa-f]{32,40}")


class CredentialError(ValueError):
    """A secret was refused. The message explains why and never contains the secret."""


# ---- 1.6 ---------------------------------------------------------------------------------


def _check_auth_key(key: bytes) -> bytes:
    if len(key) < AUTH_KEY_MIN_BYTES:
        raise CredentialError(
            f"AuthorizationKey is too short: {len(key)} bytes, the minimum is "
            f"{AUTH_KEY_MIN_BYTES} bytes ({2 * AUTH_KEY_MIN_BYTES} hex digits) "
            "(Security Whitepaper A00.FR.205)"
        )
    if len(key) > AUTH_KEY_MAX_BYTES:
        raise CredentialError(
            f"AuthorizationKey is too long: {len(key)} bytes, the maximum is "
            f"{AUTH_KEY_MAX_BYTES} bytes ({2 * AUTH_KEY_MAX_BYTES} hex digits) "
            "(Security Whitepaper A00.FR.205)"
        )
    distinct = len(set(key))
    if distinct == 1:
        raise CredentialError(
            "AuthorizationKey is refused: all its bytes are the same value, so anyone can guess "
            "it; use a random key (omit the key to have one generated)"
        )
    if distinct < AUTH_KEY_MIN_DISTINCT:
        raise CredentialError(
            f"AuthorizationKey is refused: it uses only {distinct} different byte values "
            f"(at least {AUTH_KEY_MIN_DISTINCT} required); a random key has about 19, so this "
            "one follows a pattern that can be guessed. Use a random key (omit the key to "
            "have one generated)"
        )
    return key


def parse_auth_key_hex(text: str) -> bytes:
    """Operator-supplied 1.6 AuthorizationKey as hex → key bytes, or CredentialError."""
    # Whitespace anywhere is dropped so that keys pasted as "00 01 02 ..." or wrapped lines work.
    cleaned = "".join(text.split())
    if not cleaned:
        raise CredentialError("AuthorizationKey is empty; give 32 to 40 hexadecimal digits")
    if any(c not in string.hexdigits for c in cleaned):
        raise CredentialError(
            "AuthorizationKey must be hexadecimal (digits 0-9 and letters A-F only)"
        )
    if len(cleaned) % 2:
        raise CredentialError(
            f"AuthorizationKey has an odd number of hex digits ({len(cleaned)}); every byte is "
            "two digits"
        )
    return _check_auth_key(bytes.fromhex(cleaned))


def generate_auth_key() -> bytes:
    """A new 20-byte AuthorizationKey (PWD-01; whitepaper A01.FR.07: randomly generated)."""
    while True:
        key = secrets.token_bytes(AUTH_KEY_MAX_BYTES)
        # Every key we hand out must pass our own rule; 20 random bytes with fewer than 8
        # distinct values essentially never happen, so this loops once.
        try:
            return _check_auth_key(key)
        except CredentialError:  # pragma: no cover
            continue


def auth_key_to_hex(key: bytes) -> str:
    """The value ChangeConfiguration(AuthorizationKey) carries: upper-case hex, 40 digits."""
    return key.hex().upper()


# ---- 2.0.1 -------------------------------------------------------------------------------


def _char_classes(text: str) -> set[str]:
    classes = set()
    for c in text:
        if c in string.ascii_lowercase:
            classes.add("lower")
        elif c in string.ascii_uppercase:
            classes.add("upper")
        elif c in string.digits:
            classes.add("digit")
        else:
            classes.add("special")
    return classes


def _mostly_runs(text: str) -> bool:
    # Keyboard and counting runs ("abcdef", "123456", "aaaa") are the usual human shortcut.
    # Random text of this alphabet has neighbours within ±1 about 5% of the time; more than half
    # is never chance.
    close = sum(1 for a, b in zip(text, text[1:], strict=False) if abs(ord(a) - ord(b)) <= 1)
    return close * 2 > len(text) - 1


def validate_password_201(text: str) -> str:
    """Operator-supplied 2.0.1 BasicAuthPassword → the password to use, or CredentialError.

    Rules: 16–40 characters from a-z A-Z 0-9 and ``* - _ = : + | @ .`` (the spec's set; ':' is
    fine because Basic auth splits at the first colon and the identity has none); at least 8
    distinct characters; a password of a single character class must be ≥ 24 characters; not
    mostly runs or repeats. Surrounding whitespace (never part of the set) is dropped.
    """
    password = text.strip()
    if not password:
        raise CredentialError("BasicAuthPassword is empty; give 16 to 40 characters")
    if len(password) < PASSWORD_MIN_CHARS or len(password) > PASSWORD_MAX_CHARS:
        raise CredentialError(
            f"BasicAuthPassword must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters, "
            f"this one has {len(password)} (OCPP 2.0.1 SecurityCtrlr.BasicAuthPassword)"
        )
    if any(c not in PASSWORD_ALPHABET for c in password):
        raise CredentialError(
            "BasicAuthPassword may only contain letters a-z A-Z, digits 0-9 and the characters "
            f"{' '.join(PASSWORD_SPECIALS)} (OCPP 2.0.1 passwordString); spaces and other "
            "characters are not allowed"
        )
    distinct = len(set(password))
    if distinct < PASSWORD_MIN_DISTINCT:
        raise CredentialError(
            f"BasicAuthPassword is too easy to guess: only {distinct} different characters "
            f"(at least {PASSWORD_MIN_DISTINCT} required); use a random password (omit it to "
            "have one generated)"
        )
    if len(_char_classes(password)) == 1 and len(password) < PASSWORD_SINGLE_CLASS_MIN_CHARS:
        raise CredentialError(
            "BasicAuthPassword is too easy to guess: it uses only one kind of character (only "
            "digits, only lower-case, ...); mix letters and digits or make it at least "
            f"{PASSWORD_SINGLE_CLASS_MIN_CHARS} characters long"
        )
    if _mostly_runs(password):
        raise CredentialError(
            "BasicAuthPassword is too easy to guess: it is mostly sequences or repeats such as "
            "'abcd', '1234' or 'aaaa'; use a random password (omit it to have one generated)"
        )
    return password


def generate_password_201() -> str:
    """A new 40-character BasicAuthPassword of letters and digits (PWD-02)."""
    while True:
        candidate = "".join(
            secrets.choice(GENERATED_PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_CHARS)
        )
        # The rules never refuse 40 random alphanumerics in practice; checking keeps the
        # guarantee that every secret we hand out passes our own validation.
        try:
            return validate_password_201(candidate)
        except CredentialError:  # pragma: no cover - probability far below 2**-100
            continue


# ---- Storage and wire forms --------------------------------------------------------------


def secret_bytes_for_storage(version: OcppVersion, secret: bytes | str) -> bytes:
    """The exact bytes a station of this version sends as its password; these are hashed.

    1.6: the raw key (bytes as-is, or hex text parsed). 2.0.1: the password's UTF-8 bytes.
    Validates the secret the same way as operator input.
    """
    if version is OcppVersion.V16:
        if isinstance(secret, bytes):
            return _check_auth_key(secret)
        return parse_auth_key_hex(secret)
    if isinstance(secret, bytes):
        try:
            secret = secret.decode("utf-8")
        except UnicodeDecodeError:
            raise CredentialError("BasicAuthPassword must be UTF-8 text") from None
    return validate_password_201(secret).encode("utf-8")


def password_candidates(version: OcppVersion, password: bytes, *, strict: bool) -> list[bytes]:
    """The byte strings worth checking against a station's stored hash, best first.

    Only forms that a stored secret could have are returned, so junk costs no hashing.
    1.6: the raw bytes if 16–20 long; unless strict, also the decoded key when the station sent
    the 40-hex text of its key instead of the raw bytes (common in the field). The two forms
    never overlap (16–20 bytes vs 32–40 characters). 2.0.1: the password if it is UTF-8 text of
    16–40 characters.
    """
    if version is OcppVersion.V16:
        out: list[bytes] = []
        if AUTH_KEY_MIN_BYTES <= len(password) <= AUTH_KEY_MAX_BYTES:
            out.append(password)
        if not strict and len(password) % 2 == 0 and _HEX_PASSWORD.fullmatch(password):
            out.append(bytes.fromhex(password.decode("ascii")))
        return out
    try:
        text = password.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if PASSWORD_MIN_CHARS <= len(text) <= PASSWORD_MAX_CHARS:
        return [password]
    return []


# ---- Hashing -----------------------------------------------------------------------------


def hash_secret(secret: bytes) -> str:
    """Argon2id PHC string with a fresh random salt (SEC-05; whitepaper A01.FR.08)."""
    return _HASHER.hash(secret)


def _acceptable_parameters(phc: str) -> bool:
    try:
        params = argon2.extract_parameters(phc)
    except (InvalidHashError, ValueError, TypeError):
        return False
    return (
        params.type is argon2.Type.ID
        and params.memory_cost <= _ARGON2_MAX_MEMORY_KIB
        and params.time_cost <= _ARGON2_MAX_TIME_COST
        and params.parallelism <= _ARGON2_MAX_PARALLELISM
    )


def verify_secret(phc: str, candidate: bytes) -> bool:
    """True when candidate matches the stored hash. Never raises: anything odd is a mismatch.

    The comparison of hash outputs happens inside libargon2 (constant time).
    """
    if not isinstance(phc, str) or not phc.startswith("$argon2id$"):
        return False
    if not _acceptable_parameters(phc):
        return False
    try:
        return _HASHER.verify(phc, candidate)
    except (VerificationError, InvalidHashError, ValueError, TypeError):
        return False


def needs_rehash(phc: str) -> bool:
    """True when a stored hash uses other parameters than today's (rehash on next success)."""
    try:
        return _HASHER.check_needs_rehash(phc)
    except (InvalidHashError, ValueError):
        return True
