"""Certificates the CSMS issued or imported, and their revocation.

Revocation is a column, not a delete: the record of what was issued stays, and revocation is
effective the moment the UPDATE commits (the gateway checks the store, not a CRL, for our CAs).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargewarden.store.base import Repository
from chargewarden.store.errors import CertificateExists, CertificateNotFound, StoreError
from chargewarden.store.mapping import (
    aware,
    certificate_record,
    certificate_values,
    identity,
    serial,
    utcnow,
)
from chargewarden.store.models import CertificateRow
from chargewarden.store.point_reads import PointReads
from chargewarden.store.records import CertificateRecord, CertificateRole


def _reason(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a revocation needs a reason")
    return value.strip()


def _one(rows: builtins.list[CertificateRow], wanted: str) -> CertificateRow | None:
    if len(rows) > 1:
        issuers = ", ".join(sorted(row.issuer_ca for row in rows))
        raise StoreError(f"serial {wanted} is ambiguous (issued by {issuers}); name the issuer")
    return rows[0] if rows else None


class CertificateRepository(Repository):
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], dialect: str, point_reads: PointReads
    ) -> None:
        super().__init__(sessions, dialect)
        self._point_reads = point_reads

    async def add(self, record: CertificateRecord) -> CertificateRecord:
        """Record a certificate; CertificateExists if its fingerprint, or its issuer and serial,
        are already recorded."""
        stmt = (
            self._insert(CertificateRow)
            .values(**certificate_values(record, utcnow()))
            .on_conflict_do_nothing()
            .returning(CertificateRow)
        )
        async with self._transaction() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:
                raise CertificateExists(
                    f"certificate {record.serial} of {record.issuer_ca} is already recorded"
                )
            return certificate_record(row)

    async def get_by_id(self, certificate_id: int) -> CertificateRecord | None:
        async with self._transaction() as session:
            row = await session.get(CertificateRow, certificate_id)
            return certificate_record(row) if row is not None else None

    async def get(
        self, serial_number: str, *, issuer_ca: str | None = None
    ) -> CertificateRecord | None:
        """The certificate with this serial (any hex spelling); StoreError if several issuers
        used it and ``issuer_ca`` does not say which."""
        wanted = serial(serial_number)
        stmt = select(CertificateRow).where(*_by_serial(wanted, issuer_ca))
        async with self._transaction() as session:
            row = _one(list(await session.scalars(stmt)), wanted)
            return certificate_record(row) if row is not None else None

    async def find_by_fingerprint(self, sha256_hex: str) -> CertificateRecord | None:
        return await self._point_reads.certificate(sha256_hex)

    async def list(
        self,
        *,
        station: str | None = None,
        role: CertificateRole | str | None = None,
        expiring_within: timedelta | None = None,
        include_revoked: bool = True,
        now: datetime | None = None,
    ) -> builtins.list[CertificateRecord]:
        """Matching certificates, soonest expiry first.

        ``expiring_within``: those whose not_after is before ``now + expiring_within``,
        including ones already expired (they need renewing even more).
        """
        conditions: builtins.list[ColumnElement[bool]] = []
        if station is not None:
            conditions.append(CertificateRow.station_identity == station)
        if role is not None:
            conditions.append(CertificateRow.role == CertificateRole(role).value)
        if expiring_within is not None:
            limit = aware(now, "now") if now is not None else utcnow()
            conditions.append(CertificateRow.not_after <= limit + expiring_within)
        if not include_revoked:
            conditions.append(CertificateRow.revoked_at.is_(None))
        stmt = (
            select(CertificateRow)
            .where(*conditions)
            .order_by(CertificateRow.not_after, CertificateRow.id)
        )
        async with self._transaction() as session:
            return [certificate_record(row) for row in await session.scalars(stmt)]

    async def count_station_expiring(
        self, now: datetime, horizons: Sequence[timedelta]
    ) -> tuple[int, builtins.list[int]]:
        """How many stations hold a certificate, and of those how many expire by ``now + h``
        for each horizon ``h`` (cumulative: a horizon of 0 counts the expired ones).

        Per station and issuing CA only the newest unrevoked certificate counts, as for renewal:
        the one it presents. One aggregate statement, for the metrics scrape.
        """
        newest = (
            select(func.max(CertificateRow.not_after).label("not_after"))
            .where(
                CertificateRow.role == CertificateRole.STATION.value,
                CertificateRow.revoked_at.is_(None),
                CertificateRow.station_identity.is_not(None),
            )
            .group_by(CertificateRow.station_identity, CertificateRow.issuer_ca)
            .subquery()
        )
        start = aware(now, "now")
        stmt = select(
            func.count(),
            *(func.count(case((newest.c.not_after <= start + h, 1))) for h in horizons),
        ).select_from(newest)
        async with self._transaction() as session:
            total, *within = (await session.execute(stmt)).one()
        return int(total), [int(n) for n in within]

    async def revoke(
        self, serial_number: str, reason: str, at: datetime, *, issuer_ca: str | None = None
    ) -> CertificateRecord:
        """Revoke a certificate and return it. Idempotent: revoking a revoked certificate
        returns it unchanged (first time and reason kept). CertificateNotFound if unknown."""
        wanted = serial(serial_number)
        stmt = (
            update(CertificateRow)
            .where(*_by_serial(wanted, issuer_ca), CertificateRow.revoked_at.is_(None))
            .values(revoked_at=aware(at, "at"), revocation_reason=_reason(reason))
            .returning(CertificateRow)
            .execution_options(synchronize_session=False)
        )
        async with self._transaction() as session:
            # Raising inside the transaction rolls an ambiguous UPDATE back.
            row = _one(list((await session.execute(stmt)).scalars()), wanted)
            if row is None:
                existing = select(CertificateRow).where(*_by_serial(wanted, issuer_ca))
                row = _one(list(await session.scalars(existing)), wanted)
            if row is None:
                raise CertificateNotFound(f"no certificate with serial {wanted}")
            return certificate_record(row)

    async def revoke_station(
        self, station_identity: str, reason: str, at: datetime
    ) -> builtins.list[CertificateRecord]:
        """Revoke every unrevoked station certificate of a station, in one statement; returns
        the certificates revoked now (empty if there were none)."""
        stmt = (
            update(CertificateRow)
            .where(
                CertificateRow.station_identity == identity(station_identity),
                CertificateRow.role == CertificateRole.STATION.value,
                CertificateRow.revoked_at.is_(None),
            )
            .values(revoked_at=aware(at, "at"), revocation_reason=_reason(reason))
            .returning(CertificateRow)
            .execution_options(synchronize_session=False)
        )
        async with self._transaction() as session:
            rows = (await session.execute(stmt)).scalars()
            return sorted((certificate_record(r) for r in rows), key=lambda r: r.serial)

    async def revoked_since(self, at: datetime) -> builtins.list[CertificateRecord]:
        """Certificates revoked at or after ``at``, oldest revocation first (for the gateway's
        watcher: ``>=`` so a revocation in the same clock tick as the last look is not lost;
        the caller ignores serials it has already seen)."""
        stmt = (
            select(CertificateRow)
            .where(CertificateRow.revoked_at >= aware(at, "at"))
            .order_by(CertificateRow.revoked_at, CertificateRow.id)
        )
        async with self._transaction() as session:
            return [certificate_record(row) for row in await session.scalars(stmt)]

    async def revoked_for_issuer(self, issuer_ca: str) -> builtins.list[CertificateRecord]:
        """Revoked certificates of one issuer: the entries of its CRL."""
        stmt = (
            select(CertificateRow)
            .where(CertificateRow.issuer_ca == issuer_ca, CertificateRow.revoked_at.is_not(None))
            .order_by(CertificateRow.revoked_at, CertificateRow.id)
        )
        async with self._transaction() as session:
            return [certificate_record(row) for row in await session.scalars(stmt)]


def _by_serial(wanted: str, issuer_ca: str | None) -> builtins.list[ColumnElement[bool]]:
    conditions = [CertificateRow.serial == wanted]
    if issuer_ca is not None:
        conditions.append(CertificateRow.issuer_ca == issuer_ca)
    return conditions
