"""Password rotation (PWD-01, PWD-02), durable and safe against restarts at any step.

prepare → send → awaiting-answer → done, with two detours:
* confirm: the answer never came (timeout, dropped connection, CSMS restart). Both credentials
  stay valid; the station's next connection shows which one it holds (the gateway promotes the
  new one the moment a station uses it), and the job ends accordingly.
* reset → confirm-reboot: a 2.0.1 station answered RebootRequired. It keeps using its old
  password until it reboots, so both stay valid until it connects with the new one.

The new secret exists only in this process's memory, between prepare and the station's
answer; the store holds its Argon2id hash as the station's pending credential, and the job holds
a short reference to that hash, never the secret. A restart before the answer therefore cannot
resend the same secret: it waits for the station, and if the station still uses its old one,
sends a fresh secret.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

from chargewarden.domain.station_commands import CommandFailed, FailureKind
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.credentials import (
    auth_key_to_hex,
    generate_auth_key,
    generate_password_201,
    hash_secret,
)
from chargewarden.store.job_records import JobKind, JobRecord
from chargewarden.store.records import StationRecord
from chargewarden.workflows.steps import Advance, Fail, Outcome, Succeed, Wait, WorkflowDeps

BASIC_AUTH_PROFILES = (1, 2)


def credential_ref(phc: str | None) -> str | None:
    """A short, non-secret name for a stored hash, so a job can tell its credential apart."""
    return hashlib.sha256(phc.encode()).hexdigest()[:16] if phc else None


def _new_secret(version: OcppVersion) -> tuple[str, bytes]:
    """(what the station is sent, the bytes it will authenticate with)."""
    if version is OcppVersion.V16:
        key = generate_auth_key()
        return auth_key_to_hex(key), key
    password = generate_password_201()
    return password, password.encode("utf-8")


class RotateCredentials:
    kind = JobKind.ROTATE_CREDENTIALS

    def __init__(self, deps: WorkflowDeps) -> None:
        self._deps = deps
        # job id → the secret on its way to the station; never persisted, never logged.
        self._secrets: dict[int, str] = {}

    def forget(self, job_id: int) -> None:
        self._secrets.pop(job_id, None)

    def _online(self, identity: str) -> bool:
        return self._deps.registry.get(identity) is not None

    async def _station(self, job: JobRecord) -> StationRecord | None:
        assert job.station_identity is not None
        return await self._deps.store.stations.get(job.station_identity)

    async def step(self, job: JobRecord) -> Outcome:
        station = await self._station(job)
        if station is None:
            return Fail("the station was deleted")
        handler = {
            "prepare": self._prepare,
            "send": self._send,
            "awaiting-answer": self._awaiting_answer,
            "confirm": self._confirm,
            "reset": self._reset,
            "confirm-reboot": self._confirm_reboot,
        }.get(job.step)
        if handler is None:
            return Fail(f"unknown step {job.step!r}")
        return await handler(job, station)

    async def _prepare(self, job: JobRecord, station: StationRecord) -> Outcome:
        assert job.id is not None
        if station.security_profile not in BASIC_AUTH_PROFILES:
            return Fail(
                f"station is on security profile {station.security_profile}, which does not use "
                "a password"
            )
        if not self._online(station.identity):
            return Wait("prepare", "station is offline; the rotation starts when it connects")
        sends = int(job.context.get("sends", 0))
        if sends >= self._deps.settings.max_attempts:
            return Fail(f"gave up after {sends} attempts; the station keeps its old credential")
        wire, secret = _new_secret(station.ocpp_version)
        # Argon2id takes tens of milliseconds: keep the event loop serving stations meanwhile.
        phc = await asyncio.to_thread(hash_secret, secret)
        # Durable before the wire: the new credential is acceptable before the station gets it.
        await self._deps.store.stations.update(station.identity, pending_credential_hash=phc)
        self._secrets[job.id] = wire
        return Advance(
            "send",
            "new credential generated; its hash is stored as pending",
            {"credential_ref": credential_ref(phc), "sends": sends + 1},
        )

    async def _send(self, job: JobRecord, station: StationRecord) -> Outcome:
        assert job.id is not None
        if job.id not in self._secrets:
            return Advance("prepare", "CSMS restarted before the credential was sent; new one")
        if not self._online(station.identity):
            return Wait("send", "station is offline; the new credential goes out when it connects")
        # Persisted before the message: a restart from here on cannot know the station's answer.
        return Advance(
            "awaiting-answer",
            "sending the new credential",
            {"sent_at": self._deps.clock().isoformat()},
        )

    async def _awaiting_answer(self, job: JobRecord, station: StationRecord) -> Outcome:
        assert job.id is not None
        secret = self._secrets.get(job.id)
        if secret is None:
            return self._unknown(job, "restart", "CSMS restarted before the answer was recorded")
        if not self._online(station.identity):
            return Wait(
                "awaiting-answer",
                "station is offline; the new credential goes out when it connects",
            )
        commands = self._deps.channel.commands(station.identity)
        command = commands.set_credential(secret)
        try:
            answer = await self._deps.channel.send(station.identity, command)
        except CommandFailed as exc:
            if exc.kind in (FailureKind.TIMEOUT, FailureKind.OFFLINE):
                return self._unknown(job, str(exc.kind), str(exc))
            await self._drop_pending(job, station)
            return Fail(f"{exc}; the station keeps its old credential, which stays valid")
        status = commands.change_status(command, answer)
        if status == "Accepted":
            await self._promote(job, station)
            return Succeed(
                "station accepted the new credential; the old one is refused from now on"
            )
        if status == "RebootRequired":
            return Advance(
                "reset",
                "station applies the new password at its next reboot; both stay valid until it "
                "connects with the new one",
            )
        await self._drop_pending(job, station)
        return Fail(
            f"station answered {status or 'without a status'}; it keeps its old credential, "
            "which stays valid"
        )

    def _unknown(self, job: JobRecord, cause: str, why: str) -> Outcome:
        deadline = self._deps.clock() + timedelta(seconds=self._deps.settings.answer_wait_seconds)
        return Advance(
            "confirm",
            f"{why}; both credentials stay valid until the station shows which one it holds",
            {"cause": cause, "confirm_deadline": deadline.isoformat()},
        )

    async def _confirm(self, job: JobRecord, station: StationRecord) -> Outcome:
        ours = job.context.get("credential_ref")
        if credential_ref(station.credential_hash) == ours:
            return Succeed("station connected with the new credential; the old one is refused")
        if credential_ref(station.pending_credential_hash) != ours:
            return Fail("the pending credential was replaced by another change")
        link = self._deps.registry.get(station.identity)
        sent_at = datetime.fromisoformat(job.context.get("sent_at", "1970-01-01T00:00:00+00:00"))
        deadline = datetime.fromisoformat(job.context["confirm_deadline"])
        now = self._deps.clock()
        reconnected = link is not None and link.info.connected_since > sent_at
        stayed = link is not None and now >= deadline
        if reconnected or stayed:
            # A station holding the new credential would have been let in with it (and the
            # gateway would have made it the only one): this one did not apply the change.
            if job.context.get("cause") == "restart":
                return Advance(
                    "prepare", "station still uses its old credential; sending a new one"
                )
            await self._drop_pending(job, station)
            return Fail(
                "station did not answer the change and still uses its old credential, which "
                "stays valid"
            )
        reason = "waiting for the station to connect to see which credential it holds"
        if now >= deadline:
            reason += " (overdue)"
        return Wait("confirm", reason, wake_at=deadline if now < deadline else None)

    async def _reset(self, job: JobRecord, station: StationRecord) -> Outcome:
        deadline = self._deps.clock() + timedelta(
            seconds=self._deps.settings.reconnect_wait_seconds
        )
        if not self._online(station.identity):
            return Wait(
                "confirm-reboot",
                "station is offline; it uses the new password once back",
                deadline=deadline,
            )
        commands = self._deps.channel.commands(station.identity)
        command = commands.reset()
        try:
            answer = await self._deps.channel.send(station.identity, command)
            status = commands.change_status(command, answer)
        except CommandFailed as exc:
            status = f"no answer ({exc.kind})"
        return Wait(
            "confirm-reboot",
            f"reset {status}; waiting for the station to connect with the new password",
            wake_at=deadline,
            deadline=deadline,
        )

    async def _confirm_reboot(self, job: JobRecord, station: StationRecord) -> Outcome:
        if credential_ref(station.credential_hash) == job.context.get("credential_ref"):
            return Succeed("station rebooted and connected with the new password")
        overdue = job.deadline is not None and self._deps.clock() >= job.deadline
        return Wait(
            "confirm-reboot",
            "waiting for the station to reboot and connect with the new password"
            + (" (overdue)" if overdue else ""),
        )

    async def _promote(self, job: JobRecord, station: StationRecord) -> None:
        pending = station.pending_credential_hash
        if pending and credential_ref(pending) == job.context.get("credential_ref"):
            await self._deps.store.stations.promote_pending_credential(station.identity, pending)

    async def _drop_pending(self, job: JobRecord, station: StationRecord) -> None:
        pending = station.pending_credential_hash
        if pending and credential_ref(pending) == job.context.get("credential_ref"):
            await self._deps.store.stations.drop_pending_credential(station.identity, pending)

    async def cancel(self, job: JobRecord) -> str:
        station = await self._station(job)
        if station is None:
            return "cancelled; the station no longer exists"
        if job.step in ("prepare", "send"):
            await self._drop_pending(job, station)
            return "cancelled before the new credential was sent; the old one stays the only one"
        if credential_ref(station.credential_hash) == job.context.get("credential_ref"):
            return "cancelled after the station had taken the new credential, which stays"
        return (
            "cancelled; the station may hold the new credential, so both stay valid until it "
            "connects with one of them"
        )
