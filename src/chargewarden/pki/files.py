"""Writing PKI files: atomically, and private material never readable by others, not even briefly.

Every file is written to a temporary name in the same directory and renamed into place, so a
reader (the gateway's watcher, a concurrent ``ca show``) sees the old file or the new one, never
half of one. Secret files are created with mode 0600 by ``os.open`` itself: a ``chmod`` after
the fact would leave a window in which the umask decides who may read them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
DIR_MODE = 0o700


def ensure_dir(path: Path) -> None:
    """Create a directory, and any missing parents, readable by the owner only.

    ``Path.mkdir(parents=True)`` would give the parents the umask's default mode instead.
    """
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)


def write_atomic(path: Path, data: bytes, *, mode: int, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` with ``mode``; with ``exclusive``, refuse an existing file.

    FileExistsError if ``exclusive`` and the file exists (checked again at the rename, so two
    writers cannot both win).
    """
    ensure_dir(path.parent)
    if exclusive and path.exists():
        raise FileExistsError(17, "file exists", str(path))
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        # The umask may have removed bits from ``mode``; never add any beyond it.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            # link() fails if the target exists, unlike rename(): no silent overwrite.
            os.link(temp, path)
            temp.unlink()
        else:
            os.replace(temp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def write_secret(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    write_atomic(path, data, mode=SECRET_MODE, exclusive=exclusive)


def write_public(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    write_atomic(path, data, mode=PUBLIC_MODE, exclusive=exclusive)
