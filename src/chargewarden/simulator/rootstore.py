"""The station's installed root certificates, per type (SIM-03; whitepaper M03–M05).

Sans I/O apart from the optional state directory (one PEM file per type). What counts as
installable: exactly one PEM certificate, a CA (BasicConstraints ca=True), self-signed, and
valid now (an expired root is "invalid and/or incorrect", M05.FR.06, TC_M_07_CS).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import TlsMaterialError
from chargewarden.simulator.statedir import StateDir

CSMS_ROOT_16 = "CentralSystemRootCertificate"  # 1.6's name of CSMSRootCertificate
BAD_CERTIFICATE = (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm)


class RootType(StrEnum):
    """Installed root certificate types, by their 2.0.1 names."""

    CSMS = "CSMSRootCertificate"
    MANUFACTURER = "ManufacturerRootCertificate"
    V2G = "V2GRootCertificate"
    MO = "MORootCertificate"

    @classmethod
    def parse(cls, name: str) -> RootType:
        """From either version's name (1.6 says CentralSystemRootCertificate)."""
        return cls.CSMS if name == CSMS_ROOT_16 else cls(name)

    def ocpp_name(self, version: OcppVersion) -> str:
        return CSMS_ROOT_16 if self is RootType.CSMS and version is OcppVersion.V16 else self.value


# The types each version can install and list, in the order GetInstalledCertificateIds reports.
ROOT_TYPES = {
    OcppVersion.V16: (RootType.CSMS, RootType.MANUFACTURER),
    OcppVersion.V201: (RootType.V2G, RootType.MO, RootType.CSMS, RootType.MANUFACTURER),
}
_FILES = {
    RootType.CSMS: "csms-roots.pem",
    RootType.MANUFACTURER: "manufacturer-roots.pem",
    RootType.V2G: "v2g-roots.pem",
    RootType.MO: "mo-roots.pem",
}


def pem(certificates: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def load_certificates(state: StateDir, name: str, data: bytes) -> list[x509.Certificate]:
    """Certificates of a state file; TlsMaterialError naming the file if there are none."""
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TlsMaterialError("state_dir", f"{state.path / name}: no PEM certificate") from None


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def self_signed(certificate: x509.Certificate) -> bool:
    if certificate.subject != certificate.issuer:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except BAD_CERTIFICATE:
        return False
    return True


class RootStore:
    def __init__(self, limit: int, state: StateDir | None = None) -> None:
        self.limit = limit  # per type (CertificateStoreMaxLength)
        self._state = state
        self._roots: dict[RootType, list[x509.Certificate]] = {t: [] for t in RootType}
        if state is not None:
            for kind, name in _FILES.items():
                data = state.read(name)
                if data and data.strip():
                    certificates = load_certificates(state, name, data)
                    self._roots[kind] = list(dict.fromkeys(certificates))

    def __repr__(self) -> str:
        counts = ", ".join(f"{t.value}={len(c)}" for t, c in self._roots.items() if c)
        return f"RootStore({counts or 'empty'})"

    def __iter__(self) -> Iterator[tuple[RootType, x509.Certificate]]:
        for kind, store in self._roots.items():
            for certificate in store:
                yield kind, certificate

    def of(self, kind: RootType) -> list[x509.Certificate]:
        return list(self._roots[kind])

    def provision(self, kind: RootType, certificates: Iterable[x509.Certificate]) -> None:
        """Factory installation (the configured roots): no checks, no limit, not written to the
        state directory by itself, since it is redone at every start."""
        store = self._roots[kind]
        store.extend(c for c in dict.fromkeys(certificates) if c not in store)

    def install(self, kind: RootType, data: bytes, now: datetime | None = None) -> str:
        """InstallCertificate: "Accepted", "Rejected" (see the module docstring) or "Failed"
        (the store of that type is full). A certificate installed already is Accepted again,
        not stored twice."""
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            return "Rejected"
        if len(certificates) != 1:
            return "Rejected"
        certificate = certificates[0]
        if not is_ca(certificate) or not self_signed(certificate):
            return "Rejected"
        if now is not None and now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        if now is not None and not (
            certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc
        ):
            return "Rejected"
        store = self._roots[kind]
        if certificate in store:
            return "Accepted"
        if len(store) >= self.limit:
            return "Failed"
        store.append(certificate)
        self._save(kind)
        return "Accepted"

    def remove(self, kind: RootType, certificate: x509.Certificate) -> None:
        self._roots[kind].remove(certificate)
        self._save(kind)

    def _save(self, kind: RootType) -> None:
        if self._state is not None:
            self._state.write(_FILES[kind], pem(self._roots[kind]))
