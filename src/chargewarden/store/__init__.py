"""Persistence: SQLAlchemy models, repositories and Alembic migrations (PostgreSQL or SQLite).

The rest of the CSMS sees only ``Store``, its repositories and the plain records in
``chargewarden.store.records``; ORM rows never leave this package.
"""

from chargewarden.store.errors import (
    CertificateExists,
    CertificateNotFound,
    OperatorExists,
    StationExists,
    StationNotFound,
    StoreError,
)
from chargewarden.store.store import Store
from chargewarden.store.urls import normalize_database_url, sqlite_url

__all__ = [
    "CertificateExists",
    "CertificateNotFound",
    "OperatorExists",
    "StationExists",
    "StationNotFound",
    "Store",
    "StoreError",
    "normalize_database_url",
    "sqlite_url",
]
