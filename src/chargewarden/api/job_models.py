"""Request and response bodies of the job routes (password rotation, profile upgrades, fleets).

Nothing here is secret: a job's params and context hold targets, slots, request ids and a short
reference to a stored hash (never the hash, never the credential), and trail details are
written by the workflows, which never put a secret in them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from chargewarden.store.job_records import JobKind, JobRecord, JobState, JobStepRecord
from chargewarden.workflows.fleet import progress_text
from chargewarden.workflows.service import MAX_SLOT, JobDetail

# A fleet named station by station; larger fleets are selected by profile or version.
MAX_FLEET_STATIONS = 10_000
MAX_IDENTITY = 48
# Job ids are 64-bit database keys; a larger number must not reach the database.
MAX_JOB_ID = 2**63 - 1


class UpgradeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: JSON true must not become profile 1, nor "2" a target.
    to: StrictInt = Field(ge=2, le=3, description="Target security profile: 2 or 3.")
    slot: StrictInt | None = Field(
        None,
        ge=0,
        le=MAX_SLOT,
        description=(
            "OCPP 2.0.1: the NetworkConfigurationPriority slot for the new profile. Default: the "
            "first slot the station does not use. Ignored by 1.6 stations."
        ),
    )


class FleetCreate(BaseModel):
    """A job per eligible station. Stations are chosen by the criteria given (all must match);
    with none of them, ``all: true`` must say that every station is meant."""

    model_config = ConfigDict(extra="forbid")

    operation: Literal["rotate-password", "upgrade-profile"]
    to: StrictInt | None = Field(
        None, ge=2, le=3, description="upgrade-profile only: the target profile, 2 or 3."
    )
    profile: StrictInt | None = Field(
        None, ge=0, le=3, description="Only stations on this security profile."
    )
    ocpp_version: Literal["1.6", "2.0.1"] | None = Field(
        None, description="Only stations of this OCPP version."
    )
    stations: list[str] | None = Field(
        None,
        min_length=1,
        max_length=MAX_FLEET_STATIONS,
        description="Only these stations (each must exist).",
    )
    all: StrictBool = Field(
        False,
        description=(
            "Every station (narrowed by profile and ocpp_version if given). Required when no "
            "criterion is given, so a forgotten filter never reaches the whole fleet."
        ),
    )
    concurrency: StrictInt | None = Field(
        None,
        ge=1,
        le=1000,
        description="Stations changed at once (default: the jobs.fleet_concurrency setting).",
    )

    def refusal(self) -> str | None:
        """Why this request is inconsistent (None: fine). Checked in the route, so the problem
        detail says it in words rather than as a schema path."""
        if self.stations is not None:
            if any(not 1 <= len(s) <= MAX_IDENTITY for s in self.stations):
                return f"station identities are 1 to {MAX_IDENTITY} characters"
            if self.all:
                return "give either stations or all: true, not both"
        criteria = (self.stations, self.profile, self.ocpp_version)
        if not self.all and all(c is None for c in criteria):
            return (
                "name the stations: give profile, ocpp_version or stations, or all: true for "
                "every station"
            )
        if self.operation == "rotate-password" and self.to is not None:
            return "to is only for upgrade-profile"
        if self.operation == "upgrade-profile" and self.to is None:
            return "upgrade-profile needs a target profile: to 2 or 3"
        return None


class JobOut(BaseModel):
    id: int
    kind: JobKind
    state: JobState
    step: str = Field(description="The step the job is at (or ended in).")
    actor: str = Field(description="Who started it (an operator, or system for PWD-03).")
    station: str | None = Field(description="Null for a fleet job.")
    parent_id: int | None = Field(description="The fleet job this one belongs to.")
    params: dict[str, Any] = Field(description="What was asked for: to, slot, concurrency, ...")
    context: dict[str, Any] = Field(description="What the steps learnt (slot, request id, ...).")
    message: str | None = Field(description="Latest outcome in words: progress, wait, failure.")
    cancel_requested: bool
    wake_at: datetime | None
    deadline: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, record: JobRecord) -> JobOut:
        assert record.id is not None
        return cls(
            id=record.id,
            kind=record.kind,
            state=record.state,
            step=record.step,
            actor=record.actor,
            station=record.station_identity,
            parent_id=record.parent_id,
            params=dict(record.params),
            context=dict(record.context),
            message=record.message,
            cancel_requested=record.cancel_requested,
            wake_at=record.wake_at,
            deadline=record.deadline,
            created_at=record.created_at,
            updated_at=record.updated_at,
            finished_at=record.finished_at,
        )


class JobStepOut(BaseModel):
    at: datetime
    step: str
    outcome: str = Field(description="created, started, done, waiting, failed, succeeded, ...")
    detail: str | None

    @classmethod
    def of(cls, record: JobStepRecord) -> JobStepOut:
        return cls(at=record.at, step=record.step, outcome=record.outcome, detail=record.detail)


class JobDetailOut(JobOut):
    steps: list[JobStepOut] = Field(description="The audit trail, oldest first.")
    children: dict[JobState, int] | None = Field(
        description="Fleet jobs: how many children are in each state (all states listed)."
    )
    progress: str = Field(
        description="Fleet jobs: e.g. '3/10 finished, 3 succeeded, 7 pending'; others: state "
        "and step."
    )

    @classmethod
    def detail(cls, found: JobDetail) -> JobDetailOut:
        job = found.job
        if job.kind is JobKind.FLEET:
            children: dict[JobState, int] | None = {s: found.children.get(s, 0) for s in JobState}
            progress = progress_text(found.children)
        else:
            children = None
            progress = f"{job.state} at step {job.step}"
        return cls(
            **JobOut.of(job).model_dump(),
            steps=[JobStepOut.of(step) for step in found.steps],
            children=children,
            progress=progress,
        )


class FleetCreated(BaseModel):
    job: JobOut
    skipped: list[str] = Field(description="Why each station that matched was left out.")
