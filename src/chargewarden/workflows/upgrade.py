"""Security-profile upgrades 1→2→3 (UPG-01, UPG-02), durable and safe against restarts.

Per stage (the next profile up): install-root → [certificate, for 3] → set-pending → plan →
configure:N (2.0.1 SetNetworkProfile, NetworkConfigurationPriority) → switch → switching (the
call that makes the station reconnect: 1.6 ChangeConfiguration(SecurityProfile), 2.0.1 Reset) →
await-reconnect. The station's pending profile is stored before the switch, so it is let in on
either profile until its first connection on the new one commits the upgrade (the gateway does
that, SEC-11); from then on the lower profile is refused. A station that does not come back on
the new profile is reported; cancelling withdraws the pending profile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from chargewarden.domain.station_commands import (
    Command,
    CommandFailed,
    FailureKind,
    ProfilePlan,
)
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.job_records import JobKind, JobRecord
from chargewarden.store.records import AlertSeverity, StationRecord
from chargewarden.workflows.steps import Advance, Fail, Outcome, Succeed, Wait, WorkflowDeps
from chargewarden.workflows.upgrade_prerequisites import (
    install_csms_roots,
    offline,
    station_certificate,
)

_POSITIVE = {"Accepted", "RebootRequired", "Scheduled"}


def choose_slot(in_use: list[int], requested: int | None) -> int:
    if requested is not None:
        return requested
    slot = 1
    while slot in in_use:
        slot += 1
    return slot


class UpgradeProfile:
    kind = JobKind.UPGRADE_PROFILE

    def __init__(self, deps: WorkflowDeps) -> None:
        self._deps = deps
        # Jobs whose switching call this process is about to send (see _switching).
        self._switching: set[int] = set()

    def forget(self, job_id: int) -> None:
        self._switching.discard(job_id)

    @property
    def _max_switches(self) -> int:
        return self._deps.settings.max_attempts

    def _online(self, identity: str) -> bool:
        return self._deps.registry.get(identity) is not None

    @staticmethod
    def _offline(step: str, stage: int) -> Wait:
        return offline(step, stage)

    async def step(self, job: JobRecord) -> Outcome:
        assert job.station_identity is not None
        station = await self._deps.store.stations.get(job.station_identity)
        if station is None:
            return Fail("the station was deleted")
        name = job.step.split(":", 1)[0]
        handler = {
            "start": self._start,
            "install-root": self._install_root,
            "certificate": self._certificate,
            "set-pending": self._set_pending,
            "plan": self._plan,
            "configure": self._configure,
            "switch": self._switch,
            "switching": self._switching_call,
            "await-reconnect": self._await_reconnect,
        }.get(name)
        if handler is None:
            return Fail(f"unknown step {job.step!r}")
        return await handler(job, station)

    def _target(self, job: JobRecord) -> int:
        return int(job.params["to"])

    def _stage(self, job: JobRecord) -> int:
        return int(job.context["stage"])

    async def _start(self, job: JobRecord, station: StationRecord) -> Outcome:
        target = self._target(job)
        current = station.security_profile
        if current >= target:
            return Succeed(f"station is already on security profile {current}")
        if current < 1:
            return Fail(
                "a profile-0 station has no credentials to upgrade from; use profile 1 first"
            )
        if self._deps.csms_roots() is None or self._deps.wss_url() is None:
            return Fail("the CSMS has no TLS listener, so there is no profile 2 or 3 to upgrade to")
        if target == 3 and self._deps.signing is None:
            return Fail("the CSMS cannot sign station certificates (no built-in CA)")
        return Advance(
            self._first_step(current + 1),
            f"upgrading from profile {current} to {target}",
            {"from": current, "stage": current + 1},
        )

    @staticmethod
    def _first_step(stage: int) -> str:
        # A profile-2 station already trusts our server certificate; profile 3 needs its own.
        return "install-root" if stage == 2 else "certificate"

    async def _install_root(self, job: JobRecord, station: StationRecord) -> Outcome:
        return await install_csms_roots(self._deps, job, station, self._stage(job))

    async def _certificate(self, job: JobRecord, station: StationRecord) -> Outcome:
        return await station_certificate(self._deps, job, station, self._stage(job))

    async def _set_pending(self, job: JobRecord, station: StationRecord) -> Outcome:
        stage = self._stage(job)
        # Durable before the wire: the station may connect on the new profile from now on.
        await self._deps.store.stations.update(station.identity, pending_profile=stage)
        return Advance("plan", f"profile {stage} accepted as pending for this station")

    async def _plan(self, job: JobRecord, station: StationRecord) -> Outcome:
        stage = self._stage(job)
        if not self._online(station.identity):
            return self._offline(job.step, stage)
        commands = self._deps.channel.commands(station.identity)
        query = commands.priority_query()
        context: dict[str, object] = {}
        if query is not None:
            try:
                answer = await self._deps.channel.send(station.identity, query)
            except CommandFailed as exc:
                if exc.kind is FailureKind.OFFLINE:
                    return self._offline(job.step, stage)
                return await self._abandon(job, station, f"reading the network slots failed: {exc}")
            in_use = commands.slots_in_use(answer)
            requested = job.params.get("slot")
            if not in_use and requested is None:
                return await self._abandon(
                    job,
                    station,
                    "station does not report OCPPCommCtrlr.NetworkConfigurationPriority; "
                    "give the network slot to use",
                )
            context = {"slot": choose_slot(in_use, requested), "priority": in_use}
        first = "configure:0" if len(self._commands(job, station, context)) > 1 else "switch"
        return Advance(first, "network slot chosen" if context else "ready to switch", context)

    def _commands(
        self, job: JobRecord, station: StationRecord, extra: Mapping[str, Any] | None = None
    ) -> list[Command]:
        context = {**job.context, **(extra or {})}
        plan = ProfilePlan(
            csms_url=self._deps.wss_url() or "",
            slot=int(context.get("slot") or 0),
            priority=tuple(int(slot) for slot in context.get("priority") or ()),
            message_timeout=self._deps.settings.message_timeout,
            interface=self._deps.settings.network_interface,
        )
        commands = self._deps.channel.commands(station.identity)
        return commands.profile_change(self._stage(job), plan)

    async def _configure(self, job: JobRecord, station: StationRecord) -> Outcome:
        stage = self._stage(job)
        index = int(job.step.split(":", 1)[1])
        if not self._online(station.identity):
            return self._offline(job.step, stage)
        commands = self._commands(job, station)
        command = commands[index]
        try:
            answer = await self._deps.channel.send(station.identity, command)
        except CommandFailed as exc:
            if exc.kind is FailureKind.OFFLINE:
                return self._offline(job.step, stage)
            return await self._abandon(job, station, f"{command.action} failed: {exc}")
        status = self._deps.channel.commands(station.identity).change_status(command, answer)
        if status not in _POSITIVE:
            return await self._abandon(
                job, station, f"station answered {command.action} with {status}"
            )
        following = f"configure:{index + 1}" if index + 2 < len(commands) else "switch"
        # From here a reboot would try the new profile first: a withdrawal must undo that.
        changed = {"priority_changed": True} if command.action == "SetVariables" else {}
        return Advance(following, f"{command.action}: {status}", changed)

    async def _switch(self, job: JobRecord, station: StationRecord) -> Outcome:
        assert job.id is not None
        stage = self._stage(job)
        if not self._online(station.identity):
            return self._offline(job.step, stage)
        self._switching.add(job.id)
        # Persisted before the call: after a restart its answer is unknown, and the station's
        # next connection tells whether it switched.
        return Advance(
            "switching",
            f"telling the station to reconnect on profile {stage}",
            {"switched_at": self._deps.clock().isoformat()},
        )

    async def _switching_call(self, job: JobRecord, station: StationRecord) -> Outcome:
        assert job.id is not None
        stage = self._stage(job)
        reconnect = self._reconnect_wait(stage)
        if job.id not in self._switching:
            return Advance(
                "await-reconnect",
                "CSMS restarted during the switch; the station's next connection shows whether "
                "it switched",
                reconnect | {"switch_unknown": True},
            )
        self._switching.discard(job.id)
        command = self._commands(job, station)[-1]
        try:
            answer = await self._deps.channel.send(station.identity, command)
        except CommandFailed as exc:
            if exc.kind in (FailureKind.OFFLINE, FailureKind.TIMEOUT):
                return Advance(
                    "await-reconnect", f"{exc}; waiting to see how it reconnects", reconnect
                )
            return await self._abandon(job, station, f"{command.action} failed: {exc}")
        status = self._deps.channel.commands(station.identity).change_status(command, answer)
        if status not in _POSITIVE:
            return await self._abandon(
                job, station, f"station answered {command.action} with {status}"
            )
        return Advance("await-reconnect", f"{command.action}: {status}", reconnect)

    def _reconnect_wait(self, stage: int) -> dict[str, object]:
        deadline = self._deps.clock() + timedelta(
            seconds=self._deps.settings.reconnect_wait_seconds
        )
        return {"reconnect_deadline": deadline.isoformat(), "reported": False}

    async def _await_reconnect(self, job: JobRecord, station: StationRecord) -> Outcome:
        stage = self._stage(job)
        if station.security_profile >= stage:
            if stage < self._target(job):
                return Advance(
                    self._first_step(stage + 1),
                    f"station is on profile {stage}; profile {stage - 1} is refused from now on",
                    {
                        "stage": stage + 1,
                        "request_id": None,
                        "slot": None,
                        "priority": None,
                        "priority_changed": False,
                    },
                )
            return Succeed(f"station is on profile {stage}; lower profiles are refused from now on")
        if station.pending_profile != stage:
            return Fail(f"profile {stage} is no longer pending for this station")
        link = self._deps.registry.get(station.identity)
        switched_at = datetime.fromisoformat(job.context["switched_at"])
        back_on_old = (
            link is not None
            and link.info.connected_since > switched_at
            and link.info.security_profile < stage
        )
        switches = int(job.context.get("switches", 1))
        if back_on_old and job.context.get("switch_unknown") and switches < self._max_switches:
            # Our restart cut the switch short: the station never acted on it. Tell it again.
            return Advance(
                "switch",
                f"station is back on profile {station.security_profile} and did not switch; "
                "telling it again",
                {"switch_unknown": False, "switches": switches + 1},
            )
        if back_on_old:
            assert link is not None
            # A05.FR.08: it could not connect on the new profile and fell back.
            reason = (
                f"station reconnected on profile {link.info.security_profile} instead of {stage}: "
                "it could not connect on the new profile and fell back"
            )
            await self._alert("upgrade.fell_back", station, reason)
            return await self._abandon(job, station, reason)
        deadline = datetime.fromisoformat(job.context["reconnect_deadline"])
        now = self._deps.clock()
        if now < deadline:
            return Wait(
                "await-reconnect",
                f"waiting for the station to reconnect on profile {stage}",
                wake_at=deadline,
            )
        reason = (
            f"station has not reconnected on profile {stage}; it is still let in on profile "
            f"{station.security_profile}. Cancel the job to withdraw profile {stage}"
        )
        if not job.context.get("reported"):
            await self._alert("upgrade.overdue", station, reason)
        return Wait("await-reconnect", reason, context={"reported": True})

    async def _alert(self, kind: str, station: StationRecord, message: str) -> None:
        await self._deps.alerts.raise_alert(
            AlertSeverity.WARNING, kind, message, station=station.identity
        )

    async def _withdraw(self, job: JobRecord, station: StationRecord) -> bool:
        stage = job.context.get("stage")
        if stage is None or station.pending_profile != stage or station.security_profile >= stage:
            return False
        await self._deps.store.stations.update(station.identity, pending_profile=None)
        await self._restore_priority(job, station)
        return True

    async def _restore_priority(self, job: JobRecord, station: StationRecord) -> None:
        # Best effort: put the old slots first again so a reboot does not try the new profile.
        priority = job.context.get("priority")
        if (
            station.ocpp_version is not OcppVersion.V201
            or not job.context.get("priority_changed")
            or not priority
            or not self._online(station.identity)
        ):
            return
        restore = self._commands(job, station, {"slot": priority[0], "priority": priority})[1]
        with contextlib.suppress(CommandFailed):
            await self._deps.channel.send(station.identity, restore)

    async def _abandon(self, job: JobRecord, station: StationRecord, reason: str) -> Outcome:
        withdrawn = await self._withdraw(job, station)
        stays = f"; it stays on profile {station.security_profile}" if withdrawn else ""
        return Fail(reason + stays)

    async def cancel(self, job: JobRecord) -> str:
        assert job.station_identity is not None
        station = await self._deps.store.stations.get(job.station_identity)
        if station is None:
            return "cancelled; the station no longer exists"
        if await self._withdraw(job, station):
            return (
                f"cancelled; profile {job.context.get('stage')} withdrawn, the station is let "
                f"in on profile {station.security_profile} only (no downgrade is sent over OCPP)"
            )
        return f"cancelled; the station stays on profile {station.security_profile}"
