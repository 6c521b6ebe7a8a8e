"""Exceptions the store raises; callers never need to catch SQLAlchemy or driver errors."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be reached or used. The message is one line and holds no secrets."""


class StationExists(StoreError):
    """A station with this identity is already registered."""


class StationNotFound(StoreError):
    """No station with this identity is registered."""


class OperatorExists(StoreError):
    """An operator with this name already exists."""


class CertificateExists(StoreError):
    """A certificate with this fingerprint (or issuer and serial) is already recorded."""


class CertificateNotFound(StoreError):
    """No recorded certificate has this serial number."""
