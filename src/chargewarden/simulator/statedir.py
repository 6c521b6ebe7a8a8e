"""The one place the simulated station touches its file system: its state directory (SIM-03).

Every file is written atomically (a temporary file in the same directory, flushed, then renamed
over the old one), so a station killed mid-write keeps either the old or the new content. The
directory is created 0700 and every file 0600: it holds the station's private keys.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"StateDir({str(self.path)!r})"

    def read(self, name: str) -> bytes | None:
        """The file's content; None if it does not exist."""
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes) -> None:
        """Replace `name` atomically with `data` (mode 0600)."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.path)
        try:
            with open(fd, "wb") as file:  # mkstemp creates the file 0600
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path / name)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.path / name).unlink()
