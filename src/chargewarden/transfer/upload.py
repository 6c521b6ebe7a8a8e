"""Receiving one uploaded file, streamed to disk with a size limit.

Stations upload logs as a raw body (PUT, or POST with any non-multipart type) or as
multipart/form-data (what most chargers' HTTP clients do); the first file part is the log.
The limit counts every byte of the request body, so a multipart envelope cannot smuggle more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header


class UploadRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Received:
    size: int  # bytes of the file itself
    filename: str | None  # as the multipart part named it


class _FirstFilePart:
    """python-multipart callbacks that write the first part with a file name (or the first
    part at all) to ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._state = "before"  # before → writing → done
        self.filename: str | None = None
        self.size = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        if self._state != "before":
            return
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"filename")
        if name is not None:
            self.filename = name.decode("utf-8", "replace")
        self._state = "writing"

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._state == "writing":
            self._out.write(data[start:end])
            self.size += end - start

    def on_part_end(self) -> None:
        if self._state == "writing":
            self._state = "done"
        self._headers = {}

    @property
    def found(self) -> bool:
        return self._state == "done"


async def receive_upload(request: Request, target: Path, limit: int) -> Received:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadRefused(413, f"the upload is larger than {limit} bytes")
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    multipart = content_type == b"multipart/form-data"
    boundary = options.get(b"boundary")
    if multipart and not boundary:
        raise UploadRefused(400, "multipart upload without a boundary")
    total = 0
    with target.open("wb") as out:
        part = _FirstFilePart(out)
        parser = (
            MultipartParser(boundary, _callbacks(part)) if multipart else None  # type: ignore[arg-type]
        )
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise UploadRefused(413, f"the upload is larger than {limit} bytes")
            if parser is not None:
                try:
                    parser.write(chunk)
                except Exception:  # noqa: BLE001 - any parser error means a malformed body
                    raise UploadRefused(400, "malformed multipart upload") from None
            else:
                out.write(chunk)
        if parser is not None:
            try:
                parser.finalize()
            except Exception:  # noqa: BLE001
                raise UploadRefused(400, "malformed multipart upload") from None
            if not part.found:
                raise UploadRefused(400, "the multipart upload holds no file")
            return Received(part.size, part.filename)
    if total == 0:
        raise UploadRefused(400, "empty upload")
    return Received(total, None)


def _callbacks(part: _FirstFilePart) -> dict[str, object]:
    return {
        "on_header_field": part.on_header_field,
        "on_header_value": part.on_header_value,
        "on_header_end": part.on_header_end,
        "on_headers_finished": part.on_headers_finished,
        "on_part_data": part.on_part_data,
        "on_part_end": part.on_part_end,
    }
