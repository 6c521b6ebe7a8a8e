"""The certificate store on each station: install, list and delete (CRT-04, CRT-05, CRT-06).

Every listing is kept as a dated snapshot, and a deletion always uses the hash data of a fresh
listing, in the hash algorithm the station itself reported (M04.FR.07): recomputing it here
in another algorithm, or from our own copy of the certificate, finds nothing on stations that
compare literally.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from cryptography import x509

from chargewarden.domain.station_commands import (
    CommandFailed,
    FailureKind,
    RootCertificateKind,
    StationChannel,
)
from chargewarden.pki.hashdata import normalize_serial
from chargewarden.store import Store
from chargewarden.store.records import (
    AuditRecord,
    InstalledCertificate,
    InstalledCertificatesSnapshot,
)

log = logging.getLogger(__name__)

# InstallCertificateRequest.certificate maxLength in both versions' schemas.
MAX_CERTIFICATE_PEM_CHARS = 5500


class InvalidCertificateFile(ValueError):
    """The PEM an operator wants to install is not one CA certificate."""


def check_root_pem(pem: str) -> x509.Certificate:
    if len(pem) > MAX_CERTIFICATE_PEM_CHARS:
        raise InvalidCertificateFile(
            f"the certificate PEM is {len(pem)} characters; OCPP allows {MAX_CERTIFICATE_PEM_CHARS}"
        )
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise InvalidCertificateFile("not a PEM certificate") from None
    if len(certificates) != 1:
        raise InvalidCertificateFile(f"expected exactly one certificate, found {len(certificates)}")
    certificate = certificates[0]
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.value.ca:
        raise InvalidCertificateFile("not a CA certificate (BasicConstraints CA:TRUE missing)")
    return certificate


class StationCertificates:
    def __init__(self, store: Store, channel: StationChannel) -> None:
        self._store = store
        self._channel = channel

    async def installed(self, identity: str) -> InstalledCertificatesSnapshot:
        """Ask the station what it has installed now (CRT-05); the answer is stored."""
        commands = self._channel.commands(identity)
        entries: list[InstalledCertificate] = []
        for command in commands.get_installed():
            answer = await self._channel.send(identity, command)
            entries.extend(commands.installed_from(command, answer))
        return await self._store.installed_certificates.add(
            InstalledCertificatesSnapshot(identity, datetime.now(UTC), tuple(entries))
        )

    async def install(
        self, identity: str, kind: RootCertificateKind, pem: str, *, actor: str
    ) -> str:
        """InstallCertificate (CRT-04); returns the station's status."""
        certificate = check_root_pem(pem)
        command = self._channel.commands(identity).install_certificate(kind, pem)
        await self._audit(actor, "station.certificate.install", identity, kind, certificate)
        answer = await self._channel.send(identity, command)
        status = str(answer.get("status"))
        log.info("station %s: InstallCertificate %s -> %s", identity, kind, status)
        return status

    async def delete(self, identity: str, serial: str, *, force: bool, actor: str) -> str:
        """DeleteCertificate by serial, with the hash data from a fresh listing (CRT-06)."""
        commands = self._channel.commands(identity)
        snapshot = await self.installed(identity)
        wanted = normalize_serial(serial)
        matches = [
            entry
            for entry in snapshot.entries
            if normalize_serial(str(entry.hash_data.get("serialNumber", ""))) == wanted
        ]
        if not matches:
            raise CommandFailed(
                FailureKind.NOT_FOUND,
                f"station {identity!r} reports no installed certificate with serial {wanted}",
            )
        if len(matches) > 1:
            raise CommandFailed(
                FailureKind.CONFLICT,
                f"station {identity!r} has {len(matches)} certificates with serial {wanted} "
                "(from different issuers); delete by issuer is not supported",
            )
        entry = matches[0]
        if commands.kind_of(entry.certificate_type) is RootCertificateKind.CSMS_ROOT:
            roots = [
                e
                for e in snapshot.entries
                if commands.kind_of(e.certificate_type) is RootCertificateKind.CSMS_ROOT
            ]
            if len(roots) == 1 and not force:
                raise CommandFailed(
                    FailureKind.CONFLICT,
                    f"serial {wanted} is the last CSMS root on station {identity!r}: without it "
                    "the station cannot verify the CSMS and goes offline for good; use force "
                    "if that is really intended",
                )
        await self._store.audit.add(
            AuditRecord(
                actor=actor,
                action="station.certificate.delete",
                target=identity,
                details={
                    "certificate_type": entry.certificate_type,
                    "serial": wanted,
                    "forced": force,
                },
            )
        )
        answer = await self._channel.send(identity, commands.delete_certificate(entry.hash_data))
        status = str(answer.get("status"))
        log.info("station %s: DeleteCertificate %s -> %s", identity, wanted, status)
        if status == "Accepted":
            await self.installed(identity)
        return status

    async def _audit(
        self,
        actor: str,
        action: str,
        identity: str,
        kind: RootCertificateKind,
        certificate: x509.Certificate,
    ) -> None:
        await self._store.audit.add(
            AuditRecord(
                actor=actor,
                action=action,
                target=identity,
                details={
                    "kind": kind.value,
                    "subject": certificate.subject.rfc4514_string()[:200],
                    "serial": format(certificate.serial_number, "X"),
                },
            )
        )
