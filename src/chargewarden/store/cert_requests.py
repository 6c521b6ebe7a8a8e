"""Signing flows and installed-certificate snapshots (alerts are in store/alerts.py)."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from chargewarden.store.base import Repository, check_page
from chargewarden.store.errors import StoreError
from chargewarden.store.mapping import aware, certificate_record, certificate_values, utcnow
from chargewarden.store.models import (
    CertificateRequestRow,
    CertificateRow,
    InstalledCertificatesRow,
)
from chargewarden.store.records import (
    CertificateRecord,
    CertificateRequestRecord,
    CertificateRequestState,
    InstalledCertificate,
    InstalledCertificatesSnapshot,
    RequestOrigin,
)

_REQUEST_FIELDS = {
    "state",
    "reason",
    "certificate_id",
    "replaces_certificate_id",
    "csr_received_at",
    "delivery_attempts",
}


def _request_record(row: CertificateRequestRow) -> CertificateRequestRecord:
    return CertificateRequestRecord(
        id=row.id,
        station_identity=row.station_identity,
        certificate_type=row.certificate_type,
        state=CertificateRequestState(row.state),
        origin=RequestOrigin(row.origin),
        actor=row.actor,
        reason=row.reason,
        certificate_id=row.certificate_id,
        replaces_certificate_id=row.replaces_certificate_id,
        chain_pem=row.chain_pem,
        csr_received_at=row.csr_received_at,
        delivery_attempts=row.delivery_attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _request_values(record: CertificateRequestRecord, now: datetime) -> dict[str, Any]:
    return {
        "station_identity": record.station_identity,
        "certificate_type": record.certificate_type,
        "state": CertificateRequestState(record.state).value,
        "origin": RequestOrigin(record.origin).value,
        "actor": record.actor,
        "reason": record.reason[:500] if record.reason else None,
        "certificate_id": record.certificate_id,
        "replaces_certificate_id": record.replaces_certificate_id,
        "chain_pem": record.chain_pem,
        "csr_received_at": record.csr_received_at,
        "delivery_attempts": record.delivery_attempts,
        "created_at": now,
        "updated_at": now,
    }


def _changes(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - _REQUEST_FIELDS
    if unknown:
        raise TypeError(f"not changeable on a certificate request: {', '.join(sorted(unknown))}")
    values = dict(changes)
    if "state" in values:
        values["state"] = CertificateRequestState(values["state"]).value
    if values.get("reason"):
        values["reason"] = str(values["reason"])[:500]
    return values


class CertificateRequestRepository(Repository):
    async def add(self, record: CertificateRequestRecord) -> CertificateRequestRecord:
        stmt = (
            self._insert(CertificateRequestRow)
            .values(**_request_values(record, utcnow()))
            .returning(CertificateRequestRow)
        )
        async with self._transaction() as session:
            return _request_record((await session.execute(stmt)).scalar_one())

    async def get(self, request_id: int) -> CertificateRequestRecord | None:
        async with self._transaction() as session:
            row = await session.get(CertificateRequestRow, request_id)
            return _request_record(row) if row is not None else None

    async def update(self, request_id: int, **changes: Any) -> CertificateRequestRecord:
        stmt = (
            update(CertificateRequestRow)
            .where(CertificateRequestRow.id == request_id)
            .values(**_changes(changes), updated_at=utcnow())
            .returning(CertificateRequestRow)
        )
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:
                raise StoreError(f"no certificate request {request_id}")
            return _request_record(row)

    async def transition(
        self,
        request_id: int,
        expected: CertificateRequestState,
        **changes: Any,
    ) -> CertificateRequestRecord | None:
        """Change a request only if it is still in ``expected``; None if it moved on meanwhile
        (two deliveries racing must not both record an outcome)."""
        stmt = (
            update(CertificateRequestRow)
            .where(
                CertificateRequestRow.id == request_id,
                CertificateRequestRow.state == expected.value,
            )
            .values(**_changes(changes), updated_at=utcnow())
            .returning(CertificateRequestRow)
        )
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            return _request_record(row) if row is not None else None

    async def issue(
        self, request: CertificateRequestRecord, certificate: CertificateRecord
    ) -> tuple[CertificateRequestRecord, CertificateRecord]:
        """Record the issued certificate and move the request to ``issued``, atomically: the
        certificate exists in the store before anything is sent to the station."""
        now = utcnow()
        async with self._transaction() as session:
            cert_row = (
                await session.execute(
                    self._insert(CertificateRow)
                    .values(**certificate_values(certificate, now))
                    .returning(CertificateRow)
                )
            ).scalar_one()
            values = {
                "state": CertificateRequestState.ISSUED.value,
                "certificate_id": cert_row.id,
                "chain_pem": request.chain_pem,
                "reason": None,
                "updated_at": now,
            }
            if request.id is None:
                stmt: Any = (
                    self._insert(CertificateRequestRow)
                    .values(**(_request_values(request, now) | values))
                    .returning(CertificateRequestRow)
                )
            else:
                stmt = (
                    update(CertificateRequestRow)
                    .where(CertificateRequestRow.id == request.id)
                    .values(**values, csr_received_at=request.csr_received_at)
                    .returning(CertificateRequestRow)
                )
            row = (await session.execute(stmt)).scalar_one()
            return _request_record(row), certificate_record(cert_row)

    async def open_for(
        self, station_identity: str, certificate_type: str | None = None
    ) -> CertificateRequestRecord | None:
        """The newest request of the station still waiting for a CSR or for its answer."""
        conditions = [
            CertificateRequestRow.station_identity == station_identity,
            CertificateRequestRow.state.in_(
                [CertificateRequestState.TRIGGERED.value, CertificateRequestState.ISSUED.value]
            ),
        ]
        if certificate_type is not None:
            conditions.append(CertificateRequestRow.certificate_type == certificate_type)
        stmt = (
            select(CertificateRequestRow)
            .where(*conditions)
            .order_by(CertificateRequestRow.id.desc())
            .limit(1)
        )
        async with self._transaction() as session:
            row = await session.scalar(stmt)
            return _request_record(row) if row is not None else None

    async def in_state(
        self,
        state: CertificateRequestState,
        *,
        station_identity: str | None = None,
        updated_before: datetime | None = None,
    ) -> builtins.list[CertificateRequestRecord]:
        conditions = [CertificateRequestRow.state == state.value]
        if station_identity is not None:
            conditions.append(CertificateRequestRow.station_identity == station_identity)
        if updated_before is not None:
            conditions.append(
                CertificateRequestRow.updated_at < aware(updated_before, "updated_before")
            )
        stmt = select(CertificateRequestRow).where(*conditions).order_by(CertificateRequestRow.id)
        async with self._transaction() as session:
            return [_request_record(row) for row in await session.scalars(stmt)]

    async def csrs_since(self, station_identity: str, since: datetime) -> int:
        stmt = select(func.count()).where(
            CertificateRequestRow.station_identity == station_identity,
            CertificateRequestRow.csr_received_at >= aware(since, "since"),
        )
        async with self._transaction() as session:
            return int(await session.scalar(stmt) or 0)

    async def list(
        self, *, station_identity: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[CertificateRequestRecord]:
        check_page(limit, offset)
        stmt = select(CertificateRequestRow)
        if station_identity is not None:
            stmt = stmt.where(CertificateRequestRow.station_identity == station_identity)
        stmt = stmt.order_by(CertificateRequestRow.id.desc()).limit(limit).offset(offset)
        async with self._transaction() as session:
            return [_request_record(row) for row in await session.scalars(stmt)]


class InstalledCertificatesRepository(Repository):
    async def add(self, snapshot: InstalledCertificatesSnapshot) -> InstalledCertificatesSnapshot:
        stmt = (
            self._insert(InstalledCertificatesRow)
            .values(
                station_identity=snapshot.station_identity,
                taken_at=aware(snapshot.taken_at, "taken_at"),
                entries=[
                    {"certificate_type": e.certificate_type, "hash_data": dict(e.hash_data)}
                    for e in snapshot.entries
                ],
            )
            .returning(InstalledCertificatesRow)
        )
        async with self._transaction() as session:
            return _snapshot((await session.execute(stmt)).scalar_one())

    async def latest(self, station_identity: str) -> InstalledCertificatesSnapshot | None:
        stmt = (
            select(InstalledCertificatesRow)
            .where(InstalledCertificatesRow.station_identity == station_identity)
            .order_by(InstalledCertificatesRow.id.desc())
            .limit(1)
        )
        async with self._transaction() as session:
            row = await session.scalar(stmt)
            return _snapshot(row) if row is not None else None


def _snapshot(row: InstalledCertificatesRow) -> InstalledCertificatesSnapshot:
    return InstalledCertificatesSnapshot(
        id=row.id,
        station_identity=row.station_identity,
        taken_at=row.taken_at,
        entries=tuple(
            InstalledCertificate(e["certificate_type"], dict(e["hash_data"])) for e in row.entries
        ),
    )
