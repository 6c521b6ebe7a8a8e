"""Where firmware images and uploaded logs live under the data directory."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 100
CHUNK = 1024 * 1024


def safe_filename(name: str, fallback: str = "file") -> str:
    """A file name that cannot climb out of its directory or surprise a shell."""
    cleaned = _UNSAFE.sub("_", os.path.basename(name or "")).strip("._")[:MAX_NAME]
    return cleaned or fallback


class TransferStorage:
    def __init__(self, data_dir: Path) -> None:
        self.firmware_dir = data_dir / "firmware"
        self.logs_dir = data_dir / "logs"
        self._data_dir = data_dir

    def firmware_path(self, sha256: str, filename: str) -> Path:
        return self.firmware_dir / sha256 / safe_filename(filename)

    def store_firmware(self, source: Path, sha256: str, filename: str) -> Path:
        """Copy an image in (0640), then check the copy is the image that was verified."""
        target = self.firmware_path(sha256, filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".partial")
        shutil.copyfile(source, partial)
        os.chmod(partial, 0o640)
        if file_sha256(partial) != sha256:
            partial.unlink(missing_ok=True)
            raise OSError(f"{source} changed while it was being registered")
        partial.replace(target)
        return target

    def log_path(self, station: str, request_id: int, filename: str) -> Path:
        directory = self.logs_dir / safe_filename(station, "station")
        return directory / f"{request_id}-{safe_filename(filename, 'log')}"

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self._data_dir))

    def absolute(self, relative: str) -> Path:
        path = (self._data_dir / relative).resolve()
        if not path.is_relative_to(self._data_dir.resolve()):
            raise OSError(f"{relative} is outside the data directory")
        return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
