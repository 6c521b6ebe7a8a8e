"""The station-registration service against a real store (SQLite and PostgreSQL).

SEC-04/05, PWD-01/02: secrets validated per version, stored only as Argon2id hashes, returned
once when generated, never audited.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.basic_auth import parse_basic_authorization
from chargewarden.security.credentials import verify_secret
from chargewarden.security.verifier import CredentialMatch, CredentialVerifier
from chargewarden.stations import (
    NewStation,
    RegistrationError,
    register_station,
    validate_identity,
)
from chargewarden.store import StationExists, Store

V16, V201 = OcppVersion.V16, OcppVersion.V201
AL1000_KEY_HEX = "0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF"
AL1000_HEADER = "Basic QUwxMDAwOgABAgMEBQYH////////////////"
PASSWORD_201 = "q7Rk2mX9vLp4Tz8WnB3c"


def _new(
    identity: str = "CP1", version: OcppVersion = V16, profile: int = 1, **kw: Any
) -> NewStation:
    return NewStation(identity=identity, ocpp_version=version, security_profile=profile, **kw)


async def test_sec_04_al1000_example_registered_and_verified(store: Store) -> None:
    record, secret = await register_station(
        store, _new("AL1000", auth_key_hex=AL1000_KEY_HEX), actor="tester"
    )
    assert secret is None
    assert record.credential_hash is not None
    assert record.credential_hash.startswith("$argon2id$")
    stored = await store.stations.get("AL1000")
    assert stored is not None and stored.credential_hash == record.credential_hash
    creds = parse_basic_authorization(AL1000_HEADER)
    assert creds is not None
    verifier = CredentialVerifier()
    assert await verifier.verify(stored, creds.password) is CredentialMatch.CURRENT
    # Non-strict: the 40-hex text form works as well.
    assert await verifier.verify(stored, AL1000_KEY_HEX.encode()) is CredentialMatch.CURRENT


async def test_pwd_01_generated_1_6_key_returned_once_as_40_hex(store: Store) -> None:
    record, secret = await register_station(
        store, _new("CP16", profile=2, generate_secret=True, strict_password=True), actor="tester"
    )
    assert secret is not None and len(secret) == 40 and secret == secret.upper()
    key = bytes.fromhex(secret)
    assert record.strict_password
    assert record.credential_hash is not None and verify_secret(record.credential_hash, key)
    verifier = CredentialVerifier()
    assert await verifier.verify(record, key) is CredentialMatch.CURRENT
    assert await verifier.verify(record, secret.encode()) is CredentialMatch.NONE  # strict


async def test_pwd_02_generated_2_0_1_password_returned_once(store: Store) -> None:
    record, secret = await register_station(
        store, _new("CP201", V201, generate_secret=True), actor="tester"
    )
    assert secret is not None and len(secret) == 40 and secret.isalnum()
    assert record.ocpp_version is V201
    assert await CredentialVerifier().verify(record, secret.encode()) is CredentialMatch.CURRENT


async def test_sec_04_given_2_0_1_password(store: Store) -> None:
    record, secret = await register_station(
        store, _new("CP201b", V201, profile=2, password=PASSWORD_201), actor="tester"
    )
    assert secret is None
    assert (
        await CredentialVerifier().verify(record, PASSWORD_201.encode()) is CredentialMatch.CURRENT
    )


async def test_sec_05_audit_record_holds_no_secret(store: Store) -> None:
    _, secret = await register_station(
        store,
        _new("CPaudit", V201, generate_secret=True, serial_number=" SN-1 ", cpo_name="CPO"),
        actor="alice",
    )
    assert secret is not None
    entries = await store.audit.list(target="CPaudit")
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.actor, entry.action, entry.target) == ("alice", "station.add", "CPaudit")
    assert entry.details["secret"] == "generated"
    assert entry.details["serial_number"] == "SN-1"
    dumped = json.dumps(entry.details)
    assert secret not in dumped and "argon2" not in dumped


@pytest.mark.parametrize("profile", [0, 3])
async def test_sec_04_profiles_without_basic_auth_store_no_secret(
    store: Store, profile: int
) -> None:
    record, secret = await register_station(store, _new(f"CPp{profile}", V201, profile), actor="t")
    assert secret is None and record.credential_hash is None
    assert await CredentialVerifier().verify(record, PASSWORD_201.encode()) is CredentialMatch.NONE


async def test_duplicate_identity_raises_station_exists(store: Store) -> None:
    await register_station(store, _new("CPdup", generate_secret=True), actor="t")
    with pytest.raises(StationExists):
        await register_station(store, _new("CPdup", generate_secret=True), actor="t")
    assert len(await store.audit.list(target="CPdup")) == 1


@pytest.mark.parametrize(
    ("new", "fragment"),
    [
        (_new("", generate_secret=True), "empty"),
        (_new("x" * 49, generate_secret=True), "at most 48"),
        (_new("CP:1", generate_secret=True), "must not contain ':'"),
        (_new("CP\n1", generate_secret=True), "non-printable"),
        (_new(" CP1", generate_secret=True), "whitespace"),
        (_new(profile=4, generate_secret=True), "0, 1, 2 or 3"),
        (_new(profile=True, generate_secret=True), "0, 1, 2 or 3"),
        (_new(profile=1), "give an AuthorizationKey"),
        (_new(version=V201, profile=2), "give a BasicAuthPassword"),
        (_new(auth_key_hex=AL1000_KEY_HEX, generate_secret=True), "exactly one"),
        (_new(password=PASSWORD_201), "not a password"),
        (_new(version=V201, auth_key_hex=AL1000_KEY_HEX), "not an AuthorizationKey"),
        (_new(auth_key_hex="AA" * 20), "same value"),
        (_new(auth_key_hex="ABCD"), "too short"),
        (_new(version=V201, password="short-one"), "16 to 40"),
        (_new(profile=3, generate_secret=True), "client certificate"),
        (_new(profile=0, auth_key_hex=AL1000_KEY_HEX), "no authentication"),
        (
            _new(version=V201, generate_secret=True, strict_password=True),
            "only applies to OCPP 1.6",
        ),
        (_new(profile=3, strict_password=True), "needs a Basic-auth profile"),
        (_new(generate_secret=True, serial_number="S" * 65), "serial number"),
        (_new(generate_secret=True, cpo_name="C\x00PO"), "CPO name"),
    ],
)
async def test_registration_refused_with_clear_message(
    store: Store, new: NewStation, fragment: str
) -> None:
    with pytest.raises(RegistrationError, match=fragment) as info:
        await register_station(store, new, actor="t")
    for secret in (new.auth_key_hex, new.password):
        if secret:
            assert secret not in str(info.value)
    assert await store.stations.list() == []
    assert await store.audit.list() == []


async def test_version_given_as_text_is_accepted(store: Store) -> None:
    new = replace(_new("CPtext", generate_secret=True), ocpp_version="ocpp2.0.1")  # type: ignore[arg-type]
    record, _ = await register_station(store, new, actor="t")
    assert record.ocpp_version is V201


def test_sec_05_new_station_repr_hides_secrets() -> None:
    new = _new(auth_key_hex=AL1000_KEY_HEX, password=PASSWORD_201)
    assert AL1000_KEY_HEX not in repr(new) and PASSWORD_201 not in repr(new)


@pytest.mark.parametrize("identity", ["CP1", "RDAM 123", "Ladesäule-7", "x" * 48, "a/b"])
def test_rpc_02_valid_identities(identity: str) -> None:
    assert validate_identity(identity) == identity
