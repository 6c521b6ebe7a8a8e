"""The demo's firmware and log phase (FW-01..03, LOG-01), on the demo's profile-2 stations:

* a release signed by the development manufacturer's firmware signer is registered and
  installed on a 1.6 and a 2.0.1 station, which then boot with the new version;
* a tampered copy of it is refused by the CSMS when someone tries to register it;
* an image altered on the server after the station accepted the update is refused by the
  station itself (InvalidSignature), which fails the update and raises a critical alert;
* a station's security log is fetched and stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from chargewarden.app import RunningCsms
from chargewarden.demo_upgrades import WAIT_SECONDS, finished_job
from chargewarden.domain.station_calls import utc_now
from chargewarden.pki.firmware import FirmwareRefused, digest_file, sign_digest
from chargewarden.pki.hierarchy import Pki, pem_of
from chargewarden.pki.passphrase import load_passphrase
from chargewarden.store.transfer_records import FirmwareUpdateState, LogType
from chargewarden.workflows.service import JobError

DEMO_ACTOR = "demo"
UPDATED_STATIONS = ("DEMO-16-P2", "DEMO-201-P2")
TAMPERED_STATION = "DEMO-16-P2"
LOG_STATION = "DEMO-201-P2"
# The altered image is downloaded this long after the station accepted the update.
TAMPER_DELAY = timedelta(seconds=3)

Row = tuple[str, str, bool, str]  # identity, result, as expected, why


def manufacturer_root_pem(running: RunningCsms) -> bytes | None:
    """What the demo's stations trust for firmware, as if installed at the factory."""
    from chargewarden.firmware.trust import load_trust

    if running.firmware is None:
        return None
    return pem_of(*load_trust(running.settings).roots)


def _image(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"CWFW" + os.urandom(256 * 1024))
    return path


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-16] + b"\x00" * 16)


def _signed_images(work: Path, stamp: str, key: object) -> tuple[Path, str, Path, Path, str]:
    """The release, its signature, a tampered copy, and a second release with its signature."""
    image = _image(work, f"demo-fw-{stamp}.bin")
    signature = sign_digest(digest_file(image)[0], key)  # type: ignore[arg-type]
    tampered = work / f"demo-fw-{stamp}-tampered.bin"
    tampered.write_bytes(image.read_bytes() + b"\x90" * 64)
    second = _image(work, f"demo-fw-{stamp}-b.bin")
    second_signature = sign_digest(digest_file(second)[0], key)  # type: ignore[arg-type]
    return image, signature, tampered, second, second_signature


async def _install(running: RunningCsms, identity: str, release: str) -> Row:
    assert running.firmware is not None
    try:
        job, _ = await running.firmware.update(identity, release, actor=DEMO_ACTOR)
    except JobError as exc:
        return identity, "firmware NOT sent", False, str(exc)
    done = await finished_job(running, job)
    if done is None or done.state != "succeeded":
        why = done.message if done else f"not finished in {WAIT_SECONDS:.0f} s"
        return identity, "firmware NOT installed", False, f"job {job.id}: {why}"
    station = await running.store.stations.get(identity)
    version = station.firmware_version if station else "?"
    return identity, "firmware installed", True, f"job {job.id}: {done.message}; runs {version}"


async def _altered_on_server(running: RunningCsms, release: str, path: Path) -> Row:
    """Update with a later retrieve time, then change the image before the station fetches it."""
    assert running.firmware is not None
    identity = TAMPERED_STATION
    try:
        job, update = await running.firmware.update(
            identity, release, actor=DEMO_ACTOR, at=utc_now() + TAMPER_DELAY
        )
    except JobError as exc:
        return identity, "tampered image NOT tried", False, str(exc)
    assert update.id is not None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT_SECONDS):
            # Accepted by the station (or over): the image was checked and the link sent.
            while (record := await running.store.firmware_updates.get(update.id)) is not None:
                if record.state is FirmwareUpdateState.ACCEPTED or not record.state.open:
                    break
                await asyncio.sleep(0.1)
    await asyncio.to_thread(_corrupt, path)
    done = await finished_job(running, job)
    refused = done is not None and "InvalidSignature" in (done.message or "")
    why = f"job {job.id}: {done.message if done else 'did not finish'}"
    if refused:
        return identity, "altered image refused by station", True, why
    installed = done is not None and done.state == "succeeded"
    return (
        identity,
        "altered image INSTALLED" if installed else "altered image not tried",
        False,
        why,
    )


async def _fetch_log(running: RunningCsms) -> Row:
    if running.logs is None:
        return LOG_STATION, "security log NOT fetched", False, "log retrieval is off"
    try:
        job = await running.logs.fetch(LOG_STATION, LogType.SECURITY, actor=DEMO_ACTOR)
    except JobError as exc:
        return LOG_STATION, "security log NOT fetched", False, str(exc)
    done = await finished_job(running, job)
    if done is None or done.state != "succeeded":
        why = done.message if done else "did not finish"
        return LOG_STATION, "security log NOT fetched", False, f"job {job.id}: {why}"
    return LOG_STATION, "security log fetched", True, f"job {job.id}: {done.message}"


async def run_firmware_phase(running: RunningCsms, progress: Callable[[str], None]) -> list[Row]:
    if running.firmware is None:
        return []
    progress("signing firmware, updating two stations, trying tampered images, fetching a log")
    stamp = utc_now().strftime("%Y%m%d-%H%M%S")
    work = running.settings.data_dir / "demo-firmware"
    signer = Pki.load(running.settings, load_passphrase(running.settings)).firmware_signer
    rows: list[Row] = []

    image, signature, tampered, second, second_signature = await asyncio.to_thread(
        _signed_images, work, stamp, signer.key
    )
    release = await running.firmware.releases.register(
        image, signature, signer.pem, name=f"demo-{stamp}", actor=DEMO_ACTOR
    )
    for identity in UPDATED_STATIONS:
        rows.append(await _install(running, identity, release.name))

    try:
        await running.firmware.releases.register(
            tampered, signature, signer.pem, name=f"demo-{stamp}-tampered", actor=DEMO_ACTOR
        )
        rows.append((LOG_STATION, "tampered release ACCEPTED", False, "this must not happen"))
    except FirmwareRefused as exc:
        rows.append((LOG_STATION, "tampered release refused", True, f"by the CSMS: {exc}"))

    late = await running.firmware.releases.register(
        second, second_signature, signer.pem, name=f"demo-{stamp}-b", actor=DEMO_ACTOR
    )
    assert running.files is not None
    stored = running.files.storage.firmware_path(late.sha256, late.filename)
    rows.append(await _altered_on_server(running, late.name, stored))
    rows.append(await _fetch_log(running))
    return rows
