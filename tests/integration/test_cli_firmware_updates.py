"""`chargewarden firmware add | list | show` on the store (FW-02), and `firmware update |
status` against a real `chargewarden serve` process with a raw WebSocket station whose every
answer and status report the test gives (FW-01, FW-03)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from rawstation import V16, V201, RawStation
from test_cli_certificates import acli, assert_ok, assert_one_line_error, cli
from test_cli_jobs import online, serving
from tlskit import foreign_ca, pem

from chargewarden.cli.common import CliError
from chargewarden.cli.firmware_updates import parse_time
from chargewarden.config import load_settings
from chargewarden.pki.firmware import digest_file, sign_digest
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.issue import issue_leaf
from chargewarden.pki.passphrase import load_passphrase
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store import Store
from chargewarden.store.records import AlertRecord

NOW = datetime.now(UTC)
STATUS_ACTION = {V16: "SignedFirmwareStatusNotification", V201: "FirmwareStatusNotification"}
UPDATE_ACTION = {V16: "SignedUpdateFirmware", V201: "UpdateFirmware"}


@pytest.fixture
def data_dir(tmp_path: Path, pki_template: Path) -> Path:
    shutil.copytree(pki_template, tmp_path / "pki")
    return tmp_path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "acme-ac22-2.1.0.bin"
    path.write_bytes(b"ACME" + bytes(range(256)) * 2048)
    return path


def dev_signed(data_dir: Path, image: Path) -> tuple[Path, Path]:
    """(signature file, signing certificate) from the development firmware signer."""
    signature = image.with_suffix(".sig")
    assert_ok(
        cli("firmware", "sign", str(image), "--dev-signer", "--out", str(signature),
            data_dir=data_dir)
    )  # fmt: skip
    return signature, data_dir / "pki" / "firmware-signer" / "cert.pem"


def own_signed(
    image: Path,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    not_after: datetime = NOW + timedelta(days=365),
) -> tuple[Path, Path]:
    """A code-signing leaf of ``issuer`` (as tests/unit/test_pki_firmware.py makes them)
    and its signature over ``image``."""
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = issue_leaf(
        issuer[0], issuer[1], key.public_key(), cn="Firmware Signer", o="Maker",
        not_before=not_after - timedelta(days=400), not_after=not_after,
        client=True, code_signing=True,
    )  # fmt: skip
    cert = image.with_suffix(".crt")
    cert.write_bytes(pem(leaf))
    signature = image.with_suffix(".sig")
    signature.write_text(sign_digest(digest_file(image)[0], key) + "\n")
    return signature, cert


def manufacturer_root(data_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    settings = load_settings(None, data_dir=data_dir)
    entry = Pki.load(settings, load_passphrase(settings)).manufacturer_root
    assert isinstance(entry.key, ec.EllipticCurvePrivateKey)
    return entry.certificate, entry.key


def add(
    data_dir: Path, image: Path, signature: Path, cert: Path, *extra: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return cli(
        "firmware", "add", str(image), "--signature", str(signature), "--cert", str(cert),
        *extra, data_dir=data_dir, **env,
    )  # fmt: skip


def refused_events(data_dir: Path) -> list[str]:
    """The reasons of the FirmwareRefused security events in the store."""

    async def read() -> list[str]:
        url = load_settings(None, data_dir=data_dir).effective_database_url
        async with await Store.open(url) as store:
            return [e.tech_info or "" for e in await store.events.list(type="FirmwareRefused")]

    return asyncio.run(read())


# ------------------------------------------------------------------ firmware add | list | show


def test_FW_02_add_a_signed_release_then_list_and_show_it(data_dir: Path, image: Path) -> None:
    assert "no firmware releases" in assert_ok(cli("firmware", "list", data_dir=data_dir))
    signature, cert = dev_signed(data_dir, image)
    out = assert_ok(add(data_dir, image, signature, cert, "--name", "acme-2.1.0"))
    sha256 = digest_file(image)[0].hex()
    assert "registered firmware release acme-2.1.0" in out
    assert sha256 in out and f"({image.stat().st_size} bytes)" in out
    assert "ECDSA-SHA256" in out and "CN=" in out
    # Stored where the server serves it from.
    stored = data_dir / "firmware" / sha256 / image.name
    assert stored.read_bytes() == image.read_bytes()

    listing = assert_ok(cli("firmware", "list", data_dir=data_dir))
    assert "acme-2.1.0" in listing and sha256[:16] in listing
    shown = assert_ok(cli("firmware", "show", "acme-2.1.0", data_dir=data_dir))
    assert sha256 in shown and "no updates with this release yet" in shown
    assert_one_line_error(cli("firmware", "show", "nope", data_dir=data_dir), "no firmware release")
    # Names are unique; the default name is the image's file name.
    assert_one_line_error(
        add(data_dir, image, signature, cert, "--name", "acme-2.1.0"), "exists already"
    )
    assert "registered firmware release acme-ac22-2.1.0.bin" in assert_ok(
        add(data_dir, image, signature, cert)
    )
    assert refused_events(data_dir) == []


def test_TC_081_tampered_image_is_refused_and_recorded(data_dir: Path, image: Path) -> None:
    signature, cert = dev_signed(data_dir, image)
    image.write_bytes(image.read_bytes() + b"\x00")
    line = assert_one_line_error(add(data_dir, image, signature, cert), "error: refused: ")
    assert "does not verify" in line
    assert "no firmware releases" in assert_ok(cli("firmware", "list", data_dir=data_dir))
    assert not (data_dir / "firmware").exists() or not any((data_dir / "firmware").iterdir())
    [reason] = refused_events(data_dir)
    assert "does not verify" in reason
    # A refusal at the command line alerts like one in the server (EVT-02).
    [alert] = stored_alerts(data_dir)
    assert alert.kind == "security-event.FirmwareRefused" and alert.severity == "critical"


def stored_alerts(data_dir: Path) -> list[AlertRecord]:
    async def read() -> list[AlertRecord]:
        url = load_settings(None, data_dir=data_dir).effective_database_url
        async with await Store.open(url) as store:
            return await store.alerts.list()

    return asyncio.run(read())


def test_FW_02_signer_from_a_foreign_ca_is_refused_unless_its_root_is_configured(
    data_dir: Path, image: Path, tmp_path: Path
) -> None:
    foreign = foreign_ca()
    signature, cert = own_signed(image, foreign)
    assert_one_line_error(
        add(data_dir, image, signature, cert), "refused", "does not chain to a configured"
    )
    assert len(refused_events(data_dir)) == 1
    # Configured as a manufacturer root, the same release is accepted (and the development
    # root no longer is).
    root_file = tmp_path / "maker-root.pem"
    root_file.write_bytes(pem(foreign[0]))
    env = {"CHARGEWARDEN_FIRMWARE__MANUFACTURER_ROOTS": f'["{root_file}"]'}
    assert_ok(add(data_dir, image, signature, cert, "--name", "maker-1", **env))
    dev_signature, dev_cert = dev_signed(data_dir, image)
    assert_one_line_error(
        add(data_dir, image, dev_signature, dev_cert, "--name", "dev-1", **env),
        "does not chain",
    )


def test_FW_02_expired_signing_certificate_is_refused(data_dir: Path, image: Path) -> None:
    signature, cert = own_signed(
        image, manufacturer_root(data_dir), not_after=NOW - timedelta(days=1)
    )
    assert_one_line_error(add(data_dir, image, signature, cert), "refused", "expired")
    [reason] = refused_events(data_dir)
    assert "expired" in reason
    # The same chain, still valid: accepted (so it was the expiry that was refused).
    signature, cert = own_signed(image, manufacturer_root(data_dir))
    assert_ok(add(data_dir, image, signature, cert))


def test_add_bad_files_are_one_line_errors(data_dir: Path, image: Path, tmp_path: Path) -> None:
    signature, cert = dev_signed(data_dir, image)
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    assert_one_line_error(add(data_dir, image, signature, not_pem), "refused", "not a PEM")
    assert_one_line_error(add(data_dir, image, tmp_path / "missing.sig", cert), "cannot read")
    garbage = tmp_path / "garbage.sig"
    garbage.write_text("%%% not base64 %%%")
    assert_one_line_error(add(data_dir, image, garbage, cert), "refused", "base64")
    assert_one_line_error(
        add(data_dir, image, signature, cert, "--name", "x" * 65), "1 to 64 characters"
    )


# ---------------------------------------------------------------------------- times and flags


def test_times_are_iso_8601_or_relative() -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_time("+10m", "--at", now) == now + timedelta(minutes=10)
    assert parse_time("+2h", "--at", now) == now + timedelta(hours=2)
    assert parse_time("+1d", "--at", now) == now + timedelta(days=1)
    assert parse_time("+30s", "--at", now) == now + timedelta(seconds=30)
    assert parse_time("now", "--at", now) == now
    assert parse_time("2030-01-02T03:04:05Z", "--at", now) == datetime(
        2030, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert parse_time("2030-01-02T04:04:05+01:00", "--at", now) == datetime(
        2030, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    # Without an offset: UTC, like everything the CLI prints.
    assert parse_time("2030-01-02 03:04", "--at", now) == datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    for bad in ("tomorrow", "+10", "+10y", "-10m", "+99999999d", ""):
        with pytest.raises(CliError, match="--at"):
            parse_time(bad, "--at", now)


def test_update_flags_and_no_server_are_one_line(tmp_path: Path) -> None:
    release = ("--release", "r")
    flags = [
        (("firmware", "update", "--station", "CP-1"), "--release NAME"),
        (("firmware", "update", *release), "give --station ID"),
        (("firmware", "update", *release, "--station", "CP-1", "--all"), "not both"),
        (("firmware", "update", *release, "--station", "CP-1", "--profile", "1"), "not with"),
        (("firmware", "update", *release, "--station", "CP-1", "--concurrency", "2"), "several"),
        (("firmware", "update", *release, "--all", "--at", "soon"), "--at: expected"),
        (("firmware", "update", *release, "--all", "--retries", "-1"), "--retries must be"),
        (
            ("firmware", "update", *release, "--all", "--at", "+2h", "--install-at", "+1h"),
            "--install-at must not be before",
        ),
    ]
    no_server = [
        (command, "is `chargewarden serve` running")
        for command in (
            ("firmware", "update", *release, "--station", "CP-1"),
            ("firmware", "status"),
        )
    ]
    cases = flags + no_server
    # Real processes, a few at once: each pays the interpreter's start-up.
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda case: cli(*case[0], data_dir=tmp_path), cases))
    for (_command, fragment), result in zip(cases, results, strict=True):
        assert_one_line_error(result, fragment)


# ------------------------------------------------------------------------ through the server


async def statuses(station: RawStation, version: OcppVersion, request_id: int, *names: str) -> None:
    for name in names:
        reply = await station.call(
            STATUS_ACTION[version], {"status": name, "requestId": request_id}
        )
        assert reply[0] == 3, reply


async def test_TC_080_firmware_update_waits_for_installed_and_status_shows_it(
    data_dir: Path, image: Path
) -> None:
    signature, cert = dev_signed(data_dir, image)
    async with serving(data_dir, ("FWC-16", V16, 1), ("FWC-201", V201, 1)) as serve:
        # Registered while the server runs: it reads releases from the store when it sends.
        assert_ok(add(data_dir, image, signature, cert, "--name", "acme-2.1.0"))

        # 1.6: Accepted, the status sequence, Installed: exit 0 with the station's last status.
        async with online(serve, "FWC-16", V16) as station:
            task = asyncio.create_task(
                acli(
                    "firmware",
                    "update",
                    "--station",
                    "FWC-16",
                    "--release",
                    "acme-2.1.0",
                    "--retries",
                    "2",
                    "--retry-interval",
                    "60",
                    data_dir=data_dir,
                )  # fmt: skip
            )
            unique_id, request = await station.expect_call(UPDATE_ACTION[V16], timeout=30)
            assert request["retries"] == 2 and request["retryInterval"] == 60
            await station.answer(unique_id, {"status": "Accepted"})
            request_id = request["requestId"]
            await statuses(
                station, V16, request_id,
                "Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed",
            )  # fmt: skip
            result = await task
        out = assert_ok(result)
        token = request["firmware"]["location"].split("/files/firmware/")[1].split("/")[0]
        assert token not in out + result.stderr
        assert re.search(rf"started job \d+: firmware acme-2.1.0 on station FWC-16 \(update "
                         rf"{request_id}", out), out  # fmt: skip
        assert "waiting for job" in out
        assert f"update {request_id} of FWC-16: installed (last station status Installed" in out
        assert "succeeded: station reports Installed" in out

        # 2.0.1: InvalidSignature fails it: one error line, exit 1, the status shown before.
        async with online(serve, "FWC-201", V201) as station:
            task = asyncio.create_task(
                acli("firmware", "update", "--station", "FWC-201", "--release", "acme-2.1.0",
                     data_dir=data_dir)
            )  # fmt: skip
            unique_id, request = await station.expect_call(UPDATE_ACTION[V201], timeout=30)
            await station.answer(unique_id, {"status": "Accepted"})
            bad_id = request["requestId"]
            await statuses(station, V201, bad_id, "Downloaded", "InvalidSignature")
            failed = await task
        assert_one_line_error(failed, "failed", "InvalidSignature")
        assert "last station status InvalidSignature" in failed.stdout

        # Unknown release or station: the server's reason on one line.
        assert_one_line_error(
            await acli("firmware", "update", "--station", "FWC-16", "--release", "nope",
                       data_dir=data_dir),
            "no firmware release 'nope'",
        )  # fmt: skip
        assert_one_line_error(
            await acli("firmware", "update", "--station", "NOPE", "--release", "acme-2.1.0",
                       data_dir=data_dir),
            "no station 'NOPE'",
        )  # fmt: skip

        # --no-wait for a fleet (the stations are offline now): the job at once, then status.
        started = assert_ok(
            await acli("firmware", "update", "--all", "--release", "acme-2.1.0", "--at", "+1h",
                       "--no-wait", data_dir=data_dir)
        )  # fmt: skip
        assert re.search(r"started fleet job \d+: firmware acme-2.1.0 on 2 station\(s\)", started)
        assert "follow it with: chargewarden jobs show" in started

        listing = assert_ok(await acli("firmware", "status", data_dir=data_dir))
        assert "installed" in listing and "InvalidSignature" in listing and "pending" in listing
        mine = assert_ok(await acli("firmware", "status", "--station", "FWC-16", data_dir=data_dir))
        assert "installed" in mine and "FWC-201" not in mine
        one = assert_ok(await acli("firmware", "status", str(request_id), data_dir=data_dir))
        assert "answer: Accepted" in one and "status: SignatureVerified" in one
        assert token not in listing + mine + one
        shown = assert_ok(await acli("firmware", "show", "acme-2.1.0", data_dir=data_dir))
        assert "FWC-16" in shown and "installed" in shown
        assert serve.process.poll() is None
