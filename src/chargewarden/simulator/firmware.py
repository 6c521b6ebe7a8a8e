"""Signed firmware updates, station side (SIM-05; whitepaper L01, 2.0.1 L01), sans I/O.

1.6 SignedUpdateFirmware / 2.0.1 UpdateFirmware: the signing certificate is checked against
the installed ManufacturerRootCertificate(s) before the request is accepted (L01.FR.23/24); an
accepted update downloads at retrieveDateTime (a `FirmwareDownload` task the runner performs),
checks the signature over the whole file, installs at installDateTime, reboots and reports the
new firmwareVersion in its BootNotification. Every state goes to the CSMS as a
(Signed)FirmwareStatusNotification with the request's requestId (L01.FR.01/10), queued like any
station call (store and forward, sent after an Accepted boot). Time comes from the core's
clock; timed steps (scheduled download or install, retry) run from `poll(now)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum, auto
from typing import TYPE_CHECKING

from cryptography import x509

from chargewarden.rpc.errors import ErrorKind, RpcError
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.firmwarecheck import (
    check_signing_certificate,
    signature_problem,
    version_from_location,
)
from chargewarden.simulator.rootstore import RootType
from chargewarden.simulator.settings16 import as_handler
from chargewarden.simulator.statedir import StateDir
from chargewarden.simulator.tasks import FirmwareDownload, TransferError, url_problem

if TYPE_CHECKING:
    from chargewarden.simulator.core import Handler, Payload, StationCore

STATE_FILE = "firmware-state.json"
DEFAULT_RETRY_INTERVAL = 30  # seconds, when a request with retries gives no retryInterval
# A reboot waits for the InstallRebooting notification to be answered (so the CSMS hears of
# it before the connection drops), but no longer than this: a CSMS that never answers must
# not keep the station from activating its firmware.
REBOOT_GRACE = timedelta(seconds=10)
INVALID_CERTIFICATE_EVENT = "InvalidFirmwareSigningCertificate"
INVALID_SIGNATURE_EVENT = "InvalidFirmwareSignature"


class Phase(Enum):
    IDLE = auto()
    DOWNLOAD_SCHEDULED = auto()  # waiting for retrieveDateTime
    DOWNLOADING = auto()  # a FirmwareDownload task is out
    RETRY_WAIT = auto()  # a download failed; the next attempt is due at `due`
    INSTALL_SCHEDULED = auto()  # verified; waiting for installDateTime
    REBOOTING = auto()  # InstallRebooting queued; reboot when delivered (or at `due`)
    ACTIVATING = auto()  # rebooted into the new firmware; Installed goes out on boot

    @property
    def cancellable(self) -> bool:
        # Once installing has begun the old image is gone: L01.FR.27 allows Rejected then.
        return self in _CANCELLABLE


_CANCELLABLE = frozenset(
    {Phase.DOWNLOAD_SCHEDULED, Phase.DOWNLOADING, Phase.RETRY_WAIT, Phase.INSTALL_SCHEDULED}
)


@dataclass
class _Update:
    request_id: int
    location: str
    retrieve_at: datetime
    install_at: datetime | None
    signature: str
    signer: x509.Certificate
    retries_left: int
    retry_interval: timedelta
    phase: Phase = Phase.IDLE
    due: datetime | None = None
    task_id: int | None = None


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    # RFC 3339 requires an offset; a CSMS that leaves it out means UTC, as OCPP times are.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class FirmwareUpdates:
    def __init__(self, core: StationCore) -> None:
        self._core = core
        self._version = core.version
        self._state = StateDir(core.config.state_dir) if core.config.state_dir else None
        # The firmwareVersion the station runs: the provisioned one until an install.
        self.version = core.config.firmware_version
        self._update: _Update | None = None
        self._pending_installed: int | None = None  # requestId whose Installed is still due
        self._last_status: tuple[str, int | None] | None = None
        self._tasks: list[FirmwareDownload] = []
        self._cancelled: list[int] = []
        self._load()

    @property
    def status_action(self) -> str:
        if self._version is OcppVersion.V16:
            return "SignedFirmwareStatusNotification"
        return "FirmwareStatusNotification"

    @property
    def phase(self) -> Phase:
        if self._pending_installed is not None:
            return Phase.ACTIVATING
        return Phase.IDLE if self._update is None else self._update.phase

    def handlers(self) -> dict[str, Handler]:
        if self._version is OcppVersion.V16:
            return {
                "SignedUpdateFirmware": as_handler(self.update_firmware),
                "UpdateFirmware": as_handler(self.unsigned_update_firmware_16),
            }
        return {"UpdateFirmware": as_handler(self.update_firmware)}

    # ---- requests from the CSMS ---------------------------------------------------------------

    def unsigned_update_firmware_16(self, payload: Payload) -> Payload:
        """L01.FR.20: a station with the security extensions refuses the unsigned 1.6 message
        with a CALLERROR and starts nothing."""
        del payload
        raise RpcError(ErrorKind.NOT_SUPPORTED, "only SignedUpdateFirmware is supported")

    def update_firmware(self, payload: Payload) -> Payload:
        core = self._core
        now = core.now()
        firmware: Payload = payload["firmware"]
        # L01.FR.23/24: the certificate first, before anything else, even a cancellation.
        check = check_signing_certificate(
            firmware.get("signingCertificate"), core.certificates.roots(RootType.MANUFACTURER), now
        )
        if check.signer is None:
            # L01.FR.02 asks for the event in both versions, critical or not (1.6).
            core.record_security_event(INVALID_CERTIFICATE_EVENT, now, check.problem, push=True)
            return {"status": "InvalidCertificate"}
        if not firmware.get("signature"):
            # 2.0.1 makes the signature optional (L02, unsigned updates): this station installs
            # signed firmware only (SIM-05), and says so before downloading anything.
            core.log_security_event(INVALID_SIGNATURE_EVENT, now, "unsigned firmware refused")
            return {
                "status": "Rejected",
                "statusInfo": {"reasonCode": "MissingSignature"},
            }
        if self.phase in (Phase.REBOOTING, Phase.ACTIVATING):
            return {"status": "Rejected"}  # L01.FR.27: the installation cannot be undone
        try:
            retrieve_at = _parse_time(firmware["retrieveDateTime"]) or now
            install_at = _parse_time(firmware.get("installDateTime"))
        except ValueError:
            return {"status": "Rejected"}  # before cancelling anything
        status = "Accepted"
        if self._update is not None and self._update.phase.cancellable:
            self._cancel()
            status = "AcceptedCanceled"  # L01.FR.26
        interval = payload.get("retryInterval")
        update = _Update(
            request_id=payload["requestId"],
            location=firmware["location"],
            retrieve_at=retrieve_at,
            install_at=install_at,
            signature=firmware["signature"],
            signer=check.signer,
            retries_left=max(0, int(payload.get("retries", 0))),
            retry_interval=timedelta(
                seconds=DEFAULT_RETRY_INTERVAL if interval is None else max(0, int(interval))
            ),
        )
        self._update = update
        if update.retrieve_at > now:
            update.phase, update.due = Phase.DOWNLOAD_SCHEDULED, update.retrieve_at
            self._notify("DownloadScheduled")  # L01.FR.13
        else:
            self._start_download(now)
        return {"status": status}

    def trigger_status(self) -> None:
        """L01.FR.28/29: the last status again, or Idle once the last one was Installed (or
        there was none). Idle carries no requestId (L01.FR.21)."""
        last = self._last_status
        if last is None or last[0] == "Installed":
            payload: Payload = {"status": "Idle"}
        else:
            payload = {"status": last[0]}
            if last[1] is not None:
                payload["requestId"] = last[1]
        self._core.queue_triggered(self.status_action, payload)

    # ---- what the runner drives ---------------------------------------------------------------

    def take_tasks(self) -> list[FirmwareDownload]:
        tasks, self._tasks = self._tasks, []
        return tasks

    def take_cancelled(self) -> list[int]:
        cancelled, self._cancelled = self._cancelled, []
        return cancelled

    def next_deadline(self) -> datetime | None:
        return None if self._update is None else self._update.due

    def poll(self, now: datetime) -> None:
        update = self._update
        if update is None or update.due is None or now < update.due:
            return
        update.due = None
        if update.phase in (Phase.DOWNLOAD_SCHEDULED, Phase.RETRY_WAIT):
            self._start_download(now)
        elif update.phase is Phase.INSTALL_SCHEDULED:
            self._install(now)
        elif update.phase is Phase.REBOOTING:
            self._reboot(now)

    def on_download_result(self, task: FirmwareDownload, result: bytes | TransferError) -> None:
        update = self._update
        if update is None or task.task_id != update.task_id:
            return  # a cancelled update's late result
        now = self._core.now()
        update.task_id = None
        if isinstance(result, TransferError):
            self._download_failed(now, result.reason)
            return
        self._notify("Downloaded")
        problem = signature_problem(result, update.signature, update.signer)
        if problem is not None:
            self._notify("InvalidSignature")
            # L01.FR.03 in both versions, critical or not (1.6).
            self._core.record_security_event(INVALID_SIGNATURE_EVENT, now, problem, push=True)
            self._update = None
            return
        self._notify("SignatureVerified")
        if update.install_at is not None and update.install_at > now:
            update.phase, update.due = Phase.INSTALL_SCHEDULED, update.install_at
            self._notify("InstallScheduled")  # L01.FR.16
        else:
            self._install(now)

    def on_status_delivered(self, request: Payload) -> None:
        """The CSMS answered a status notification: after InstallRebooting, reboot now."""
        update = self._update
        if (
            update is not None
            and update.phase is Phase.REBOOTING
            and request.get("status") == "InstallRebooting"
            and request.get("requestId") == update.request_id
        ):
            self._reboot(self._core.now())

    def on_boot_accepted(self, now: datetime) -> None:
        """Booted into the new firmware: report Installed and raise FirmwareUpdated (2.0.1
        TC_L_01 steps 18-20)."""
        request_id = self._pending_installed
        if request_id is None:
            return
        self._pending_installed = None
        self._save()
        self._notify("Installed", request_id)
        self._core.record_security_event(
            "FirmwareUpdated", now, f"firmware {self.version} installed (request {request_id})"
        )

    # ---- steps --------------------------------------------------------------------------------

    def _start_download(self, now: datetime) -> None:
        update = self._update
        assert update is not None
        problem = url_problem(
            update.location, plain_http_allowed=not self._core.certificates.has_csms_root()
        )
        if problem is not None:
            # It will not get better by retrying.
            update.retries_left = 0
            self._download_failed(now, problem)
            return
        update.phase = Phase.DOWNLOADING
        self._notify("Downloading")
        if self._core.config.firmware_fault == "download-fails":
            self._download_failed(now, "simulated download failure (firmware_fault)")
            return
        update.task_id = self._core.new_task_id()
        self._tasks.append(FirmwareDownload(update.task_id, update.request_id, update.location))

    def _download_failed(self, now: datetime, reason: str) -> None:
        update = self._update
        assert update is not None
        # Not a security event: the status tells the CSMS, the DiagnosticsLog tells why.
        self._core.diagnostics.note(now, f"firmware download {update.request_id} failed: {reason}")
        if update.retries_left > 0:
            update.retries_left -= 1
            update.phase, update.due = Phase.RETRY_WAIT, now + update.retry_interval
            return
        self._notify("DownloadFailed")
        self._update = None

    def _install(self, now: datetime) -> None:
        update = self._update
        assert update is not None
        self._notify("Installing")
        if self._core.config.firmware_fault == "install-fails":
            self._notify("InstallationFailed")
            self._update = None
            return
        # The simulator always reboots to activate (L01.FR.15: say so first).
        update.phase, update.due = Phase.REBOOTING, now + REBOOT_GRACE
        self._notify("InstallRebooting")

    def _reboot(self, now: datetime) -> None:
        update = self._update
        assert update is not None
        self._update = None
        self.version = version_from_location(update.location, self.version)
        self._pending_installed = update.request_id
        self._save()  # the new firmware and the Installed still due survive a restart
        self._core.reboot("FirmwareUpdate", f"reboot to activate firmware {self.version}")

    def _cancel(self) -> None:
        update = self._update
        assert update is not None
        if update.task_id is not None:
            # Not taken yet: never started; taken: the runner aborts it.
            self._tasks = [t for t in self._tasks if t.task_id != update.task_id]
            self._cancelled.append(update.task_id)
        self._update = None

    def _notify(self, status: str, request_id: int | None = None) -> None:
        if request_id is None:
            assert self._update is not None
            request_id = self._update.request_id
        self._last_status = (status, request_id)
        self._core.queue_call(self.status_action, {"status": status, "requestId": request_id})

    # ---- state directory ------------------------------------------------------------------------

    def _save(self) -> None:
        if self._state is None:
            return
        data = {"firmware_version": self.version, "pending_installed": self._pending_installed}
        self._state.write(STATE_FILE, (json.dumps(data, sort_keys=True) + "\n").encode())

    def _load(self) -> None:
        raw = None if self._state is None else self._state.read(STATE_FILE)
        if raw is None:
            return
        try:
            data = json.loads(raw)
            version = data["firmware_version"]
            pending = data.get("pending_installed")
            if not isinstance(version, str) or not isinstance(pending, int | None):
                raise ValueError("wrong types")
        except (ValueError, KeyError, TypeError):
            # Not worth refusing to start over: the station falls back to its factory version.
            return
        self.version = version[:50]
        self._pending_installed = pending
