"""The station's file transfers over HTTP(S) (SIM-05/06): the I/O half of `tasks`.

`FileTransfers` belongs to a `StationRunner` and lives as long as its `run()`: it takes the
tasks the core wants done, performs each as its own asyncio task (so a slow download never holds
up the OCPP connection), feeds the outcome back to the core, and runs the core's timed steps
(`poll`) when they fall due. It sends no OCPP message itself; whatever the core queues in
response goes out through the runner, which `on_change` wakes.

Transport rules: HTTPS verified against the CSMS roots the station trusts for wss (the file
server presents the CSMS's server certificate), TLS 1.2 or newer, no client certificate; plain
http only where `tasks.url_problem` allows it (a station holding no CSMS root). No redirects
(one could lead to plain http), no proxies from the environment, bounded sizes and times.
The CSMS puts an access token in the URL's path, so only the host is ever logged: requests go
straight to the httpx transport, whose client would log every full URL at INFO.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from chargewarden.simulator.certificates import TlsMaterial
from chargewarden.simulator.connect import station_tls_context, tls_context_from
from chargewarden.simulator.core import StationCore
from chargewarden.simulator.tasks import (
    FirmwareDownload,
    LogUpload,
    TransferError,
    TransferTask,
    safe_location,
)

__all__ = ["MAX_DOWNLOAD_BYTES", "FileTransfers"]

logger = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024  # a simulated station keeps the image in memory
# Connect and per-read timeouts; a whole transfer is bounded by `total_timeout` as well, so a
# server trickling bytes cannot keep a task alive forever.
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_TOTAL_TIMEOUT = 300.0
_REASON_MAX = 200

T = TypeVar("T")


class FileTransfers:
    def __init__(
        self,
        core: StationCore,
        *,
        clock: Callable[[], datetime],
        on_change: Callable[[], None],
        fallback_context: Callable[[], ssl.SSLContext | None] = lambda: None,
        max_download_bytes: int = MAX_DOWNLOAD_BYTES,
        total_timeout: float = _TOTAL_TIMEOUT,
    ) -> None:
        self._core = core
        self._clock = clock
        self._on_change = on_change
        # The runner's explicit wss context, for a station that holds no CSMS root itself.
        self._fallback_context = fallback_context
        self._max_download = max_download_bytes
        self._total_timeout = total_timeout
        self._kick = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}

    def kick(self) -> None:
        """Look for new tasks, cancellations and deadlines now (after each CSMS call)."""
        self._kick.set()

    async def run(self) -> None:
        """Until cancelled (the runner stops): start tasks, run due steps, wait."""
        try:
            while True:
                self._kick.clear()
                self._core.poll(self._clock())
                for task_id in self._core.take_cancelled():
                    running = self._running.pop(task_id, None)
                    if running is not None:
                        running.cancel()
                for task in self._core.take_tasks():
                    self._running[task.task_id] = asyncio.create_task(self._perform(task))
                self._on_change()
                await self._wait()
        finally:
            for running in self._running.values():
                running.cancel()
            await asyncio.gather(*self._running.values(), return_exceptions=True)
            self._running.clear()

    async def _wait(self) -> None:
        deadline = self._core.next_deadline()
        timeout = None if deadline is None else (deadline - self._clock()).total_seconds()
        if timeout is not None and timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._kick.wait()

    async def _perform(self, task: TransferTask) -> None:
        try:
            if isinstance(task, FirmwareDownload):
                self._core.on_download_result(task, await self.fetch(task))
            else:
                self._core.on_upload_result(task, await self.send(task))
        finally:
            self._running.pop(task.task_id, None)
            self.kick()  # the core may have queued a status, a retry or a reboot

    async def fetch(self, task: FirmwareDownload) -> bytes | TransferError:
        """Perform a download task; never raises (but for cancellation)."""
        return await self._guarded(task, self.download(task.url))

    async def send(self, task: LogUpload) -> TransferError | None:
        """Perform an upload task; None when it was stored; never raises."""
        return await self._guarded(task, self.upload(task))

    async def _guarded(self, task: TransferTask, work: Awaitable[T]) -> T | TransferError:
        """`work` bounded in time; every failure becomes a TransferError (the core must hear
        of each task's end, or its update would wait forever), whose reason holds no URL."""
        where = safe_location(task.url)
        result: T | TransferError
        try:
            async with asyncio.timeout(self._total_timeout):
                result = await work
        except TimeoutError:
            result = TransferError("the transfer took too long")
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            result = TransferError(_scrub(f"{exc.__class__.__name__}: {exc}", task.url))
        except Exception as exc:  # a bug: reported, without a message that may hold the URL
            logger.error(
                "%s: transfer %s failed: %s", self._identity, task.task_id, exc.__class__.__name__
            )
            result = TransferError(f"internal error ({exc.__class__.__name__})")
        if isinstance(result, TransferError):
            logger.info(
                "%s: transfer %s with %s failed: %s",
                self._identity,
                task.task_id,
                where,
                result.reason,
            )
        else:
            logger.info("%s: transfer %s with %s done", self._identity, task.task_id, where)
        return result

    @property
    def _identity(self) -> str:
        return self._core.config.identity

    # ---- HTTP ---------------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        """The CSMS roots the station holds now (no client certificate: the URL's token is the
        credential), else the runner's own wss context, else the system store."""
        if self._core.certificates.has_csms_root():
            roots = self._core.certificates.tls_material().csms_roots_pem
            return tls_context_from(TlsMaterial(roots, None, None))
        return station_tls_context(self._fallback_context())

    def _transport(self) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(verify=self._ssl_context(), trust_env=False, retries=0)

    def _headers(self) -> dict[str, str]:
        cfg = self._core.config
        return {"User-Agent": f"{cfg.vendor}/{cfg.model} {self._core.firmware_version}"}

    async def download(self, url: str) -> bytes | TransferError:
        """GET `url`: its body, or why not (an HTTP error status, too large)."""
        request = httpx.Request(
            "GET", url, headers=self._headers(), extensions={"timeout": _TIMEOUT.as_dict()}
        )
        async with self._transport() as transport:
            response = await transport.handle_async_request(request)
            try:
                if response.status_code != 200:
                    return TransferError(f"HTTP {response.status_code}", response.status_code)
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit():
                    if int(declared) > self._max_download:
                        return self._too_large()
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > self._max_download:
                        return self._too_large()
                return bytes(body)
            finally:
                await response.aclose()

    def _too_large(self) -> TransferError:
        return TransferError(f"the file is larger than {self._max_download} bytes")

    async def upload(self, task: LogUpload) -> TransferError | None:
        """POST the log as multipart/form-data, one file part named "file"."""
        request = httpx.Request(
            "POST",
            task.url,
            headers=self._headers(),
            files={"file": (task.filename, task.content, "text/plain; charset=utf-8")},
            extensions={"timeout": _TIMEOUT.as_dict()},
        )
        async with self._transport() as transport:
            response = await transport.handle_async_request(request)
            await response.aclose()
        if 200 <= response.status_code < 300:
            return None
        return TransferError(f"HTTP {response.status_code}", response.status_code)


def _scrub(text: str, url: str) -> str:
    """An error message without the URL's path, query or credentials (the CSMS's token)."""
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.query, parts.netloc.rpartition("@")[0]):
        if len(secret) > 1:
            text = text.replace(secret, "...")
    return text[:_REASON_MAX]
