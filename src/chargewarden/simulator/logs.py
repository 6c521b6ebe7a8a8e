"""Log upload, station side (SIM-06; whitepaper N01, 2.0.1 N01), sans I/O.

GetLog (both versions, SecurityLog or DiagnosticsLog): answered Accepted with a file name, then
the log is rendered once, at the request, and handed to the runner as a `LogUpload` task; its
progress goes to the CSMS as LogStatusNotification with the request's requestId (N01.FR.07):
Uploading, then Uploaded or a failure status per attempt (TC_N_26: the request's `retries`,
`retryInterval` apart). A new GetLog during an upload cancels it (N01.FR.11, AcceptedCanceled).

What goes into a log is what the station already holds: the security log (whose entries never
carry a key or password: `StationCore.log_security_event`) and a short diagnostics report built
from `Diagnostics`, which keeps connection counts and recent reasons. Neither ever holds a URL.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.settings16 import as_handler
from chargewarden.simulator.tasks import LogUpload, TransferError, url_problem
from chargewarden.simulator.values import ocpp_timestamp

if TYPE_CHECKING:
    from chargewarden.simulator.core import Handler, Payload, SecurityLogEntry, StationCore

DEFAULT_RETRY_INTERVAL = 30  # seconds, when a request with retries gives no retryInterval
_RECENT = 10  # reasons the diagnostics report keeps
_FILENAME_MAX = 255  # GetLogResponse.filename maxLength
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")
_KINDS = {"SecurityLog": "security", "DiagnosticsLog": "diagnostics"}


class Diagnostics:
    """What the DiagnosticsLog reports besides the station's identity and state."""

    def __init__(self) -> None:
        self.connections_admitted = 0
        self.connections_failed = 0
        self.recent: deque[tuple[datetime, str]] = deque(maxlen=_RECENT)

    def note(self, now: datetime, text: str) -> None:
        """Remember a reason (reconnect, transfer failure); callers pass no secret or URL."""
        self.recent.append((now, " ".join(text.split())))


def security_log_text(
    entries: Iterable[SecurityLogEntry],
    oldest: datetime | None = None,
    latest: datetime | None = None,
) -> str:
    """One line per entry in [oldest, latest]: `<RFC 3339 UTC time> <type> <techInfo>`.
    Line breaks inside a techInfo become spaces, so one entry is always one line."""
    lines = []
    for entry in entries:
        if (oldest is not None and entry.time < oldest) or (
            latest is not None and entry.time > latest
        ):
            continue
        line = f"{ocpp_timestamp(entry.time)} {entry.type}"
        if entry.tech_info:
            line += " " + " ".join(entry.tech_info.split())
        lines.append(line)
    return "".join(f"{line}\n" for line in lines)


def diagnostics_text(core: StationCore, now: datetime) -> str:
    cfg, diagnostics = core.config, core.diagnostics
    lines = [
        f"ChargeWarden simulated station diagnostics, {ocpp_timestamp(now)}",
        f"identity: {cfg.identity}",
        f"ocpp version: {core.version.value}",
        f"vendor: {cfg.vendor}  model: {cfg.model}  serial number: {cfg.serial_number}",
        f"firmware version: {core.firmware_version}",
        f"security profile: {core.security_profile}",
        f"registration: {core.registration.value if core.registration else 'none'}",
        f"connections admitted: {diagnostics.connections_admitted}",
        f"connection attempts failed: {diagnostics.connections_failed}",
        f"security log entries: {len(core.security_log)}",
        "recent reasons:",
    ]
    lines += [f"  {ocpp_timestamp(t)} {text}" for t, text in diagnostics.recent] or ["  none"]
    return "".join(f"{line}\n" for line in lines)


def log_filename(identity: str, log_type: str, now: datetime) -> str:
    """`<identity>-security-<UTC time>.log`; characters unfit for a file name become "_"."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{_UNSAFE_IN_NAME.sub('_', identity)}-{_KINDS[log_type]}-{stamp}.log"
    return name[-_FILENAME_MAX:]


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass
class _Upload:
    request_id: int
    url: str
    filename: str
    content: bytes
    retries_left: int
    retry_interval: timedelta
    task_id: int | None = None
    due: datetime | None = None  # next attempt, after a failure


class LogUploads:
    def __init__(self, core: StationCore) -> None:
        self._core = core
        self._upload: _Upload | None = None
        self._tasks: list[LogUpload] = []
        self._cancelled: list[int] = []

    def handlers(self) -> dict[str, Handler]:
        return {"GetLog": as_handler(self.get_log)}

    @property
    def uploading(self) -> bool:
        return self._upload is not None

    # ---- requests from the CSMS ---------------------------------------------------------------

    def get_log(self, payload: Payload) -> Payload:
        core = self._core
        now = core.now()
        log_type: str = payload["logType"]
        parameters: Payload = payload["log"]
        try:
            oldest = _parse_time(parameters.get("oldestTimestamp"))
            latest = _parse_time(parameters.get("latestTimestamp"))
        except ValueError:
            return {"status": "Rejected"}
        if log_type == "SecurityLog":
            if not core.security_log:
                return {"status": "Rejected"}  # N01.FR.01: no log information (TC_N_34)
            text = security_log_text(core.security_log, oldest, latest)
        else:
            text = diagnostics_text(core, now)
        status = "Accepted"
        if self._upload is not None:
            self._cancel()
            status = "AcceptedCanceled"  # N01.FR.11
        interval = payload.get("retryInterval")
        upload = _Upload(
            request_id=payload["requestId"],
            url=parameters["remoteLocation"],
            filename=log_filename(core.config.identity, log_type, now),
            content=text.encode("utf-8"),
            retries_left=max(0, int(payload.get("retries", 0))),
            retry_interval=timedelta(
                seconds=DEFAULT_RETRY_INTERVAL if interval is None else max(0, int(interval))
            ),
        )
        self._upload = upload
        self._notify("Uploading")  # N01.FR.08
        self._start(now)
        return {"status": status, "filename": upload.filename}

    def trigger_status(self) -> None:
        """ExtendedTriggerMessage / TriggerMessage LogStatusNotification: Uploading with the
        requestId during an upload, else Idle without one (N01.FR.12, TC_F_15/16)."""
        if self._upload is None:
            self._core.queue_triggered("LogStatusNotification", {"status": "Idle"})
        else:
            payload = {"status": "Uploading", "requestId": self._upload.request_id}
            self._core.queue_triggered("LogStatusNotification", payload)

    # ---- what the runner drives ---------------------------------------------------------------

    def take_tasks(self) -> list[LogUpload]:
        tasks, self._tasks = self._tasks, []
        return tasks

    def take_cancelled(self) -> list[int]:
        cancelled, self._cancelled = self._cancelled, []
        return cancelled

    def next_deadline(self) -> datetime | None:
        return None if self._upload is None else self._upload.due

    def poll(self, now: datetime) -> None:
        upload = self._upload
        if upload is None or upload.due is None or now < upload.due:
            return
        upload.due = None
        self._notify("Uploading")
        self._start(now)

    def on_upload_result(self, task: LogUpload, error: TransferError | None) -> None:
        upload = self._upload
        if upload is None or task.task_id != upload.task_id:
            return  # a cancelled upload's late result
        now = self._core.now()
        upload.task_id = None
        if error is None:
            self._notify("Uploaded")  # N01.FR.09
            self._upload = None
            return
        self._core.diagnostics.note(now, f"log upload {upload.request_id} failed: {error.reason}")
        # N01.FR.10: as precise as possible.
        self._notify("PermissionDenied" if error.permission_denied else "UploadFailure")
        self._retry_or_end(now)

    # ---- steps --------------------------------------------------------------------------------

    def _start(self, now: datetime) -> None:
        upload = self._upload
        assert upload is not None
        problem = url_problem(
            upload.url, plain_http_allowed=not self._core.certificates.has_csms_root()
        )
        if problem is not None:
            self._core.diagnostics.note(now, f"log upload {upload.request_id}: {problem}")
            self._notify("NotSupportedOperation")
            self._upload = None  # retrying cannot help
            return
        upload.task_id = task_id = self._core.new_task_id()
        task = LogUpload(task_id, upload.request_id, upload.url, upload.filename, upload.content)
        self._tasks.append(task)

    def _retry_or_end(self, now: datetime) -> None:
        upload = self._upload
        assert upload is not None
        if upload.retries_left > 0:
            upload.retries_left -= 1
            upload.due = now + upload.retry_interval
        else:
            self._upload = None

    def _cancel(self) -> None:
        upload = self._upload
        assert upload is not None
        if upload.task_id is not None:
            # Not taken yet: never started; taken: the runner aborts it.
            self._tasks = [t for t in self._tasks if t.task_id != upload.task_id]
            self._cancelled.append(upload.task_id)
        if self._core.version is OcppVersion.V201:
            # 2.0.1 has the status (TC_N_36 step 7); 1.6's UploadLogStatusEnumType has not.
            self._notify("AcceptedCanceled")
        self._upload = None

    def _notify(self, status: str) -> None:
        upload = self._upload
        assert upload is not None
        payload = {"status": status, "requestId": upload.request_id}
        self._core.queue_call("LogStatusNotification", payload)
