"""The FetchLog workflow: one GetLog and the upload it asks for (LOG-01; whitepaper N01).

send → awaiting-answer → upload:
* send: mint a single-use upload link (its digest stored, the log request marked sent) before
  GetLog goes out. Any link an earlier attempt minted ends here: one live link per request.
* awaiting-answer: GetLog with the link. The link itself lives only in this process's memory
  and in the URL, so a CSMS restart (or a lost answer) before the station's answer goes back to
  send: a new link, the same requestId (a station uploading for it cancels that upload and
  starts over, N01.FR.11).
* upload: the station's statuses (`on_status`) and the stored file (`on_log_stored`) poke the
  job; it succeeds once the file is stored, fails on a failure status or when overdue.

The request row is moved by this workflow alone (and by a cancel); statuses only append to its
history. So two reports racing cannot move a request backwards.
"""

from __future__ import annotations

import logging

from chargewarden.domain.station_commands import CommandFailed, FailureKind, LogRequest
from chargewarden.store.job_records import JobKind, JobRecord
from chargewarden.store.records import AlertSeverity
from chargewarden.store.transfer_records import (
    LogRequestRecord,
    LogRequestState,
    TransferPurpose,
)
from chargewarden.transfer.tokens import expiry
from chargewarden.workflows.steps import Advance, Fail, Outcome, Succeed, Wait, WorkflowDeps

log = logging.getLogger(__name__)

PURPOSE = TransferPurpose.LOG_UPLOAD
OPEN = (LogRequestState.PENDING, LogRequestState.SENT, LogRequestState.ACCEPTED)
ACCEPTED_ANSWERS = ("Accepted", "AcceptedCanceled")
# N01.FR.10; "UploadFailed" is how the 1.6 whitepaper text (and DiagnosticsStatus) spells it.
FAILURE_STATUSES = frozenset(
    {"UploadFailure", "UploadFailed", "BadMessage", "PermissionDenied", "NotSupportedOperation"}
)
# A LogStatusNotification AcceptedCanceled for a request: the station dropped its upload for a
# newer GetLog (TC_N_36), so that file will not come.
CANCELLED_BY_STATION = "AcceptedCanceled"
_WAITING = {
    "Uploading": "station is uploading",
    "Uploaded": "station reported Uploaded, but no file has arrived yet",
}


def log_words(log_type: str) -> str:
    """'security log' / 'diagnostics log', for messages."""
    return "security log" if log_type == "SecurityLog" else "diagnostics log"


def request_id_of(job: JobRecord) -> int:
    return int(job.params["request_id"])


class FetchLog:
    kind = JobKind.FETCH_LOG

    def __init__(self, deps: WorkflowDeps) -> None:
        self._deps = deps
        # job id → the upload token on its way to the station; never persisted, never logged.
        self._tokens: dict[int, str] = {}

    def forget(self, job_id: int) -> None:
        self._tokens.pop(job_id, None)

    def _online(self, identity: str) -> bool:
        return self._deps.registry.get(identity) is not None

    async def step(self, job: JobRecord) -> Outcome:
        request = await self._deps.store.log_requests.get(request_id_of(job))
        if request is None:
            return Fail(f"log request {request_id_of(job)} no longer exists")
        handler = {
            "send": self._send,
            "awaiting-answer": self._awaiting_answer,
            "upload": self._upload,
        }.get(job.step)
        if handler is None:
            return Fail(f"unknown step {job.step!r}")
        return await handler(job, request)

    # --- steps ------------------------------------------------------------------------------

    async def _send(self, job: JobRecord, request: LogRequestRecord) -> Outcome:
        assert job.id is not None and request.id is not None
        if request.state not in (LogRequestState.PENDING, LogRequestState.SENT):
            return self._answer_recorded(request)
        links = self._deps.links
        if links is None:
            return await self._failed(request, "file transfer is off on this CSMS ([files] port)")
        if not self._online(request.station_identity):
            return Wait("send", "station is offline; GetLog goes out when it connects")
        sends = int(job.context.get("sends", 0))
        if sends >= self._deps.settings.max_attempts:
            return await self._failed(
                request, f"gave up after sending GetLog {sends} times without an answer"
            )
        now = self._deps.clock()
        store = self._deps.store
        await store.file_tokens.expire(PURPOSE, request.id, now)
        expires = expiry(now, self._deps.files.upload_ttl_seconds)
        # Durable before the wire: the link works (and the upload is let in) before the station
        # can know it; the job id is on the request before any status can ask for it.
        token = await links.mint(PURPOSE, request.station_identity, request.id, expires)
        await store.log_requests.update(
            request.id,
            only_if=(LogRequestState.PENDING, LogRequestState.SENT),
            state=LogRequestState.SENT,
            job_id=job.id,
        )
        self._tokens[job.id] = token
        return Advance(
            "awaiting-answer",
            f"upload link ready (valid until {expires:%Y-%m-%d %H:%M:%S} UTC); sending GetLog"
            + (" again, same requestId" if sends else ""),
            {"sends": sends + 1},
        )

    async def _awaiting_answer(self, job: JobRecord, request: LogRequestRecord) -> Outcome:
        assert job.id is not None and request.id is not None
        token = self._tokens.pop(job.id, None)
        if request.state is not LogRequestState.SENT:
            return self._answer_recorded(request)
        if token is None:
            return Advance(
                "send", "CSMS restarted before the station answered GetLog; sending it again"
            )
        identity = request.station_identity
        if not self._online(identity) or self._deps.links is None:
            return Wait("send", "station went offline before GetLog went out; a new link is sent")
        channel = self._deps.channel
        try:
            commands = channel.commands(identity)
            command = commands.get_log(
                LogRequest(
                    request_id=request.id,
                    log_type=str(request.log_type),
                    remote_location=self._deps.links.log_url(token),
                    oldest=request.since,
                    latest=request.until,
                )
            )
            answer = await channel.send(identity, command)
        except CommandFailed as exc:
            if exc.kind in (FailureKind.TIMEOUT, FailureKind.OFFLINE):
                # The station may have it: a new link and the same requestId go out next.
                return Advance("send", f"{exc}; GetLog goes out again with a new link")
            unknown = exc.kind is FailureKind.CALL_ERROR and "NotImplemented" in str(exc)
            hint = " (a 1.6 station without the security whitepaper has no GetLog)"
            return await self._failed(request, f"{exc}{hint if unknown else ''}", status=None)
        return await self._answered(job, request, answer)

    def _answer_recorded(self, request: LogRequestRecord) -> Outcome:
        """A step run again after the answer was stored (a restart right after it)."""
        if request.state is LogRequestState.ACCEPTED:
            deadline = expiry(self._deps.clock(), self._deps.files.log_wait_seconds)
            return Wait(
                "upload",
                f"station accepted GetLog ({request.response_status}); waiting for the upload",
                wake_at=deadline,
                deadline=deadline,
            )
        return Fail(
            f"log request {request.id} is {request.state}"
            + (f": {request.reason}" if request.reason else "")
        )

    async def _answered(
        self, job: JobRecord, request: LogRequestRecord, answer: dict[str, object]
    ) -> Outcome:
        assert request.id is not None
        status = str(answer.get("status") or "")
        filename = answer.get("filename")
        name = str(filename)[:255] if isinstance(filename, str) and filename else None
        now = self._deps.clock()
        log_requests = self._deps.store.log_requests
        if status not in ACCEPTED_ANSWERS:
            await log_requests.record_status(
                request.id,
                f"GetLog {status or 'no status'}",
                now,
                station_status=False,
                only_if=OPEN,
                state=LogRequestState.REFUSED,
                response_status=status or None,
                reason=f"station answered GetLog {status or 'without a status'}",
            )
            await self._deps.store.file_tokens.expire(PURPOSE, request.id, now)
            return Fail(
                f"station answered GetLog {status or 'without a status'}: it will not upload its "
                f"{log_words(request.log_type)}"
            )
        await log_requests.record_status(
            request.id,
            f"GetLog {status}",
            now,
            station_status=False,
            only_if=OPEN,
            state=LogRequestState.ACCEPTED,
            response_status=status,
            station_filename=name,
        )
        deadline = expiry(now, self._deps.files.log_wait_seconds)
        note = (
            " (and cancelled an upload it had under way, N01.FR.11)"
            if status == "AcceptedCanceled"
            else ""
        )
        return Wait(
            "upload",
            f"station accepted GetLog{note}; waiting for the upload"
            + (f" of {name}" if name else ""),
            wake_at=deadline,
            deadline=deadline,
        )

    async def _upload(self, job: JobRecord, request: LogRequestRecord) -> Outcome:
        assert request.id is not None
        words = log_words(request.log_type)
        if request.state is LogRequestState.UPLOADED or (
            request.state.open and request.stored_path is not None
        ):
            return await self._stored(request)
        if not request.state.open:
            return Fail(f"log request {request.id} is {request.state}")
        status = request.station_status
        if status in FAILURE_STATUSES:
            return await self._failed(
                request,
                f"station reported {status}: the upload of its {words} failed",
                status=status,
            )
        if status == CANCELLED_BY_STATION:
            return await self._failed(
                request,
                "station cancelled this upload (AcceptedCanceled), most likely for a newer "
                "GetLog; start a new fetch if the log is still wanted",
                state=LogRequestState.CANCELLED,
                alert=False,
            )
        now = self._deps.clock()
        if job.deadline is not None and now >= job.deadline:
            return await self._failed(
                request,
                f"no {words} arrived within {self._deps.files.log_wait_seconds:g} s of GetLog "
                f"(last station status: {status or 'none'})",
                status=status,
            )
        reason = _WAITING.get(status or "", "waiting for the station to upload")
        return Wait("upload", reason, wake_at=job.deadline)

    # --- endings ----------------------------------------------------------------------------

    async def _stored(self, request: LogRequestRecord) -> Outcome:
        assert request.id is not None
        # The link is spent (single-use), not expired: a replay until its end is reported as
        # a reused token, the critical event it is, not as a late upload.
        store = self._deps.store
        if request.state is not LogRequestState.UPLOADED:
            await store.log_requests.update(
                request.id, only_if=OPEN, state=LogRequestState.UPLOADED
            )
        reported = "Uploaded" in {change.status for change in request.history}
        return Succeed(
            f"{log_words(request.log_type)} stored: {request.size} bytes, sha256 "
            f"{(request.sha256 or '')[:16]}…"
            + ("" if reported else "; the station has not reported Uploaded yet")
        )

    async def _failed(
        self,
        request: LogRequestRecord,
        reason: str,
        *,
        status: str | None = None,
        state: LogRequestState = LogRequestState.FAILED,
        alert: bool = True,
    ) -> Outcome:
        """End the request (its link stops working at once) and the job, with ``reason``."""
        assert request.id is not None
        store = self._deps.store
        now = self._deps.clock()
        await store.file_tokens.expire(PURPOSE, request.id, now)
        await store.log_requests.update(request.id, only_if=OPEN, state=state, reason=reason)
        if alert:
            await self._deps.alerts.raise_alert(
                AlertSeverity.WARNING,
                "log.fetch_failed",
                f"{log_words(request.log_type)} of {request.station_identity} not fetched: "
                f"{reason}",
                station=request.station_identity,
                details={"request_id": request.id, "station_status": status},
            )
        return Fail(reason)

    async def cancel(self, job: JobRecord) -> str:
        request_id = request_id_of(job)
        store = self._deps.store
        await store.file_tokens.expire(PURPOSE, request_id, self._deps.clock())
        before = await store.log_requests.get(request_id)
        ended = await store.log_requests.update(
            request_id, only_if=OPEN, state=LogRequestState.CANCELLED, reason="cancelled"
        )
        if ended is None:
            state = before.state if before is not None else "gone"
            return f"cancelled; log request {request_id} had already ended ({state})"
        if before is not None and before.state is LogRequestState.PENDING:
            return "cancelled before GetLog was sent"
        kept = " (the file that arrived is kept)" if ended.stored_path else ""
        return f"cancelled; the upload link no longer works{kept}"
