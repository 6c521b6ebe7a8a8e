"""Root rollover, step 2 (CRT-08): give every station the new CSMS root before the switch.

A station that checks ``AdditionalRootCertificateCheck`` keeps one CSMS root and accepts a new
one only if the root it replaces signed it (WP ed.3 M05.FR.08-10, OCPP 2.0.1 M05.FR.09-11): it
gets the cross certificate (the new root's name and key, signed by the old root). Every other
station gets the self-signed new root, next to the old one. Whether a station checks is asked
first (1.6: GetConfiguration; 2.0.1: GetVariables SecurityCtrlr.AdditionalRootCertificateCheck);
an unknown or absent answer counts as false, which at worst earns a refusal that the outcome
reports, whereas a cross certificate on a station that does not check would be a trust anchor
that is not self-signed.

A station that already lists the new root (or the cross certificate) among its CSMS roots is
not asked to install it again: a station that checks would refuse the second time, its current
root being the new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509

from chargewarden.domain.station_certificates import StationCertificates, check_root_pem
from chargewarden.domain.station_commands import (
    Command,
    CommandFailed,
    FailureKind,
    RootCertificateKind,
    StationChannel,
)
from chargewarden.pki.hashdata import normalize_serial
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store import Store
from chargewarden.store.records import AuditRecord

log = logging.getLogger(__name__)

ADDITIONAL_ROOT_CHECK = "AdditionalRootCertificateCheck"
MAX_CONCURRENCY = 100


class Outcome(StrEnum):
    INSTALLED = "installed"  # InstallCertificate Accepted
    ALREADY_INSTALLED = "already-installed"  # the station lists it already
    REFUSED = "refused"  # the station answered, with another status (see ``status``)
    OFFLINE = "offline"
    ERROR = "error"  # no usable answer (timeout, CALLERROR, invalid response, unknown station)


class Sent(StrEnum):
    CROSS = "cross"
    SELF_SIGNED = "self-signed"


@dataclass(frozen=True, slots=True)
class StationOutcome:
    identity: str
    outcome: Outcome
    # Whether the station checks AdditionalRootCertificateCheck (None: not asked).
    additional_root_check: bool | None = None
    certificate: Sent | None = None  # which certificate the station was given (or has)
    status: str | None = None  # the station's InstallCertificate status
    detail: str | None = None

    @property
    def has_new_root(self) -> bool:
        return self.outcome in (Outcome.INSTALLED, Outcome.ALREADY_INSTALLED)

    def as_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "outcome": self.outcome.value,
            "additional_root_check": self.additional_root_check,
            "certificate": self.certificate.value if self.certificate else None,
            "status": self.status,
            "detail": self.detail,
        }


class RolloverBusy(Exception):
    """An install is already running; one at a time."""


Progress = Callable[[StationOutcome], None]


def _truthy(value: object) -> bool:
    return str(value).strip().lower() == "true"


def additional_root_check_command(version: OcppVersion) -> Command:
    if version is OcppVersion.V16:
        return Command("GetConfiguration", {"key": [ADDITIONAL_ROOT_CHECK]})
    return Command(
        "GetVariables",
        {
            "getVariableData": [
                {
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": ADDITIONAL_ROOT_CHECK},
                }
            ]
        },
    )


def additional_root_check_from(version: OcppVersion, answer: dict[str, Any]) -> bool:
    """The value the station reported; False when it reported none (unknown key, rejected)."""
    if version is OcppVersion.V16:
        for item in answer.get("configurationKey") or []:
            if item.get("key") == ADDITIONAL_ROOT_CHECK:
                return _truthy(item.get("value"))
        return False
    for result in answer.get("getVariableResult") or []:
        variable = (result.get("variable") or {}).get("name")
        if variable == ADDITIONAL_ROOT_CHECK and result.get("attributeStatus") == "Accepted":
            return _truthy(result.get("attributeValue"))
    return False


class RootRollover:
    def __init__(
        self, channel: StationChannel, station_certificates: StationCertificates, store: Store
    ) -> None:
        self._channel = channel
        self._certificates = station_certificates
        self._store = store
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._lock.locked()

    async def install(
        self,
        identities: Iterable[str],
        pem_self_signed: str,
        pem_cross: str,
        concurrency: int,
        progress: Progress | None = None,
        *,
        actor: str = "system",
    ) -> list[StationOutcome]:
        """Install the new root on each station, ``concurrency`` at a time; one outcome per
        station, in the order given. RolloverBusy if an install is running already."""
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be 1-{MAX_CONCURRENCY}")
        new_root = check_root_pem(pem_self_signed)
        cross = check_root_pem(pem_cross)
        wanted = {normalize_serial(format(c.serial_number, "x")) for c in (new_root, cross)}
        if self._lock.locked():
            raise RolloverBusy("a root rollover install is already running")
        async with self._lock:
            gate = asyncio.Semaphore(concurrency)

            async def one(identity: str) -> StationOutcome:
                async with gate:
                    outcome = await self._install_one(
                        identity, pem_self_signed, pem_cross, wanted, new_root, actor
                    )
                if progress is not None:
                    try:
                        progress(outcome)
                    except Exception:  # a broken progress display must not stop the install
                        log.exception("root rollover: progress callback failed")
                return outcome

            ordered = list(dict.fromkeys(identities))
            return list(await asyncio.gather(*(one(i) for i in ordered)))

    async def _install_one(
        self,
        identity: str,
        pem_self_signed: str,
        pem_cross: str,
        wanted: set[str],
        new_root: x509.Certificate,
        actor: str,
    ) -> StationOutcome:
        try:
            outcome = await self._install(identity, pem_self_signed, pem_cross, wanted, actor)
        except CommandFailed as exc:
            kind = Outcome.OFFLINE if exc.kind is FailureKind.OFFLINE else Outcome.ERROR
            outcome = StationOutcome(identity, kind, detail=str(exc))
        except Exception as exc:  # one station's surprise must not end the others' install
            log.exception("root rollover: installing on %s failed", identity)
            outcome = StationOutcome(identity, Outcome.ERROR, detail=type(exc).__name__)
        log.info(
            "root rollover: station %s -> %s%s",
            identity,
            outcome.outcome,
            f" ({outcome.status or outcome.detail})" if outcome.status or outcome.detail else "",
        )
        await self._store.audit.add(
            AuditRecord(
                actor=actor,
                action="ca.rollover.install",
                target=identity,
                details={
                    "outcome": outcome.outcome.value,
                    "additional_root_check": outcome.additional_root_check,
                    "certificate": outcome.certificate.value if outcome.certificate else None,
                    "status": outcome.status,
                    "detail": (outcome.detail or "")[:200] or None,
                    "new_root_serial": format(new_root.serial_number, "X"),
                },
            )
        )
        return outcome

    async def _install(
        self, identity: str, pem_self_signed: str, pem_cross: str, wanted: set[str], actor: str
    ) -> StationOutcome:
        if await self._store.stations.get(identity) is None:
            return StationOutcome(identity, Outcome.ERROR, detail="no such station is registered")
        version = self._channel.link(identity).info.ocpp_version  # OFFLINE if not connected
        answer = await self._channel.send(identity, additional_root_check_command(version))
        checks = additional_root_check_from(version, answer)
        sent = Sent.CROSS if checks else Sent.SELF_SIGNED
        if await self._lists_new_root(identity, wanted):
            return StationOutcome(identity, Outcome.ALREADY_INSTALLED, checks, sent)
        pem = pem_cross if checks else pem_self_signed
        status = await self._certificates.install(
            identity, RootCertificateKind.CSMS_ROOT, pem, actor=actor
        )
        outcome = Outcome.INSTALLED if status == "Accepted" else Outcome.REFUSED
        return StationOutcome(identity, outcome, checks, sent, status=status)

    async def _lists_new_root(self, identity: str, wanted: set[str]) -> bool:
        """Whether the station reports the new root or the cross certificate as installed; a
        station that cannot list its certificates is simply asked to install."""
        try:
            snapshot = await self._certificates.installed(identity)
        except CommandFailed as exc:
            if exc.kind in (FailureKind.OFFLINE, FailureKind.TIMEOUT):
                raise
            return False
        commands = self._channel.commands(identity)
        return any(
            commands.kind_of(entry.certificate_type) is RootCertificateKind.CSMS_ROOT
            and normalize_serial(str(entry.hash_data.get("serialNumber", ""))) in wanted
            for entry in snapshot.entries
        )
