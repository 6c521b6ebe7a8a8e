"""Records of durable jobs: password rotations, profile upgrades and the fleet jobs over them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    PENDING = "pending"  # created, not started (a fleet child waits for a free slot)
    RUNNING = "running"
    WAITING = "waiting-for-station"  # offline, rebooting, or an answer still to come
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


ACTIVE_STATES = (JobState.PENDING, JobState.RUNNING, JobState.WAITING)


class JobKind(StrEnum):
    ROTATE_CREDENTIALS = "rotate-password"
    UPGRADE_PROFILE = "upgrade-profile"
    UPDATE_FIRMWARE = "update-firmware"
    FETCH_LOG = "fetch-log"
    FLEET = "fleet"  # parent of one child job per station


@dataclass(frozen=True, slots=True)
class JobRecord:
    kind: JobKind
    state: JobState
    step: str
    actor: str
    station_identity: str | None = None
    parent_id: int | None = None
    # What the operator asked for (target profile, concurrency, ...). Never a secret.
    params: dict[str, Any] = field(default_factory=dict)
    # What the steps learnt and must survive a restart (slot, request id, ...). Never a secret.
    context: dict[str, Any] = field(default_factory=dict)
    # The latest outcome in words: progress, why it waits, why it failed.
    message: str | None = None
    attempts: int = 0
    cancel_requested: bool = False
    # When the engine looks at a waiting job again without being told to.
    wake_at: datetime | None = None
    # When a waiting job is overdue (reported, or failed, depending on the step).
    deadline: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class JobStepRecord:
    """One line of a job's audit trail."""

    job_id: int
    at: datetime
    step: str
    outcome: str  # started, done, waiting, failed, succeeded, cancelled, retry, ...
    detail: str | None = None
    id: int | None = None
