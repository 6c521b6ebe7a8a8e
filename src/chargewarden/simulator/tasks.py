"""File transfers the sans-I/O station core wants done, and what came of them (SIM-05/06).

The core never opens a socket: when a firmware update or a log upload needs the network it
queues one of these plain task objects. The runner takes them (`StationCore.take_tasks()`),
performs them (`filetransfer`) and hands the outcome back (`on_download_result` /
`on_upload_result`). A task the core no longer wants (a cancelled update or upload) is named in
`take_cancelled()` so the runner can abort it; a late result of such a task is ignored anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = [
    "FirmwareDownload",
    "LogUpload",
    "TransferError",
    "TransferTask",
    "safe_location",
    "url_problem",
]


@dataclass(frozen=True)
class FirmwareDownload:
    """GET `url` and return its bytes (at most the runner's size limit)."""

    task_id: int
    request_id: int
    # Carries a secret (the CSMS's one-time token is a path segment): repr and logs show only
    # the host (`safe_location`).
    url: str = field(repr=False)

    def __repr__(self) -> str:
        where = safe_location(self.url)
        return f"FirmwareDownload({self.task_id}, request {self.request_id}, {where})"


@dataclass(frozen=True)
class LogUpload:
    """POST `content` to `url` as multipart/form-data, one file part named "file"."""

    task_id: int
    request_id: int
    url: str = field(repr=False)
    filename: str
    content: bytes = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"LogUpload({self.task_id}, request {self.request_id}, {self.filename!r}, "
            f"{len(self.content)} bytes, {safe_location(self.url)})"
        )


TransferTask = FirmwareDownload | LogUpload


@dataclass(frozen=True)
class TransferError:
    """Why a transfer failed. `reason` is safe to log and to put in a techInfo: it never holds
    the URL. `http_status` is the server's answer when there was one (401/403: permission)."""

    reason: str
    http_status: int | None = None

    @property
    def permission_denied(self) -> bool:
        return self.http_status in (401, 403)


def safe_location(url: str) -> str:
    """What of a transfer URL may be logged: scheme and host, never the path or query (the
    CSMS puts its access token there) nor a user:password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "<unparsable URL>"
    return f"{parts.scheme or '?'}://{host}{port}"


def url_problem(url: str, *, plain_http_allowed: bool) -> str | None:
    """Why the station will not transfer a file with this URL, or None. HTTPS always; plain
    http only for a station that trusts no CSMS root (a profile 0/1 lab): one that does would
    otherwise move firmware and its security log in the clear (whitepaper L01.FR.08)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "the URL cannot be parsed"
    scheme = parts.scheme.lower()
    if not parts.hostname:
        return "the URL has no host"
    if scheme == "https":
        return None
    if scheme == "http":
        if plain_http_allowed:
            return None
        return "plain http is refused by a station that trusts a CSMS root; use https"
    return f"the {scheme or 'missing'} transfer protocol is not supported (https only)"
