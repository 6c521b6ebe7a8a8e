"""Firmware releases and updates, log requests and transfer tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargewarden.store import Store
from chargewarden.store.firmware import ReleaseExists
from chargewarden.store.transfer_records import (
    FileTokenRecord,
    FirmwareReleaseRecord,
    FirmwareUpdateRecord,
    FirmwareUpdateState,
    LogRequestRecord,
    LogRequestState,
    LogType,
    TransferPurpose,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def release(name: str = "acme-1.0") -> FirmwareReleaseRecord:
    return FirmwareReleaseRecord(
        name=name, filename="fw.bin", sha256="ab" * 32, size=10, signature="c2ln",
        signing_certificate_pem="-----BEGIN CERTIFICATE-----", signer_subject="CN=Signer",
        algorithm="ECDSA-SHA256", signer_not_after=NOW + timedelta(days=30), actor="test",
    )  # fmt: skip


async def test_FW_01_release_names_are_unique(store: Store) -> None:
    first = await store.firmware_releases.add(release())
    assert first.id is not None and (await store.firmware_releases.by_name("acme-1.0")) == first
    with pytest.raises(ReleaseExists):
        await store.firmware_releases.add(release())
    assert await store.firmware_releases.count() == 1


async def test_FW_03_status_history_is_kept_in_order_and_only_while_open(store: Store) -> None:
    stored = await store.firmware_releases.add(release())
    assert stored.id is not None
    update = await store.firmware_updates.add(
        FirmwareUpdateRecord(
            station_identity="CP-1",
            release_id=stored.id,
            state=FirmwareUpdateState.ACCEPTED,
            retrieve_at=NOW,
            actor="test",
        )  # fmt: skip
    )
    assert update.id is not None
    open_states = [s for s in FirmwareUpdateState if s.open]
    for minute, status in enumerate(["Downloading", "Downloaded", "Installed"]):
        at = NOW + timedelta(minutes=minute)
        assert await store.firmware_updates.record_status(
            update.id, status, at, only_if=open_states
        )
    await store.firmware_updates.update(update.id, state=FirmwareUpdateState.INSTALLED)
    late = await store.firmware_updates.record_status(
        update.id, "Idle", NOW + timedelta(hours=1), only_if=open_states
    )
    assert late is None
    final = await store.firmware_updates.get(update.id)
    assert final is not None and final.station_status == "Installed"
    assert [c.status for c in final.history] == ["Downloading", "Downloaded", "Installed"]
    assert final.history[0].at == NOW
    assert [u.id for u in await store.firmware_updates.list(station="CP-1")] == [update.id]
    assert await store.firmware_updates.open_for_station("CP-1") == []


async def test_LOG_01_log_request_round_trip(store: Store) -> None:
    request = await store.log_requests.add(
        LogRequestRecord(
            station_identity="CP-2",
            log_type=LogType.SECURITY,
            state=LogRequestState.PENDING,
            actor="test",
            since=NOW - timedelta(days=1),
        )  # fmt: skip
    )
    assert request.id is not None and request.history == ()
    changed = await store.log_requests.update(
        request.id, only_if=[LogRequestState.PENDING], state=LogRequestState.SENT
    )
    assert changed is not None and changed.state is LogRequestState.SENT
    assert await store.log_requests.update(
        request.id, only_if=[LogRequestState.PENDING], state=LogRequestState.FAILED
    ) is None  # fmt: skip
    listed = await store.log_requests.list(station="CP-2", log_type=LogType.SECURITY)
    assert [r.id for r in listed] == [request.id] and listed[0].since == NOW - timedelta(days=1)


async def test_LOG_01_upload_tokens_are_single_use_and_expire(store: Store) -> None:
    token = await store.file_tokens.add(
        FileTokenRecord(
            token_sha256="d" * 64,
            purpose=TransferPurpose.LOG_UPLOAD,
            station_identity="CP-3",
            ref_id=7,
            expires_at=NOW + timedelta(hours=1),
        )  # fmt: skip
    )
    assert token.id is not None
    assert await store.file_tokens.claim(token.id, NOW)
    assert not await store.file_tokens.claim(token.id, NOW)
    found = await store.file_tokens.find("d" * 64)
    assert found is not None and found.used_at == NOW and found.uses == 1
    await store.file_tokens.expire(TransferPurpose.LOG_UPLOAD, 7, NOW)
    latest = await store.file_tokens.for_ref(TransferPurpose.LOG_UPLOAD, 7)
    assert latest is not None and latest.expires_at == NOW
    assert await store.file_tokens.purge_expired(NOW + timedelta(seconds=1)) == 1
    assert await store.file_tokens.find("d" * 64) is None
