"""Repositories of the store, each test on SQLite and on PostgreSQL (see tests/conftest.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from chargewarden.rpc.versions import OcppVersion
from chargewarden.store import OperatorExists, StationExists, StationNotFound, Store
from chargewarden.store.records import (
    AuditRecord,
    ConnectorStatusRecord,
    EventSource,
    OperatorRecord,
    OperatorRole,
    RegistrationStatus,
    SecurityEventRecord,
    StationRecord,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))


def station(identity: str = "CP1", **fields: Any) -> StationRecord:
    return replace(StationRecord(identity, OcppVersion.V16, security_profile=1), **fields)


def operator(name: str, role: OperatorRole, lookup: str, token_hash: str = "h") -> OperatorRecord:
    return OperatorRecord(name=name, role=role, token_lookup=lookup, token_hash=token_hash)


def event(type_: str = "FirmwareUpdated", **fields: Any) -> SecurityEventRecord:
    values: dict[str, Any] = {"source": EventSource.STATION, "critical": False}
    values.update(fields)
    return SecurityEventRecord(type=type_, **values)


# --- stations ------------------------------------------------------------------------------


async def test_add_get_and_list_stations(store: Store) -> None:
    full = station(
        "CP-B",
        pending_profile=2,
        credential_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        strict_password=True,
        serial_number="SN-1",
        cpo_name="CPO",
        registration_status=RegistrationStatus.PENDING,
        needs_credential_update=True,
        last_boot_status=RegistrationStatus.REJECTED,
        vendor="V",
        model="M",
        firmware_version="1.0",
    )
    added = await store.stations.add(full)
    await store.stations.add(station("CP-A"))

    assert added.created_at is not None and added.created_at.tzinfo == UTC
    assert added == replace(full, created_at=added.created_at)
    assert await store.stations.get("CP-B") == added
    assert await store.stations.get("nope") is None
    assert [s.identity for s in await store.stations.list()] == ["CP-A", "CP-B"]


async def test_duplicate_station_raises_and_keeps_the_first(store: Store) -> None:
    await store.stations.add(station("CP1", vendor="first"))
    with pytest.raises(StationExists):
        await store.stations.add(station("CP1", vendor="second"))
    stored = await store.stations.get("CP1")
    assert stored is not None and stored.vendor == "first"


async def test_update_changes_only_the_given_fields(store: Store) -> None:
    added = await store.stations.add(station("CP1", vendor="V"))
    updated = await store.stations.update(
        "CP1",
        security_profile=2,
        pending_profile=None,
        ocpp_version=OcppVersion.V201,
        registration_status=RegistrationStatus.REJECTED,
        last_boot_status=RegistrationStatus.ACCEPTED,
        needs_credential_update=True,
        credential_hash="h2",
    )
    assert updated == await store.stations.get("CP1")
    assert (updated.security_profile, updated.ocpp_version) == (2, OcppVersion.V201)
    assert updated.registration_status is RegistrationStatus.REJECTED
    assert updated.last_boot_status is RegistrationStatus.ACCEPTED
    assert updated.needs_credential_update and updated.credential_hash == "h2"
    assert updated.vendor == "V" and updated.created_at == added.created_at


async def test_update_rejects_unknown_and_fixed_fields(store: Store) -> None:
    await store.stations.add(station("CP1"))
    with pytest.raises(TypeError, match="colour"):
        await store.stations.update("CP1", colour="red")
    with pytest.raises(TypeError, match="created_at"):
        await store.stations.update("CP1", created_at=T0)
    with pytest.raises(ValueError, match="security_profile"):
        await store.stations.update("CP1", security_profile=4)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.stations.update("CP1", last_seen=datetime(2025, 1, 1))  # noqa: DTZ001


async def test_update_of_unknown_station_raises(store: Store) -> None:
    with pytest.raises(StationNotFound):
        await store.stations.update("ghost", vendor="x")


async def test_touch_sets_last_seen_only(store: Store) -> None:
    added = await store.stations.add(station("CP1"))
    await store.stations.touch("CP1", T0)
    touched = await store.stations.get("CP1")
    assert touched is not None and touched.last_seen == T0
    assert touched == replace(added, last_seen=T0)
    await store.stations.touch("ghost", T0)  # unknown identity: nothing to do, no error


async def test_identity_length_is_enforced_on_every_backend(store: Store) -> None:
    with pytest.raises(ValueError, match="1-48"):
        await store.stations.add(station("x" * 49))
    assert (await store.stations.add(station("x" * 48))).identity == "x" * 48


async def test_datetimes_round_trip_as_aware_utc(store: Store) -> None:
    local = datetime(2025, 6, 30, 23, 30, 0, 654321, tzinfo=CEST)
    added = await store.stations.add(station("CP1", last_seen=local, created_at=local))
    for value in (added.last_seen, added.created_at):
        assert value == local and value is not None and value.tzinfo == UTC
        assert value.hour == 21 and value.microsecond == 654321
    stored = await store.events.add(event(occurred_at=local, received_at=local))
    assert stored.occurred_at == local and stored.occurred_at.tzinfo == UTC
    [listed] = await store.events.list()
    assert listed.received_at == local and listed.received_at.tzinfo == UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.stations.touch("CP1", datetime(2025, 1, 1))  # noqa: DTZ001


# --- security events -----------------------------------------------------------------------


async def test_event_add_fills_id_and_received_at(store: Store) -> None:
    before = datetime.now(UTC)
    stored = await store.events.add(
        event(
            station_identity="CP1",
            occurred_at=T0,
            tech_info="new firmware 2.0",
            peer_address="192.0.2.1:4000",
            ocpp_version=OcppVersion.V201,
        )
    )
    assert stored.id is not None and stored.received_at is not None
    assert before <= stored.received_at <= datetime.now(UTC)
    assert stored.ocpp_version is OcppVersion.V201 and stored.source is EventSource.STATION
    assert await store.events.list() == [stored]


async def test_events_filter_page_count_newest_first(store: Store) -> None:
    specs = [
        ("CP1", EventSource.STATION, False),
        ("CP1", EventSource.CSMS, True),
        ("CP2", EventSource.STATION, True),
        (None, EventSource.CSMS, True),  # e.g. a rejected connection without a usable identity
        ("CP1", EventSource.STATION, True),
    ]
    added = [
        await store.events.add(event(f"E{n}", station_identity=who, source=src, critical=crit))
        for n, (who, src, crit) in enumerate(specs)
    ]
    newest_first = [e.type for e in reversed(added)]

    assert [e.type for e in await store.events.list()] == newest_first
    assert [e.type for e in await store.events.list(station="CP1")] == ["E4", "E1", "E0"]
    assert [e.type for e in await store.events.list(critical=True)] == ["E4", "E3", "E2", "E1"]
    assert [e.type for e in await store.events.list(critical=False)] == ["E0"]
    assert [e.type for e in await store.events.list(source=EventSource.CSMS)] == ["E3", "E1"]
    only = await store.events.list(station="CP1", critical=True, source=EventSource.STATION)
    assert [e.type for e in only] == ["E4"]
    assert [e.type for e in await store.events.list(limit=2, offset=1)] == ["E3", "E2"]
    assert await store.events.list(limit=2, offset=10) == []

    assert await store.events.count() == 5
    assert await store.events.count(station="CP1") == 3
    assert await store.events.count(station="CP1", critical=True) == 2
    assert await store.events.count(source=EventSource.STATION, critical=False) == 1
    with pytest.raises(ValueError, match="limit"):
        await store.events.list(limit=-1)


async def test_events_order_by_received_at_not_insertion(store: Store) -> None:
    await store.events.add(event("late", received_at=T0 + timedelta(seconds=1)))
    await store.events.add(event("early", received_at=T0))
    assert [e.type for e in await store.events.list()] == ["late", "early"]


async def test_event_about_an_unregistrable_identity_is_kept(store: Store) -> None:
    weird = "x" * 300 + ":ünï"
    await store.events.add(event("InvalidIdentity", station_identity=weird, tech_info="t" * 5000))
    [stored] = await store.events.list(station=weird)
    assert stored.station_identity == weird and stored.tech_info == "t" * 5000


# --- audit ---------------------------------------------------------------------------------


async def test_audit_round_trip_filter_and_order(store: Store) -> None:
    details = {"from": 1, "to": 2, "reason": "upgrade", "nested": {"list": [1, "a", None]}}
    first = await store.audit.add(
        AuditRecord(actor="alice", action="station.profile", target="CP1", details=details)
    )
    await store.audit.add(AuditRecord(actor="bob", action="operator.create", target="carol"))
    await store.audit.add(AuditRecord(actor="system", action="station.touch", target="CP1"))

    assert first.id is not None and first.at is not None and first.at.tzinfo == UTC
    assert first.details == details
    entries = await store.audit.list()
    assert [e.action for e in entries] == ["station.touch", "operator.create", "station.profile"]
    assert entries[-1] == first
    assert [e.actor for e in await store.audit.list(target="CP1")] == ["system", "alice"]
    assert [e.actor for e in await store.audit.list(limit=1, offset=1)] == ["bob"]
    assert (await store.audit.list(target="carol"))[0].details == {}


async def test_audit_details_must_be_json(store: Store) -> None:
    with pytest.raises(TypeError, match="not JSON"):
        await store.audit.add(AuditRecord(actor="a", action="x", details={"when": T0}))
    with pytest.raises(TypeError, match="not JSON"):
        await store.audit.add(AuditRecord(actor="a", action="x", details={"v": float("nan")}))
    assert await store.audit.list() == []


# --- operators -----------------------------------------------------------------------------


async def test_operators_add_get_list_find_by_lookup(store: Store) -> None:
    alice = await store.operators.add(operator("alice", OperatorRole.ADMIN, "cw_aaaa", "h1"))
    await store.operators.add(operator("bob", OperatorRole.VIEWER, "cw_bbbb", "h2"))
    assert alice.id is not None and alice.created_at is not None
    assert alice.created_at.tzinfo == UTC
    assert await store.operators.find_by_lookup("cw_aaaa") == alice
    assert await store.operators.find_by_lookup("cw_zzzz") is None
    assert await store.operators.get("alice") == alice
    assert await store.operators.get("nobody") is None
    listed = await store.operators.list()
    assert [(o.name, o.role) for o in listed] == [
        ("alice", OperatorRole.ADMIN),
        ("bob", OperatorRole.VIEWER),
    ]


async def test_duplicate_operator_name_raises(store: Store) -> None:
    await store.operators.add(operator("alice", OperatorRole.ADMIN, "l1"))
    with pytest.raises(OperatorExists):
        await store.operators.add(operator("alice", OperatorRole.VIEWER, "l2"))
    stored = await store.operators.get("alice")
    assert stored is not None and stored.role is OperatorRole.ADMIN


# --- connector status ----------------------------------------------------------------------


async def test_connector_upsert_inserts_then_replaces(store: Store) -> None:
    await store.stations.add(station("CP1"))
    await store.connectors.upsert(ConnectorStatusRecord("CP1", 1, 2, "Available", updated_at=T0))
    await store.connectors.upsert(ConnectorStatusRecord("CP1", 1, 1, "Available", updated_at=T0))
    later = T0 + timedelta(minutes=5)
    await store.connectors.upsert(
        ConnectorStatusRecord("CP1", 1, 1, "Faulted", error_code="GroundFailure", updated_at=later)
    )
    assert await store.connectors.list("CP1") == [
        ConnectorStatusRecord("CP1", 1, 1, "Faulted", error_code="GroundFailure", updated_at=later),
        ConnectorStatusRecord("CP1", 1, 2, "Available", error_code=None, updated_at=T0),
    ]
    assert await store.connectors.list("CP2") == []


async def test_connector_of_unknown_station_raises(store: Store) -> None:
    with pytest.raises(StationNotFound):
        await store.connectors.upsert(ConnectorStatusRecord("ghost", 0, 0, "Available"))


# --- concurrency ---------------------------------------------------------------------------


async def test_concurrent_writers_do_not_lock_each_other_out(store: Store) -> None:
    """The gateway writes from many connections at once; SQLite must queue them, not fail."""
    await store.stations.add(station("CP1"))

    async def traffic(n: int) -> None:
        await store.events.add(event(f"E{n}", station_identity="CP1"))
        await store.stations.touch("CP1", T0 + timedelta(seconds=n))
        await store.connectors.upsert(ConnectorStatusRecord("CP1", 1, n % 3, "Charging"))

    await asyncio.gather(*(traffic(n) for n in range(40)))
    assert await store.events.count(station="CP1") == 40
    assert len(await store.connectors.list("CP1")) == 3
