"""Where the passphrase that unlocks the CA's private keys comes from.

In order: the environment (CHARGEWARDEN_CA_PASSPHRASE), the file named by ``ca_passphrase_file``,
or (embedded default) ``<ca_dir>/passphrase``, generated once with mode 0600. The passphrase is
returned as bytes and never logged, printed or put in an exception message.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
from pathlib import Path

from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.files import write_secret

log = logging.getLogger(__name__)

PASSPHRASE_ENV = "CHARGEWARDEN_CA_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
DEFAULT_PASSPHRASE_FILE = "passphrase"  # noqa: S105 - a file name
# OpenSSL's PEM password callback truncates at 1023 bytes; a longer one could not be typed into
# `openssl pkey` to inspect a key by hand.
MAX_PASSPHRASE_BYTES = 1023
MIN_PASSPHRASE_BYTES = 8


def default_passphrase_file(settings: Settings) -> Path:
    return settings.effective_ca_dir / DEFAULT_PASSPHRASE_FILE


def passphrase_source(settings: Settings) -> str:
    """Where the passphrase comes from, for the operator (never the passphrase itself)."""
    if os.environ.get(PASSPHRASE_ENV):
        return f"environment variable {PASSPHRASE_ENV}"
    if settings.ca_passphrase_file is not None:
        return f"file {settings.ca_passphrase_file} (ca_passphrase_file)"
    return f"file {default_passphrase_file(settings)} (generated once; embedded default)"


def _check(secret: bytes, where: str) -> bytes:
    if len(secret) < MIN_PASSPHRASE_BYTES:
        raise PkiError(
            f"the CA passphrase from {where} is shorter than {MIN_PASSPHRASE_BYTES} bytes; "
            "use a long random one"
        )
    if len(secret) > MAX_PASSPHRASE_BYTES:
        raise PkiError(
            f"the CA passphrase from {where} is longer than {MAX_PASSPHRASE_BYTES} bytes"
        )
    return secret


def _read_file(path: Path, where: str) -> bytes:
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise PkiError(f"CA passphrase file {path} does not exist ({where})") from None
    except OSError as exc:
        raise PkiError(f"cannot read CA passphrase file {path}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # A warning, not a refusal: secret mounts (Docker, Kubernetes) are often 0444 inside a
        # private mount namespace, where nobody else can reach them anyway.
        log.warning("CA passphrase file %s is accessible to other users; chmod 600 it", path)
    # Editors add a final newline; it is never meant to be part of the passphrase.
    return _check(data.rstrip(b"\r\n"), f"file {path}")


def _ca_has_keys(ca_dir: Path) -> bool:
    return ca_dir.is_dir() and any(ca_dir.glob("**/key.pem"))


def load_passphrase(settings: Settings) -> bytes:
    """The CA passphrase; generates the embedded default's file if there is no CA yet.

    PkiError if the configured source is missing or unusable, or if a CA exists but its
    generated passphrase file has gone (a new passphrase could not open the existing keys).
    """
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return _check(from_env.encode("utf-8"), f"environment variable {PASSPHRASE_ENV}")
    if settings.ca_passphrase_file is not None:
        return _read_file(settings.ca_passphrase_file, "ca_passphrase_file")
    path = default_passphrase_file(settings)
    if path.exists():
        return _read_file(path, "embedded default")
    if _ca_has_keys(settings.effective_ca_dir):
        raise PkiError(
            f"the CA in {settings.effective_ca_dir} exists but its passphrase file {path} is "
            f"missing; restore it, or give the passphrase in {PASSPHRASE_ENV} or "
            "ca_passphrase_file"
        )
    # 32 random bytes, URL-safe base64: printable, so the operator can move it into a secret
    # manager or type it into `openssl pkey` when inspecting a key by hand.
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    try:
        write_secret(path, secret + b"\n", exclusive=True)
    except FileExistsError:
        # Another process generated it first; use theirs so both agree.
        return _read_file(path, "embedded default")
    except OSError as exc:
        raise PkiError(f"cannot create CA passphrase file {path}: {exc.strerror or exc}") from None
    log.info("generated the CA passphrase file %s (mode 0600)", path)
    return secret
