"""The store: one object holding the engine and a repository per aggregate."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from chargewarden.store.alerts import AlertRepository
from chargewarden.store.cert_requests import (
    CertificateRequestRepository,
    InstalledCertificatesRepository,
)
from chargewarden.store.certificates import CertificateRepository
from chargewarden.store.db import describe_error, open_engine
from chargewarden.store.errors import StoreError
from chargewarden.store.events import AuditRepository, SecurityEventRepository
from chargewarden.store.firmware import FirmwareReleaseRepository, FirmwareUpdateRepository
from chargewarden.store.jobs import JobRepository
from chargewarden.store.operators import OperatorRepository
from chargewarden.store.point_reads import PointReads
from chargewarden.store.stations import ConnectorStatusRepository, StationRepository
from chargewarden.store.transfers import FileTokenRepository, LogRequestRepository
from chargewarden.store.urls import mask_url, normalize_database_url


class Store:
    """Persistence for the CSMS, on PostgreSQL or a SQLite file.

    Open with ``await Store.open(url)``; use as ``async with await Store.open(url) as store:``
    or call ``close()``. Every repository call is its own transaction and returns plain records.
    """

    def __init__(self, engine: AsyncEngine, url_for_display: str) -> None:
        self._engine = engine
        self._closed = False
        # The URL with the password masked: the only form of it that may be logged or shown.
        self.url_for_display = url_for_display
        # Records are converted before commit, so nothing needs reloading afterwards.
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        dialect = engine.dialect.name
        self._point_reads = PointReads(engine)
        self.stations = StationRepository(sessions, dialect, self._point_reads)
        self.events = SecurityEventRepository(sessions, dialect)
        self.audit = AuditRepository(sessions, dialect)
        self.operators = OperatorRepository(sessions, dialect)
        self.connectors = ConnectorStatusRepository(sessions, dialect)
        self.certificates = CertificateRepository(sessions, dialect, self._point_reads)
        self.certificate_requests = CertificateRequestRepository(sessions, dialect)
        self.installed_certificates = InstalledCertificatesRepository(sessions, dialect)
        self.alerts = AlertRepository(sessions, dialect)
        self.jobs = JobRepository(sessions, dialect)
        self.firmware_releases = FirmwareReleaseRepository(sessions, dialect)
        self.firmware_updates = FirmwareUpdateRepository(sessions, dialect)
        self.log_requests = LogRequestRepository(sessions, dialect)
        self.file_tokens = FileTokenRepository(sessions, dialect)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect and bring the schema to the current revision (or, with ``migrate=False``,
        refuse a database whose schema is not current). StoreError on any failure."""
        normalized = normalize_database_url(url)
        engine = await open_engine(normalized, migrate=migrate)
        return cls(engine, mask_url(normalized))

    @property
    def dialect(self) -> str:
        """``"postgresql"`` or ``"sqlite"``."""
        return self._engine.dialect.name

    async def ping(self) -> None:
        """One trivial query; StoreError if the database does not answer (readiness)."""
        # A disposed engine would quietly open a new pool, so closing is tracked here.
        if self._closed:
            raise StoreError("the store is closed")
        try:
            async with self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"database error: {describe_error(exc)}") from exc

    async def close(self) -> None:
        self._closed = True
        self._point_reads.close()
        await self._engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Store({self.url_for_display!r})"
