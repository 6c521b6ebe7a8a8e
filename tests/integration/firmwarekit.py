"""Signed firmware for integration tests: images signed by the CSMS's development signer."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from chargewarden.app import RunningCsms
from chargewarden.pki.firmware import digest_file, sign_digest
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.material import csms_root_pem
from chargewarden.pki.passphrase import load_passphrase
from chargewarden.store.transfer_records import FirmwareReleaseRecord

STATUS_CALL = {"1.6": "SignedFirmwareStatusNotification", "2.0.1": "FirmwareStatusNotification"}
UPDATE_CALL = {"1.6": "SignedUpdateFirmware", "2.0.1": "UpdateFirmware"}


def image(tmp_path: Path, name: str = "fw-2.1.0.bin", size: int = 300_000) -> Path:
    path = tmp_path / name
    path.write_bytes(b"\x7fELF" + bytes(i % 251 for i in range(size)))
    return path


def dev_signer(csms: RunningCsms) -> Pki:
    return Pki.load(csms.settings, load_passphrase(csms.settings))


async def dev_release(
    csms: RunningCsms, tmp_path: Path, name: str = "acme-2.1.0", file_name: str = "fw-2.1.0.bin"
) -> FirmwareReleaseRecord:
    """A release signed with the development firmware signer, registered through the CSMS."""
    assert csms.firmware is not None
    path = image(tmp_path, file_name)
    signer = dev_signer(csms).firmware_signer
    signature = sign_digest(digest_file(path)[0], signer.key)  # type: ignore[arg-type]
    return await csms.firmware.releases.register(
        path, signature, signer.pem, name=name, actor="test"
    )


def files_client(csms: RunningCsms) -> httpx.AsyncClient:
    """An HTTPS client that trusts the CSMS root, as a station does."""
    context = ssl.create_default_context(cadata=csms_root_pem(csms.settings).decode("ascii"))
    return httpx.AsyncClient(verify=context, timeout=10)
