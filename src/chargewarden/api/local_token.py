"""CLI access to the running server: an admin token for the `local-cli` operator.

At start, `chargewarden serve` gives the `local-cli` operator a fresh token (the previous one
stops working) and writes ``<data_dir>/run/cli.json`` with the API URL and that token, mode
0600 in a 0700 directory, atomically. Commands that talk to stations (``chargewarden station
certificates ...``) read it from there, so whoever may read the data directory may use the
API as admin, which is no more than they could already do with the database and the CA. The
file is removed on a clean shutdown.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chargewarden.pki.files import DIR_MODE, ensure_dir, write_secret
from chargewarden.security.tokens import new_token
from chargewarden.store import Store
from chargewarden.store.records import AuditRecord, OperatorRecord, OperatorRole

log = logging.getLogger(__name__)

LOCAL_OPERATOR = "local-cli"
RUN_DIR = "run"
CLI_FILE = "cli.json"


class LocalAccessError(Exception):
    """The CLI access file cannot be written or read; the message says why."""


def cli_file(data_dir: Path) -> Path:
    return data_dir / RUN_DIR / CLI_FILE


def local_api_url(address: tuple[str, int]) -> str:
    """The URL a local client uses for an API bound to ``address`` (a wildcard means here)."""
    host, port = address[0], address[1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}"
    if ip.is_unspecified:
        ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
    return f"http://[{ip}]:{port}" if ip.version == 6 else f"http://{ip}:{port}"


@dataclass(frozen=True)
class LocalAccess:
    path: Path
    api_url: str
    token: str = field(repr=False)

    def remove(self) -> None:
        """Delete the file, unless another server has since written its own there."""
        try:
            current = read_local_access(self.path.parent.parent)
        except LocalAccessError:
            return  # not what we wrote: leave it
        if current is not None and current.token != self.token:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _private_dir(directory: Path) -> None:
    ensure_dir(directory)
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise LocalAccessError(f"{directory} is not a directory")
    if stat.S_IMODE(info.st_mode) != DIR_MODE:
        os.chmod(directory, DIR_MODE)


async def publish_local_token(store: Store, data_dir: Path, api_url: str) -> LocalAccess:
    """Give `local-cli` a fresh admin token and write it, with the URL, to the run file."""
    path = cli_file(data_dir)
    try:
        _private_dir(path.parent)
    except OSError as exc:
        raise LocalAccessError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
    token, lookup, token_hash = new_token()
    await store.operators.replace(
        OperatorRecord(
            name=LOCAL_OPERATOR,
            role=OperatorRole.ADMIN,
            token_lookup=lookup,
            token_hash=token_hash,
        )
    )
    await store.audit.add(
        AuditRecord(
            actor="serve",
            action="operator.token.replace",
            target=LOCAL_OPERATOR,
            details={"role": OperatorRole.ADMIN.value, "file": str(path)},
        )
    )
    body = json.dumps({"api_url": api_url, "token": token}, indent=2).encode() + b"\n"
    try:
        write_secret(path, body)
    except OSError as exc:
        raise LocalAccessError(f"cannot write {path}: {exc.strerror or exc}") from None
    log.info("CLI access for this server written to %s", path)
    return LocalAccess(path, api_url, token)


def read_local_access(data_dir: Path) -> LocalAccess | None:
    """What the running server wrote; None if there is no file. LocalAccessError if it is
    unreadable or malformed."""
    path = cli_file(data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LocalAccessError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data: Any = json.loads(text)
        api_url, token = data["api_url"], data["token"]
    except (ValueError, TypeError, KeyError):
        raise LocalAccessError(f"{path} is not a valid CLI access file") from None
    if not isinstance(api_url, str) or not isinstance(token, str):
        raise LocalAccessError(f"{path} is not a valid CLI access file")
    return LocalAccess(path, api_url, token)
