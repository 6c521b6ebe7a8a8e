"""The file-transfer HTTP app stations talk to: firmware downloads and log uploads.

Served on its own HTTPS listener (``[files] port``) with the CSMS server certificate, apart from
the operator API: stations hold no API token, and operators' routes are not exposed to them.
Every refusal answers with a plain status and records a security event (EVT-03); the token is
never logged or echoed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from chargewarden.config import FileTransferSettings
from chargewarden.security.events import CsmsEvent
from chargewarden.security.recorder import SecurityRecorder
from chargewarden.store import Store
from chargewarden.store.transfer_records import (
    FileTokenRecord,
    LogRequestRecord,
    LogRequestState,
    TransferPurpose,
)
from chargewarden.transfer.storage import TransferStorage, file_sha256, safe_filename
from chargewarden.transfer.tokens import TokenProblem, TransferLinks
from chargewarden.transfer.upload import UploadRefused, receive_upload

log = logging.getLogger(__name__)

LogStored = Callable[[LogRequestRecord], Awaitable[None]]

_STATUS = {
    TokenProblem.UNKNOWN: 404,
    TokenProblem.WRONG_PURPOSE: 404,
    TokenProblem.EXPIRED: 410,
    TokenProblem.USED: 409,
}
_WORDS = {
    TokenProblem.UNKNOWN: "unknown link",
    TokenProblem.WRONG_PURPOSE: "unknown link",
    TokenProblem.EXPIRED: "this link has expired",
    TokenProblem.USED: "this upload link was used already",
}


@dataclass
class FilesContext:
    store: Store
    links: TransferLinks
    storage: TransferStorage
    recorder: SecurityRecorder
    settings: FileTransferSettings
    clock: Callable[[], datetime]
    # Told when a log file is stored (the log job finishes on it).
    on_log_stored: LogStored | None = None


def _peer(request: Request) -> str | None:
    return request.client.host if request.client else None


def create_files_app(ctx: FilesContext) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)

    async def refuse(
        request: Request,
        problem: TokenProblem | str,
        token: FileTokenRecord | None,
        what: str,
        status: int | None = None,
    ) -> Response:
        event = (
            CsmsEvent.UPLOAD_TOKEN_REUSED
            if problem is TokenProblem.USED
            else CsmsEvent.FILE_TOKEN_REFUSED
        )
        words = _WORDS.get(problem, str(problem)) if isinstance(problem, TokenProblem) else problem
        await ctx.recorder.csms(
            event,
            identity=token.station_identity if token else None,
            peer=_peer(request),
            reason=f"{what} refused: {words}"
            + (f" (request {token.ref_id})" if token is not None else ""),
        )
        code = status or (_STATUS[problem] if isinstance(problem, TokenProblem) else 400)
        return PlainTextResponse(words + "\n", status_code=code)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/files/firmware/{token}/{filename}")
    async def download(token: str, filename: str, request: Request) -> Response:
        check = await ctx.links.check(token, TransferPurpose.FIRMWARE_DOWNLOAD, ctx.clock())
        if not check.ok:
            assert check.problem is not None
            return await refuse(request, check.problem, check.token, "firmware download")
        assert check.token is not None
        update = await ctx.store.firmware_updates.get(check.token.ref_id)
        release = (
            await ctx.store.firmware_releases.get(update.release_id) if update is not None else None
        )
        if update is None or release is None or not update.state.open:
            return await refuse(
                request, "this update is no longer open", check.token, "firmware download", 410
            )
        if filename != release.filename:
            return await refuse(request, TokenProblem.UNKNOWN, check.token, "firmware download")
        path = ctx.storage.firmware_path(release.sha256, release.filename)
        if not path.is_file():
            log.error("firmware release %s: image %s is missing", release.name, path)
            return PlainTextResponse("image not available\n", status_code=503)
        await ctx.store.file_tokens.count_use(check.token.id or 0)
        log.info(
            "station %s downloads firmware %s (update %s)",
            update.station_identity,
            release.name,
            update.id,
        )
        return FileResponse(path, media_type="application/octet-stream", filename=release.filename)

    async def upload(request: Request, token: str, filename: str | None) -> Response:
        check = await ctx.links.check(token, TransferPurpose.LOG_UPLOAD, ctx.clock())
        if not check.ok:
            assert check.problem is not None
            return await refuse(request, check.problem, check.token, "log upload")
        assert check.token is not None and check.token.id is not None
        record = await ctx.store.log_requests.get(check.token.ref_id)
        if record is None or record.state not in (LogRequestState.SENT, LogRequestState.ACCEPTED):
            return await refuse(
                request, "this log request is no longer open", check.token, "log upload", 410
            )
        ctx.storage.logs_dir.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=ctx.storage.logs_dir, suffix=".partial")
        os.close(handle)
        temp = Path(temp_name)
        try:
            try:
                received = await receive_upload(request, temp, ctx.settings.max_upload_bytes)
            except UploadRefused as exc:
                return await refuse(request, exc.reason, check.token, "log upload", exc.status)
            # One upload per link: the first complete upload wins, a later one is a replay.
            if not await ctx.store.file_tokens.claim(check.token.id, ctx.clock()):
                return await refuse(request, TokenProblem.USED, check.token, "log upload")
            name = received.filename or filename or record.station_filename or str(record.log_type)
            target = ctx.storage.log_path(record.station_identity, check.token.ref_id, name)
            digest = await asyncio.to_thread(_keep, temp, target)
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)
        stored = await ctx.store.log_requests.update(
            check.token.ref_id,
            stored_path=ctx.storage.relative(target),
            size=received.size,
            sha256=digest,
            uploaded_at=ctx.clock(),
        )
        log.info(
            "station %s uploaded %s (%d bytes) for log request %s",
            record.station_identity,
            safe_filename(name),
            received.size,
            record.id,
        )
        if stored is not None and ctx.on_log_stored is not None:
            await ctx.on_log_stored(stored)
        return JSONResponse({"stored": target.name, "size": received.size}, status_code=201)

    @app.api_route("/files/logs/{token}", methods=["POST", "PUT"])
    async def upload_plain(token: str, request: Request) -> Response:
        return await upload(request, token, None)

    @app.api_route("/files/logs/{token}/{filename}", methods=["POST", "PUT"])
    async def upload_named(token: str, filename: str, request: Request) -> Response:
        return await upload(request, token, filename)

    return app


def _keep(temp: Path, target: Path) -> str:
    """Move a received file to its place (0640) and return its SHA-256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(temp, 0o640)
    temp.replace(target)
    return file_sha256(target)
