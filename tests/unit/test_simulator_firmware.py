"""The simulated station's signed firmware updates, sans I/O, both versions (SIM-05, FW-01..03;
whitepaper L01, 2.0.1 TC_L_*; 1.6 TC_080/081)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from test_simulator_core import (
    ACCEPTED_BOOT,
    NOW,
    V16,
    V201,
    Clock,
    assert_valid_requests,
    config,
    handle,
)

from chargewarden.pki.firmware import sign_digest
from chargewarden.pki.issue import issue_ca, issue_leaf, name
from chargewarden.rpc.errors import ErrorKind, RpcError
from chargewarden.rpc.frames import Call
from chargewarden.rpc.router import Router
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.core import StationCore
from chargewarden.simulator.firmware import Phase
from chargewarden.simulator.firmwarecheck import version_from_location
from chargewarden.simulator.tasks import FirmwareDownload, TransferError

YEAR = timedelta(days=365)
IMAGE = b"\x7fELF" + bytes(range(256)) * 64
LOCATION = "https://localhost:9444/files/firmware/s3cr3t-t0ken/fw-2.1.0.bin"
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
Messages = list[tuple[str, dict[str, Any]]]


class Maker:
    """A manufacturer: its root and a code-signing certificate under it."""

    def __init__(self, cn: str = "Maker Root", *, signer_key: Key | None = None) -> None:
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = issue_ca(
            name(cn, "Maker"), self.root_key.public_key(), self.root_key, issuer_cert=None,
            not_before=NOW - YEAR, not_after=NOW + 10 * YEAR, path_length=0,
        )  # fmt: skip
        self.key, self.signer = self.issue(signer_key)

    def issue(
        self, key: Key | None = None, *, not_after: datetime = NOW + YEAR
    ) -> tuple[Key, x509.Certificate]:
        key = key or ec.generate_private_key(ec.SECP256R1())
        cert = issue_leaf(
            self.root, self.root_key, key.public_key(), cn="Firmware Signer", o="Maker",
            not_before=NOW - YEAR, not_after=not_after, client=True, code_signing=True,
        )  # fmt: skip
        return key, cert

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    @property
    def signer_pem(self) -> str:
        return self.signer.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, data: bytes = IMAGE) -> str:
        return sign_digest(hashlib.sha256(data).digest(), self.key)


@pytest.fixture(scope="module")
def maker() -> Maker:
    return Maker()


def status_action(version: OcppVersion) -> str:
    return "SignedFirmwareStatusNotification" if version is V16 else "FirmwareStatusNotification"


def update_action(version: OcppVersion) -> str:
    return "SignedUpdateFirmware" if version is V16 else "UpdateFirmware"


def request(maker: Maker, request_id: int = 7, **firmware: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location": LOCATION,
        "retrieveDateTime": (NOW - timedelta(hours=2)).isoformat(),
        "signingCertificate": maker.signer_pem,
        "signature": maker.sign(),
    }
    body.update(firmware)
    retries = body.pop("retries", None)
    interval = body.pop("retryInterval", None)
    payload: dict[str, Any] = {"requestId": request_id, "firmware": body}
    if retries is not None:
        payload.update(retries=retries, retryInterval=interval)
    return payload


def booted(
    version: OcppVersion, maker: Maker | None, *, drain: bool = True, **overrides: Any
) -> tuple[StationCore, Clock]:
    """A station with `maker`'s root installed at the factory, booted (Accepted)."""
    clock = Clock()
    if maker is not None:
        overrides.setdefault("manufacturer_root_pem", maker.root_pem)
    core = StationCore(config(version, **overrides), clock)
    core.on_connected(NOW)
    core.on_boot_response(ACCEPTED_BOOT, NOW)
    if drain:
        core.take_outgoing()
    return core, clock


def sent(core: StationCore) -> Messages:
    """What the runner would send now, each answered by the CSMS ({} fits every call here)."""
    messages = core.take_outgoing()
    assert_valid_requests(core, messages)
    for action, payload in messages:
        core.on_response(action, {}, core.now(), payload)
    return messages


def statuses(core: StationCore, messages: Messages) -> list[tuple[str, int | None]]:
    action = status_action(core.version)
    return [(p["status"], p.get("requestId")) for a, p in messages if a == action]


def events(messages: Messages) -> list[str]:
    return [p["type"] for a, p in messages if a == "SecurityEventNotification"]


def downloads(core: StationCore) -> list[FirmwareDownload]:
    tasks = core.take_tasks()
    assert all(isinstance(t, FirmwareDownload) for t in tasks)
    return tasks  # type: ignore[return-value]


def reboot_and_boot(core: StationCore) -> dict[str, Any]:
    """The runner's part of a reboot: reconnect, boot, Accepted. Returns the boot request."""
    assert core.reconnect_requested
    assert core.on_connected(core.now()) is True  # a reboot always boots
    action, boot = core.boot_request()
    assert_valid_requests(core, [(action, boot)])
    core.on_boot_response(ACCEPTED_BOOT, core.now())
    return boot


# ---- the signing certificate (L01.FR.02/23/24, TC_L_05) ----------------------------------------


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize("case", ["foreign root", "expired", "not PEM", "no root installed"])
async def test_SIM_05_TC_L_05_invalid_signing_certificate_is_refused_with_an_event(
    maker: Maker, version: OcppVersion, case: str
) -> None:
    core, _ = booted(version, None if case == "no root installed" else maker)
    certificate = maker.signer_pem
    if case == "foreign root":
        certificate = Maker("Someone Else").signer_pem
    elif case == "expired":
        _, old = maker.issue(not_after=NOW - timedelta(days=1))
        certificate = old.public_bytes(serialization.Encoding.PEM).decode()
    elif case == "not PEM":
        certificate = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    payload = request(maker, signingCertificate=certificate)
    answer = await handle(core, update_action(version), payload)
    assert answer == {"status": "InvalidCertificate"}
    messages = sent(core)
    # Pushed although 1.6 does not count it as critical (L01.FR.02).
    assert events(messages) == ["InvalidFirmwareSigningCertificate"]
    assert statuses(core, messages) == []
    assert core.take_tasks() == [] and core.firmware.phase is Phase.IDLE
    assert core.security_log[-1].tech_info  # says why, for the CSMS operator


async def test_TC_L_01_manufacturer_root_installed_over_ocpp_is_used(maker: Maker) -> None:
    core, _ = booted(V201, None)
    install = {
        "certificateType": "ManufacturerRootCertificate",
        "certificate": maker.root_pem.decode(),
    }
    assert await handle(core, "InstallCertificate", install) == {"status": "Accepted"}
    answer = await handle(core, "UpdateFirmware", request(maker))
    assert answer == {"status": "Accepted"}


async def test_201_unsigned_update_is_rejected_before_downloading(maker: Maker) -> None:
    core, _ = booted(V201, maker)
    payload = request(maker)
    del payload["firmware"]["signature"]
    answer = await handle(core, "UpdateFirmware", payload)
    assert answer["status"] == "Rejected"
    assert core.take_tasks() == [] and statuses(core, sent(core)) == []


async def test_L01_FR_20_plain_16_update_firmware_is_a_not_supported_callerror() -> None:
    core, _ = booted(V16, None)
    payload = {"location": LOCATION, "retrieveDate": NOW.isoformat()}
    with pytest.raises(RpcError) as raised:
        await core.handlers()["UpdateFirmware"](payload)
    assert raised.value.kind is ErrorKind.NOT_SUPPORTED
    router = Router(V16, core.handlers())
    reply = json.loads(await router.dispatch(Call("m1", "UpdateFirmware", payload)))
    assert reply[:3] == [4, "m1", "NotSupported"]
    assert core.take_tasks() == [] and core.take_outgoing() == []


# ---- the happy path (L01.FR.01/04/10/15, TC_L_01, TC_080) ---------------------------------------


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize("algorithm", ["ecdsa", "rsa-pss"])
async def test_SIM_05_TC_L_01_TC_080_statuses_in_order_through_installed(
    version: OcppVersion, algorithm: str
) -> None:
    key = rsa.generate_private_key(65537, 2048) if algorithm == "rsa-pss" else None
    maker = Maker(signer_key=key)
    core, _ = booted(version, maker)
    assert await handle(core, update_action(version), request(maker)) == {"status": "Accepted"}
    assert statuses(core, sent(core)) == [("Downloading", 7)]
    [task] = downloads(core)
    assert (task.request_id, task.url) == (7, LOCATION)
    assert "s3cr3t" not in repr(task)  # the URL's token is a secret
    core.on_download_result(task, IMAGE)
    messages = sent(core)  # InstallRebooting answered: the station reboots
    assert statuses(core, messages) == [
        ("Downloaded", 7),
        ("SignatureVerified", 7),
        ("Installing", 7),
        ("InstallRebooting", 7),
    ]
    boot = reboot_and_boot(core)
    if version is V16:
        assert boot["firmwareVersion"] == "fw-2.1.0"
    else:
        assert boot["chargingStation"]["firmwareVersion"] == "fw-2.1.0"
        assert boot["reason"] == "FirmwareUpdate"
    messages = sent(core)
    assert statuses(core, messages) == [("Installed", 7)]
    assert "FirmwareUpdated" in events(messages)
    assert core.firmware_version == "fw-2.1.0" and core.firmware.phase is Phase.IDLE
    # Survives a reconnect without a reboot too.
    core.on_connected(core.now())
    assert "fw-2.1.0" in json.dumps(core.boot_request())


async def test_reboot_happens_even_if_install_rebooting_is_never_answered(maker: Maker) -> None:
    core, clock = booted(V16, maker)
    await handle(core, "SignedUpdateFirmware", request(maker))
    [task] = downloads(core)
    core.on_download_result(task, IMAGE)
    assert core.firmware.phase is Phase.REBOOTING and not core.reconnect_requested
    deadline = core.next_deadline()
    assert deadline is not None
    clock.now = deadline
    core.poll(clock.now)
    assert core.reconnect_requested
    # The undelivered statuses stay queued and go out after the boot (store and forward).
    reboot_and_boot(core)
    assert statuses(core, sent(core))[-2:] == [("InstallRebooting", 7), ("Installed", 7)]


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_L_02_TC_L_03_download_and_install_scheduled(
    maker: Maker, version: OcppVersion
) -> None:
    core, clock = booted(version, maker)
    retrieve, install = NOW + timedelta(minutes=5), NOW + timedelta(minutes=30)
    payload = request(
        maker, retrieveDateTime=retrieve.isoformat(), installDateTime=install.isoformat()
    )
    assert (await handle(core, update_action(version), payload))["status"] == "Accepted"
    assert statuses(core, sent(core)) == [("DownloadScheduled", 7)]
    assert core.take_tasks() == [] and core.next_deadline() == retrieve
    clock.now = retrieve
    core.poll(clock.now)
    [task] = downloads(core)
    core.on_download_result(task, IMAGE)
    assert [s for s, _ in statuses(core, sent(core))] == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "InstallScheduled",
    ]
    assert core.next_deadline() == install
    clock.now = install
    core.poll(clock.now)
    assert [s for s, _ in statuses(core, sent(core))] == ["Installing", "InstallRebooting"]
    reboot_and_boot(core)
    assert statuses(core, sent(core)) == [("Installed", 7)]


# ---- failures (L01.FR.03, TC_L_06/07/08, TC_081) -------------------------------------------------


@pytest.mark.parametrize("version", [V16, V201])
async def test_SIM_05_TC_L_06_TC_081_tampered_image_is_never_installed(
    maker: Maker, version: OcppVersion
) -> None:
    core, _ = booted(version, maker)
    await handle(core, update_action(version), request(maker))
    [task] = downloads(core)
    core.on_download_result(task, IMAGE[:-1] + b"\x00")
    messages = sent(core)
    assert [s for s, _ in statuses(core, messages)] == [
        "Downloading",
        "Downloaded",
        "InvalidSignature",
    ]
    assert events(messages) == ["InvalidFirmwareSignature"]  # pushed (L01.FR.03)
    assert not core.reconnect_requested and core.firmware_version == "1.0.0"
    assert core.firmware.phase is Phase.IDLE


async def test_signature_by_another_key_or_garbage_is_invalid(maker: Maker) -> None:
    core, _ = booted(V201, maker)
    for signature in (Maker().sign(), "bm90IGEgc2lnbmF0dXJl", "***"):
        await handle(core, "UpdateFirmware", request(maker, signature=signature))
        [task] = downloads(core)
        core.on_download_result(task, IMAGE)
        assert statuses(core, sent(core))[-1] == ("InvalidSignature", 7)


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_L_07_download_fails_after_its_retries(maker: Maker, version: OcppVersion) -> None:
    core, clock = booted(version, maker)
    payload = request(maker, retries=2, retryInterval=60)
    await handle(core, update_action(version), payload)
    for attempt in range(3):
        assert statuses(core, sent(core)) == [("Downloading", 7)]
        [task] = downloads(core)
        core.on_download_result(task, TransferError("HTTP 404", 404))
        if attempt < 2:
            assert statuses(core, sent(core)) == []
            assert core.next_deadline() == clock.now + timedelta(seconds=60)
            clock.now += timedelta(seconds=60)
            core.poll(clock.now)
    assert statuses(core, sent(core)) == [("DownloadFailed", 7)]
    assert core.firmware.phase is Phase.IDLE and core.next_deadline() is None


@pytest.mark.parametrize("version", [V16, V201])
async def test_firmware_fault_download_fails(maker: Maker, version: OcppVersion) -> None:
    core, _ = booted(version, maker, firmware_fault="download-fails")
    await handle(core, update_action(version), request(maker))
    assert core.take_tasks() == []
    assert statuses(core, sent(core)) == [("Downloading", 7), ("DownloadFailed", 7)]


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_L_08_firmware_fault_install_fails(maker: Maker, version: OcppVersion) -> None:
    core, _ = booted(version, maker, firmware_fault="install-fails")
    await handle(core, update_action(version), request(maker))
    [task] = downloads(core)
    core.on_download_result(task, IMAGE)
    assert [s for s, _ in statuses(core, sent(core))][-3:] == [
        "SignatureVerified",
        "Installing",
        "InstallationFailed",
    ]
    assert not core.reconnect_requested and core.firmware_version == "1.0.0"


async def test_plain_http_refused_by_a_station_that_trusts_a_csms_root(maker: Maker) -> None:
    core, _ = booted(V16, maker, csms_root_pem=maker.root_pem)  # any CA will do
    await handle(core, "SignedUpdateFirmware", request(maker, location="http://lab/fw.bin"))
    assert core.take_tasks() == []
    assert statuses(core, sent(core)) == [("DownloadFailed", 7)]
    lab, _ = booted(V16, maker)  # no CSMS root: a profile 0/1 lab may use http
    await handle(lab, "SignedUpdateFirmware", request(maker, location="http://lab/fw.bin"))
    assert len(lab.take_tasks()) == 1


# ---- a second request (L01.FR.26/27, TC_L_10) ----------------------------------------------------


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_L_10_new_request_cancels_the_download_in_progress(
    maker: Maker, version: OcppVersion
) -> None:
    core, _ = booted(version, maker)
    await handle(core, update_action(version), request(maker, request_id=1))
    [first] = downloads(core)
    answer = await handle(core, update_action(version), request(maker, request_id=2))
    assert answer == {"status": "AcceptedCanceled"}
    assert core.take_cancelled() == [first.task_id]  # the runner aborts it
    [second] = downloads(core)
    core.on_download_result(first, IMAGE)  # too late: ignored
    assert statuses(core, sent(core)) == [("Downloading", 1), ("Downloading", 2)]
    core.on_download_result(second, IMAGE)
    assert {r for _, r in statuses(core, sent(core))} == {2}


async def test_L01_FR_27_installation_under_way_cannot_be_canceled(maker: Maker) -> None:
    core, _ = booted(V201, maker)
    await handle(core, "UpdateFirmware", request(maker, request_id=1))
    [task] = downloads(core)
    core.on_download_result(task, IMAGE)
    assert core.firmware.phase is Phase.REBOOTING
    answer = await handle(core, "UpdateFirmware", request(maker, request_id=2))
    assert answer == {"status": "Rejected"}


async def test_invalid_certificate_does_not_cancel_the_update_in_progress(maker: Maker) -> None:
    core, _ = booted(V16, maker)
    await handle(core, "SignedUpdateFirmware", request(maker, request_id=1))
    foreign = request(Maker("Other"), request_id=2)
    assert (await handle(core, "SignedUpdateFirmware", foreign))["status"] == "InvalidCertificate"
    assert core.take_cancelled() == [] and core.firmware.phase is Phase.DOWNLOADING


# ---- triggers (L01.FR.28/29) ---------------------------------------------------------------------


@pytest.mark.parametrize("version", [V16, V201])
async def test_L01_FR_28_29_triggered_status_is_the_last_one_or_idle(
    maker: Maker, version: OcppVersion
) -> None:
    core, _ = booted(version, maker)
    trigger_action = "ExtendedTriggerMessage" if version is V16 else "TriggerMessage"
    trigger = {"requestedMessage": "FirmwareStatusNotification"}

    async def triggered() -> list[tuple[str, int | None]]:
        assert await handle(core, trigger_action, trigger) == {"status": "Accepted"}
        return statuses(core, sent(core))

    assert await triggered() == [("Idle", None)]
    await handle(core, update_action(version), request(maker))
    sent(core)
    assert await triggered() == [("Downloading", 7)]
    [task] = downloads(core)
    core.on_download_result(task, IMAGE)
    sent(core)
    reboot_and_boot(core)
    sent(core)
    assert await triggered() == [("Idle", None)]  # after Installed


# ---- the installed version (SIM-05) --------------------------------------------------------------


def test_version_is_the_last_path_segment_without_extension() -> None:
    assert version_from_location(LOCATION, "1.0") == "fw-2.1.0"
    assert version_from_location("https://h/f/tok/fw%202.tar.gz?x=1", "1.0") == "fw 2.tar"
    assert version_from_location("https://h/files/", "1.0") == "files"
    assert version_from_location("https://h/", "1.0") == "1.0"
    assert version_from_location(f"https://h/{'v' * 80}.bin", "1.0") == "v" * 50


async def test_installed_version_survives_a_restart_with_state_dir(
    maker: Maker, tmp_path: Path
) -> None:
    core, _ = booted(V201, maker, state_dir=tmp_path)
    await handle(core, "UpdateFirmware", request(maker))
    [task] = downloads(core)
    core.on_download_result(task, IMAGE)
    sent(core)  # InstallRebooting answered: rebooting; then the process dies before the boot
    restarted, _ = booted(V201, maker, state_dir=tmp_path, drain=False)
    assert restarted.firmware_version == "fw-2.1.0"
    messages = sent(restarted)
    assert statuses(restarted, messages) == [("Installed", 7)]
    assert "FirmwareUpdated" in events(messages)
    again, _ = booted(V201, maker, state_dir=tmp_path, drain=False)
    assert again.firmware_version == "fw-2.1.0" and statuses(again, sent(again)) == []
