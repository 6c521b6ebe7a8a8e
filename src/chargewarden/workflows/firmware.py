"""Signed firmware updates (FW-01/03, TC_080/081, TC_L_01..13): one durable job per station.

send → track, durable before the wire: the update row (its id is the OCPP requestId) and the
download token's digest are committed before SignedUpdateFirmware (1.6) / UpdateFirmware
(2.0.1) goes out. A restart during ``send`` sends again with the same requestId and a fresh
URL (the old one is expired): a station that got the first answers AcceptedCanceled and starts
over, which is what L01.FR.26 asks of it. ``track`` follows the station's status reports until
Installed, a failure status, or the deadline; security-relevant outcomes raise alerts.
"""

from __future__ import annotations

from datetime import timedelta

from chargewarden.domain.station_commands import CommandFailed, FailureKind, FirmwareRequest
from chargewarden.firmware.releases import FirmwareReleases
from chargewarden.pki.firmware import FirmwareRefused
from chargewarden.store.job_records import JobKind, JobRecord
from chargewarden.store.records import AlertSeverity
from chargewarden.store.transfer_records import (
    FirmwareUpdateRecord,
    FirmwareUpdateState,
    TransferPurpose,
)
from chargewarden.workflows.steps import Fail, Outcome, Succeed, Wait, WorkflowDeps

OPEN = [s for s in FirmwareUpdateState if s.open]
# Answers to the request that end the update on the station's side.
REFUSALS = {"Rejected", "InvalidCertificate", "RevokedCertificate"}
# Statuses that end it in failure; the first three are security findings (L01.FR.02/03).
FAILURES = {
    "InvalidSignature": AlertSeverity.CRITICAL,
    "InstallVerificationFailed": AlertSeverity.CRITICAL,
    "DownloadFailed": AlertSeverity.WARNING,
    "InstallationFailed": AlertSeverity.WARNING,
}
SECURITY_REFUSALS = {"InvalidCertificate", "RevokedCertificate"}
FAILURE_KINDS = {
    "InvalidSignature": "firmware.invalid_signature",
    "InstallVerificationFailed": "firmware.install_verification_failed",
}


class UpdateFirmware:
    kind = JobKind.UPDATE_FIRMWARE

    def __init__(self, deps: WorkflowDeps, releases: FirmwareReleases) -> None:
        self._deps = deps
        self._releases = releases

    def forget(self, job_id: int) -> None:
        return None

    async def _update(self, job: JobRecord) -> FirmwareUpdateRecord | None:
        return await self._deps.store.firmware_updates.get(int(job.params["update"]))

    async def step(self, job: JobRecord) -> Outcome:
        update = await self._update(job)
        if update is None or update.id is None:
            return Fail("the firmware update record is missing")
        if job.step == "send":
            return await self._send(update)
        if job.step == "track":
            return await self._track(update)
        return Fail(f"unknown step {job.step!r}")

    async def _fail(
        self,
        update: FirmwareUpdateRecord,
        reason: str,
        severity: AlertSeverity | None = None,
        kind: str = "firmware.update_failed",
        state: FirmwareUpdateState = FirmwareUpdateState.FAILED,
    ) -> Fail:
        assert update.id is not None
        await self._deps.store.firmware_updates.update(update.id, state=state, reason=reason)
        await self._expire(update)
        if severity is not None:
            await self._deps.alerts.raise_alert(
                severity,
                kind,
                f"firmware update {update.id} of station {update.station_identity}: {reason}",
                station=update.station_identity,
                details={"update": update.id, "release": update.release_id},
            )
        return Fail(reason)

    async def _expire(self, update: FirmwareUpdateRecord) -> None:
        assert update.id is not None
        await self._deps.store.file_tokens.expire(
            TransferPurpose.FIRMWARE_DOWNLOAD, update.id, self._deps.clock()
        )

    async def _send(self, update: FirmwareUpdateRecord) -> Outcome:
        assert update.id is not None
        identity = update.station_identity
        if self._deps.registry.get(identity) is None:
            return Wait("send", "station is offline; the update is sent when it connects")
        release = await self._deps.store.firmware_releases.get(update.release_id)
        if release is None:
            return await self._fail(update, "the release was deleted")
        try:
            await self._releases.check_before_sending(release, identity)
        except FirmwareRefused as exc:
            return await self._fail(
                update, f"not sent: {exc}", AlertSeverity.CRITICAL, "firmware.refused_by_csms"
            )
        links = self._deps.links
        if links is None:
            return await self._fail(update, "file transfer is off ([files] port)")
        now = self._deps.clock()
        retrieve_at = max(update.retrieve_at, now)
        ttl = timedelta(seconds=self._deps.files.download_ttl_seconds)
        await self._expire(update)
        token = await links.mint(
            TransferPurpose.FIRMWARE_DOWNLOAD, identity, update.id, retrieve_at + ttl
        )
        await self._deps.store.firmware_updates.update(update.id, state=FirmwareUpdateState.SENT)
        commands = self._deps.channel.commands(identity)
        command = commands.update_firmware(
            FirmwareRequest(
                request_id=update.id,
                location=links.firmware_url(token, release.filename),
                retrieve_at=retrieve_at,
                signing_certificate_pem=release.signing_certificate_pem,
                signature=release.signature,
                install_at=update.install_at,
                retries=update.retries,
                retry_interval=update.retry_interval,
            )
        )
        try:
            answer = await self._deps.channel.send(identity, command)
        except CommandFailed as exc:
            if exc.kind in (FailureKind.TIMEOUT, FailureKind.OFFLINE):
                return Wait("send", f"{exc}; sent again when the station is back")
            return await self._fail(update, str(exc), AlertSeverity.WARNING)
        status = str(answer.get("status", ""))
        store = self._deps.store.firmware_updates
        await store.record_status(update.id, f"answer:{status}", now, station_status=False)
        if status in REFUSALS:
            await store.update(update.id, response_status=status)
            security = status in SECURITY_REFUSALS
            return await self._fail(
                update,
                f"station answered {status}",
                AlertSeverity.CRITICAL if security else None,
                "firmware.signing_certificate_refused" if security else "firmware.update_failed",
                FirmwareUpdateState.REFUSED,
            )
        await store.update(update.id, state=FirmwareUpdateState.ACCEPTED, response_status=status)
        if status == "AcceptedCanceled":
            await self._cancel_replaced(update)
        deadline = retrieve_at + timedelta(seconds=self._deps.files.firmware_wait_seconds)
        return Wait(
            "track",
            f"station answered {status}; download from {retrieve_at:%Y-%m-%d %H:%M:%S} UTC",
            wake_at=deadline,
            deadline=deadline,
        )

    async def _cancel_replaced(self, update: FirmwareUpdateRecord) -> None:
        """AcceptedCanceled: the station dropped an earlier update of ours for this one."""
        store = self._deps.store.firmware_updates
        for other in await store.open_for_station(update.station_identity):
            if other.id is not None and other.id != update.id:
                await store.update(
                    other.id,
                    only_if=OPEN,
                    state=FirmwareUpdateState.CANCELLED,
                    reason=f"replaced on the station by update {update.id}",
                )
                await self._expire(other)

    async def _track(self, update: FirmwareUpdateRecord) -> Outcome:
        assert update.id is not None
        status = update.station_status
        if update.state is FirmwareUpdateState.CANCELLED:
            return Fail(update.reason or "cancelled")
        if status == "Installed":
            await self._deps.store.firmware_updates.update(
                update.id, state=FirmwareUpdateState.INSTALLED
            )
            await self._expire(update)
            return Succeed("station reports Installed")
        if status in FAILURES:
            kind = FAILURE_KINDS.get(status, "firmware.update_failed")
            return await self._fail(update, f"station reports {status}", FAILURES[status], kind)
        now = self._deps.clock()
        deadline = update.retrieve_at + timedelta(seconds=self._deps.files.firmware_wait_seconds)
        if now >= deadline:
            return await self._fail(
                update,
                f"no Installed by {deadline:%Y-%m-%d %H:%M} UTC (last status: {status or 'none'})",
                AlertSeverity.WARNING,
                "firmware.update_overdue",
            )
        return Wait("track", f"station reports {status or 'nothing yet'}", wake_at=deadline)

    async def cancel(self, job: JobRecord) -> str:
        update = await self._update(job)
        if update is None or update.id is None:
            return "cancelled"
        await self._deps.store.firmware_updates.update(
            update.id, only_if=OPEN, state=FirmwareUpdateState.CANCELLED, reason="cancelled"
        )
        await self._expire(update)
        if update.state is FirmwareUpdateState.PENDING:
            return "cancelled before the update was sent"
        # OCPP has no "cancel update"; the station may still install what it downloaded.
        return "cancelled; the download link is withdrawn (a station may finish what it has)"
