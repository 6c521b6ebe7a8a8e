"""Basic-auth parsing, secret rules, hashing, verification cache (SEC-03/04/05, PWD-01/02)."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest

from chargewarden.rpc.versions import OcppVersion
from chargewarden.security import verifier as verifier_module
from chargewarden.security.basic_auth import (
    MAX_HEADER_LENGTH,
    BasicCredentials,
    basic_authorization_header,
    parse_basic_authorization,
    username_matches,
)
from chargewarden.security.credentials import (
    ARGON2_MEMORY_KIB,
    ARGON2_PARALLELISM,
    ARGON2_TIME_COST,
    CredentialError,
    auth_key_to_hex,
    generate_auth_key,
    generate_password_201,
    hash_secret,
    needs_rehash,
    parse_auth_key_hex,
    password_candidates,
    secret_bytes_for_storage,
    validate_password_201,
    verify_secret,
)
from chargewarden.security.verifier import CredentialMatch, CredentialVerifier, VerificationCache
from chargewarden.store.records import StationRecord

V16, V201 = OcppVersion.V16, OcppVersion.V201

# OCPP-J 1.6 §6.2.2 example.
AL1000_KEY_HEX = "0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF"
AL1000_HEADER = "Basic QUwxMDAwOgABAgMEBQYH////////////////"

KEY_HEX = "9F3C51A0D27E84B6C1E0573A9D4B2F6811C7E3A5"
KEY = bytes.fromhex(KEY_HEX)
PASSWORD_201 = "q7Rk2mX9vLp4Tz8WnB3c"


# ---------------------------------------------------------------- Basic auth header (SEC-03/04)


@pytest.mark.parametrize("header", [AL1000_HEADER, AL1000_HEADER.encode("ascii")])
def test_sec_04_al1000_example_header_round_trip(header: str | bytes) -> None:
    assert basic_authorization_header("AL1000", bytes.fromhex(AL1000_KEY_HEX)) == AL1000_HEADER
    creds = parse_basic_authorization(header)
    assert creds == BasicCredentials(b"AL1000", bytes.fromhex(AL1000_KEY_HEX))
    # The password is binary and not UTF-8: proof that the header is handled as bytes.
    with pytest.raises(UnicodeDecodeError):
        creds.password.decode("utf-8")


@pytest.mark.parametrize("template", ["Basic {}", "basic {}", "BASIC {}", "  bAsIc\t{}  "])
def test_sec_03_scheme_case_insensitive_whitespace_tolerated(template: str) -> None:
    token = base64.b64encode(b"CP1:secret-secret-1").decode()
    creds = parse_basic_authorization(template.format(token))
    assert creds == BasicCredentials(b"CP1", b"secret-secret-1")


def test_sec_04_password_split_at_first_colon_keeps_colons_and_ff() -> None:
    raw = b"CP1:" + b"a:b:\xff\x00:"
    creds = parse_basic_authorization("Basic " + base64.b64encode(raw).decode())
    assert creds is not None
    assert creds.username == b"CP1"
    assert creds.password == b"a:b:\xff\x00:"


@pytest.mark.parametrize(
    "value",
    [
        *(None, "", "Basic", "Basic ", "Bearer QUwxMDAwOnB3", "BasicQUwxMDAwOnB3"),
        "Basic QUwxMDAwOnB3 extra",
        "Basic QUwxMDAwOnB3!",  # not base64 alphabet
        "Basic QUwxMDAwOnB",  # bad padding
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic QUwx\u00e9MDAwOnB3",  # non-ASCII text
        "Basic " + "A" * MAX_HEADER_LENGTH,  # oversized
        b"Basic \xff\xfe",
    ],
)
def test_sec_03_malformed_authorization_is_none(value: str | bytes | None) -> None:
    assert parse_basic_authorization(value) is None


def test_sec_05_credentials_repr_never_shows_password() -> None:
    creds = BasicCredentials(b"CP1", b"hunter2-hunter2-hunter2")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "hunter2" not in text
        assert "CP1" in text


def test_sec_03_username_is_the_utf8_identity_and_has_no_colon() -> None:
    with pytest.raises(ValueError, match="must not contain"):
        basic_authorization_header("CP:1", b"x")
    creds = BasicCredentials("Ladesäule 1".encode(), b"pw")
    assert username_matches(creds, "Ladesäule 1")
    assert not username_matches(creds, "Ladesäule 2")


# ---------------------------------------------------------------- 1.6 AuthorizationKey (SEC-04)


@pytest.mark.parametrize(
    "text",
    [
        *(KEY_HEX, KEY_HEX.lower(), " 9F3C 51A0\tD27E84B6C1E0573A9D4B2F6811C7E3A5\n", KEY_HEX[:32]),
        AL1000_KEY_HEX,  # nine distinct byte values: the spec's example stays usable
    ],
)
def test_sec_04_auth_key_hex_accepted(text: str) -> None:
    assert parse_auth_key_hex(text) == bytes.fromhex("".join(text.split()))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("9F3C51A0D27E84B6C1E0573A9D4B2F6811C7E3AZ", "hexadecimal"),
        ("0x9F3C51A0D27E84B6C1E0573A9D4B2F6811C7E3A5", "hexadecimal"),
        (KEY_HEX[:-1], "odd number"),
        (KEY_HEX[:30], "too short"),
        (KEY_HEX + "AB", "too long"),
        ("AA" * 20, "all its bytes are the same"),
        ("00010203040506000102030405060001", "only 7 different byte values"),
    ],
)
def test_sec_04_auth_key_hex_refused_with_clear_reason(text: str, fragment: str) -> None:
    with pytest.raises(CredentialError, match=fragment) as info:
        parse_auth_key_hex(text)
    if text:
        assert text not in str(info.value)


def test_pwd_01_generated_auth_key_is_20_random_bytes_sent_as_40_upper_hex() -> None:
    keys = {generate_auth_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        text = auth_key_to_hex(key)
        assert len(key) == 20 and len(text) == 40 and text == text.upper()
        assert parse_auth_key_hex(text) == key
    assert auth_key_to_hex(bytes.fromhex(AL1000_KEY_HEX)) == AL1000_KEY_HEX


# ---------------------------------------------------------------- 2.0.1 BasicAuthPassword


@pytest.mark.parametrize(
    "text",
    [
        PASSWORD_201,
        "Ab3*-_=:+|@.Zy9x",  # every special character of passwordString, ':' included
        "830274619528374610293847",  # one class but 24 characters
        "K2p9Zt4QwL7mN1vB8cR5sD3fG6hJ0kYe2uIo9aTz",  # 40 characters
        f"  {PASSWORD_201}\n",  # surrounding whitespace (never part of the set) is dropped
    ],
)
def test_sec_04_password_201_accepted(text: str) -> None:
    assert validate_password_201(text) == text.strip()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("q7Rk2mX9vLp4Tz8", "16 to 40 characters"),  # 15
        ("q7Rk2mX9vLp4Tz8WnB3c" * 2 + "A", "16 to 40 characters"),  # 41
        ("q7Rk2mX9 vLp4Tz8WnB3c", "may only contain"),
        ("q7Rk2mX9vLp4Tz8WnB3ä", "may only contain"),
        ("q7Rk2mX9/vLp4Tz8WnB3c", "may only contain"),
        ("abcabcabcabcABCABC11", "different characters"),
        ("5820193746573829", "one kind of character"),
        ("qwkdmfjtnrvbzpxl", "one kind of character"),
        ("Abcdefghijklmnop", "sequences or repeats"),
        ("1234567890abcdefgh", "sequences or repeats"),
    ],
)
def test_sec_04_password_201_refused_with_clear_reason(text: str, fragment: str) -> None:
    with pytest.raises(CredentialError, match=fragment) as info:
        validate_password_201(text)
    if text.strip():
        assert text.strip() not in str(info.value)


def test_pwd_02_generated_password_is_40_alphanumerics() -> None:
    passwords = {generate_password_201() for _ in range(20)}
    assert len(passwords) == 20
    for password in passwords:
        assert len(password) == 40
        assert password.isascii() and password.isalnum()
        assert validate_password_201(password) == password


# ---------------------------------------------------------------- storage and wire forms


def test_sec_04_storage_bytes_per_version() -> None:
    assert secret_bytes_for_storage(V16, KEY_HEX) == secret_bytes_for_storage(V16, KEY) == KEY
    for secret in (PASSWORD_201, PASSWORD_201.encode()):
        assert secret_bytes_for_storage(V201, secret) == PASSWORD_201.encode()
    for version, bad in ((V16, b"short"), (V16, b"\x01" * 20), (V201, b"\xff" * 20), (V201, "x")):
        with pytest.raises(CredentialError):
            secret_bytes_for_storage(version, bad)


def test_sec_04_candidates_1_6_raw_and_hex_text_unless_strict() -> None:
    assert password_candidates(V16, KEY, strict=False) == [KEY]
    assert password_candidates(V16, KEY_HEX.encode(), strict=False) == [KEY]
    assert password_candidates(V16, KEY_HEX.lower().encode(), strict=False) == [KEY]
    assert password_candidates(V16, KEY_HEX[:32].encode(), strict=False) == [KEY[:16]]
    assert password_candidates(V16, KEY, strict=True) == [KEY]
    assert password_candidates(V16, KEY_HEX.encode(), strict=True) == []


@pytest.mark.parametrize(
    "password",
    [b"", b"short", b"x" * 21, KEY_HEX[:-1].encode(), b" " + KEY_HEX[:-2].encode() + b" "],
)
def test_sec_04_candidates_1_6_impossible_forms_cost_nothing(password: bytes) -> None:
    assert password_candidates(V16, password, strict=False) == []


def test_sec_04_candidates_2_0_1_utf8_text_only() -> None:
    umlauts = ("ä" * 16).encode()  # 16 characters, 32 bytes: length counts characters
    for good in (PASSWORD_201.encode(), umlauts):
        assert password_candidates(V201, good, strict=False) == [good]
    for bad in (b"\xff" * 20, b"x" * 15, b"x" * 41):
        assert password_candidates(V201, bad, strict=False) == []


# ---------------------------------------------------------------- hashing (SEC-05)


def test_sec_05_hash_is_salted_argon2id_with_owasp_parameters() -> None:
    first, second = hash_secret(KEY), hash_secret(KEY)
    assert first != second  # salted
    assert first.startswith(
        f"$argon2id$v=19$m={ARGON2_MEMORY_KIB},t={ARGON2_TIME_COST},p={ARGON2_PARALLELISM}$"
    )
    assert (ARGON2_MEMORY_KIB, ARGON2_TIME_COST, ARGON2_PARALLELISM) == (19 * 1024, 2, 1)
    assert KEY_HEX not in first and KEY_HEX.lower() not in first
    assert verify_secret(first, KEY) and verify_secret(second, KEY)
    assert not needs_rehash(first)
    # Mismatches and garbage are False, never an exception.
    phc = first
    assert not verify_secret(phc, KEY[:-1] + b"\x00")
    assert not verify_secret(phc, b"")
    for bad in ("", "plain", "$argon2id$garbage", phc[:-5], phc.replace("argon2id", "argon2i")):
        assert not verify_secret(bad, KEY)
    assert not verify_secret(None, KEY)  # type: ignore[arg-type]
    assert needs_rehash("garbage")
    # A tampered row must not make the gateway run a 4 GiB hash.
    assert not verify_secret(phc.replace(f"m={ARGON2_MEMORY_KIB}", "m=4194304"), KEY)


# ---------------------------------------------------------------- verifier and cache


def _station(version: OcppVersion = V16, identity: str = "CP1", **kw: Any) -> StationRecord:
    return StationRecord(identity, version, security_profile=1, **kw)


@pytest.fixture(scope="module")
def key_hash() -> str:
    return hash_secret(KEY)


@pytest.fixture
def slow_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts Argon2 verifications and records the thread they ran on."""
    calls: list[str] = []
    real = verifier_module.verify_secret

    def counting(phc: str, candidate: bytes) -> bool:
        calls.append(threading.current_thread().name)
        return real(phc, candidate)

    monkeypatch.setattr(verifier_module, "verify_secret", counting)
    return calls


async def test_sec_04_verifier_1_6_raw_and_hex_forms(key_hash: str, slow_calls: list[str]) -> None:
    verifier = CredentialVerifier()
    station = _station(credential_hash=key_hash)
    assert await verifier.verify(station, KEY) is CredentialMatch.CURRENT
    assert await verifier.verify(station, KEY_HEX.encode()) is CredentialMatch.CURRENT
    assert await verifier.verify(station, KEY_HEX.lower().encode()) is CredentialMatch.CURRENT
    assert await verifier.verify(station, bytes(20)) is CredentialMatch.NONE
    strict = _station(credential_hash=key_hash, strict_password=True, identity="CP2")
    assert await verifier.verify(strict, KEY) is CredentialMatch.CURRENT
    assert await verifier.verify(strict, KEY_HEX.encode()) is CredentialMatch.NONE


async def test_sec_04_verifier_al1000_example_and_2_0_1_password() -> None:
    verifier = CredentialVerifier()
    al1000 = _station(identity="AL1000", credential_hash=hash_secret(bytes.fromhex(AL1000_KEY_HEX)))
    creds = parse_basic_authorization(AL1000_HEADER)
    assert creds is not None and username_matches(creds, "AL1000")
    assert await verifier.verify(al1000, creds.password) is CredentialMatch.CURRENT
    station = _station(V201, credential_hash=hash_secret(PASSWORD_201.encode()))
    assert await verifier.verify(station, PASSWORD_201.encode()) is CredentialMatch.CURRENT
    assert await verifier.verify(station, PASSWORD_201.upper().encode()) is CredentialMatch.NONE
    assert await verifier.verify(station, b"\xff" * 20) is CredentialMatch.NONE


async def test_pwd_01_verifier_current_and_pending(key_hash: str) -> None:
    new_key = generate_auth_key()
    station = _station(credential_hash=key_hash, pending_credential_hash=hash_secret(new_key))
    verifier = CredentialVerifier()
    assert await verifier.verify(station, KEY) is CredentialMatch.CURRENT
    assert await verifier.verify(station, new_key) is CredentialMatch.PENDING
    assert await verifier.verify(station, generate_auth_key()) is CredentialMatch.NONE


async def test_sec_05_no_hash_or_junk_password_is_none_without_hashing(
    key_hash: str, slow_calls: list[str]
) -> None:
    verifier = CredentialVerifier()
    assert await verifier.verify(_station(), KEY) is CredentialMatch.NONE
    assert (
        await verifier.verify(_station(credential_hash=key_hash), b"x" * 300)
        is CredentialMatch.NONE
    )
    assert slow_calls == []


async def test_sec_05_cache_hit_skips_argon2_and_hashing_runs_off_loop(
    key_hash: str, slow_calls: list[str]
) -> None:
    verifier = CredentialVerifier()
    station = _station(credential_hash=key_hash)
    assert await verifier.verify(station, KEY) is CredentialMatch.CURRENT
    assert len(slow_calls) == 1
    assert slow_calls[0] != threading.main_thread().name  # worker thread, loop stays free
    for _ in range(5):
        assert await verifier.verify(station, KEY) is CredentialMatch.CURRENT
    assert len(slow_calls) == 1
    # A wrong password is never answered from the cache.
    assert await verifier.verify(station, bytes(20)) is CredentialMatch.NONE
    assert len(slow_calls) == 2


async def test_sec_05_rotation_never_matches_old_cache_entries_and_forget_drops_them(
    key_hash: str, slow_calls: list[str]
) -> None:
    verifier = CredentialVerifier()
    station = _station(credential_hash=key_hash)
    assert await verifier.verify(station, KEY) is CredentialMatch.CURRENT
    verifier.forget("CP1")
    assert len(verifier.cache) == 0
    assert await verifier.verify(station, KEY) is CredentialMatch.CURRENT
    assert len(slow_calls) == 2
    # Even without forget(): the stored hash is inside the MAC, so the old entry cannot match.
    new_key = generate_auth_key()
    rotated = _station(credential_hash=hash_secret(new_key))
    assert await verifier.verify(rotated, KEY) is CredentialMatch.NONE
    assert await verifier.verify(rotated, new_key) is CredentialMatch.CURRENT


def test_sec_05_cache_is_bounded_lru_and_keyed() -> None:
    cache = VerificationCache(max_identities=2)
    cache.add("A", "$h", b"pw")
    cache.add("B", "$h", b"pw")
    assert cache.hit("A", "$h", b"pw")  # A is now most recent
    cache.add("C", "$h", b"pw")
    assert len(cache) == 2
    assert not cache.hit("B", "$h", b"pw")
    assert cache.hit("A", "$h", b"pw") and cache.hit("C", "$h", b"pw")
    assert not cache.hit("A", "$other-hash", b"pw")
    assert not cache.hit("C", "$h", b"pw2")
    # Two caches (two processes) never share entries: the MAC key is per instance.
    other = VerificationCache()
    assert not other.hit("A", "$h", b"pw")
    assert "pw" not in repr(cache)


def test_sec_05_cache_entries_per_identity_bounded_and_ambiguous_identity_refused() -> None:
    cache = VerificationCache(entries_per_identity=2)
    for i in range(5):
        cache.add("A", f"$h{i}", b"pw")
    assert not cache.hit("A", "$h0", b"pw")
    assert cache.hit("A", "$h3", b"pw") and cache.hit("A", "$h4", b"pw")
    cache.add("A\x00B", "$h", b"pw")  # NUL would make the MAC input ambiguous
    assert not cache.hit("A\x00B", "$h", b"pw")
