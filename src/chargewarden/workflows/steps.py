"""What a workflow step returns to the engine, and what it may use to do its work.

A step does one thing that must not be done twice (a message to a station, a credential
write), then says where the job goes next. The engine persists that outcome, with a line in
the job's trail, before the next step runs: a restart resumes at the last persisted step, so
every step must be safe to run again from its beginning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from chargewarden.config import FileTransferSettings, JobSettings
from chargewarden.domain.station_commands import StationChannel
from chargewarden.gateway.registry import ConnectionRegistry
from chargewarden.security.alerts import Alerts
from chargewarden.store import Store
from chargewarden.store.job_records import JobKind, JobRecord

if TYPE_CHECKING:
    from chargewarden.domain.certificate_signing import CertificateSigning
    from chargewarden.domain.station_certificates import StationCertificates
    from chargewarden.transfer.storage import TransferStorage
    from chargewarden.transfer.tokens import TransferLinks


@dataclass(frozen=True, slots=True)
class Advance:
    """Go on with ``step`` now."""

    step: str
    detail: str = ""
    context: dict[str, Any] = field(default_factory=dict)  # merged into the job's context


@dataclass(frozen=True, slots=True)
class Wait:
    """Park the job at ``step`` until its station connects, ``wake_at``, or a poke."""

    step: str
    reason: str
    wake_at: datetime | None = None
    deadline: datetime | None = None  # None keeps the job's current deadline
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Succeed:
    detail: str


@dataclass(frozen=True, slots=True)
class Fail:
    reason: str


Outcome = Advance | Wait | Succeed | Fail


@dataclass(slots=True)
class WorkflowDeps:
    """The services steps talk to; built once by the composition root."""

    store: Store
    channel: StationChannel
    registry: ConnectionRegistry
    alerts: Alerts
    settings: JobSettings
    clock: Callable[[], datetime]
    station_certificates: StationCertificates | None = None
    signing: CertificateSigning | None = None
    # PEM of every root a station must trust to connect over wss; None without TLS.
    csms_roots: Callable[[], bytes | None] = lambda: None
    # wss URL (without identity) that upgraded 2.0.1 stations are told to use.
    wss_url: Callable[[], str | None] = lambda: None
    # File transfer (firmware downloads, log uploads); None when it is off.
    links: TransferLinks | None = None
    storage: TransferStorage | None = None
    files: FileTransferSettings = field(default_factory=FileTransferSettings)


class Workflow(Protocol):
    kind: JobKind

    async def step(self, job: JobRecord) -> Outcome:
        """Run ``job.step`` and say what comes next. Must be safe to run again."""
        ...

    async def cancel(self, job: JobRecord) -> str:
        """Undo what can be undone without locking the station out; returns what was done."""
        ...

    def forget(self, job_id: int) -> None:
        """Drop in-memory state of a job that finished (or whose driver stopped)."""
        ...
