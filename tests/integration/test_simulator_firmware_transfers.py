"""The simulator's file transfers for real (SIM-05, SIM-06, FW-01..03, LOG-01): a StationRunner
on a fake CSMS (tests/integration/test_simulator_runner.py) downloads a signed image from, and
uploads its security log to, an HTTPS file server started here on 127.0.0.1 with a certificate
for "localhost" from a throw-away CA. Real sockets, real TLS, no mocks.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from test_simulator_runner import V16, V201, FakeCsms, fake_csms, running, station
from tlskit import key_pem, pem

from chargewarden.pki.firmware import digest_file, sign_digest
from chargewarden.pki.issue import issue_ca, issue_leaf, name
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.core import StationCore
from chargewarden.simulator.filetransfer import FileTransfers
from chargewarden.simulator.runner import StationRunner
from chargewarden.simulator.tasks import FirmwareDownload, TransferError

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
TOKEN = "tok-6f1c2a9e"  # what the CSMS would put in its URLs: must never reach a log


def make_ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_ca(
        name(cn, "Test"), key.public_key(), key, issuer_cert=None,
        not_before=NOW - DAY, not_after=NOW + 30 * DAY, path_length=0,
    )  # fmt: skip
    return cert, key


@dataclass
class Upload:
    path: str
    field_name: str | None
    filename: str | None
    content: bytes


@dataclass
class FileServer:
    port: int
    ca_pem: bytes
    files: dict[str, bytes] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"


@contextlib.contextmanager
def https_files(tmp_path: Path) -> Iterator[FileServer]:
    """GET /files/firmware/<token>/<name> serves `files`; POST /files/logs/<token> records a
    multipart upload (token "denied": 403), as the CSMS's file endpoint would."""
    ca, ca_key = make_ca("File Server Test CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_leaf(
        ca, ca_key, key.public_key(), cn="localhost", o="Test", not_before=NOW - DAY,
        not_after=NOW + DAY, client=False, dns_names=["localhost"], ip_addresses=["127.0.0.1"],
    )  # fmt: skip
    (tmp_path / "server.pem").write_bytes(pem(cert) + key_pem(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tmp_path / "server.pem")
    state = FileServer(0, pem(ca))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = state.files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def do_POST(self) -> None:  # noqa: N802
            data = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path.endswith("/denied"):
                self.send_response(403)
            else:
                header = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                message = BytesParser(policy=HTTP).parsebytes(header + data)
                for part in message.iter_parts():  # type: ignore[attr-defined]
                    state.uploads.append(
                        Upload(
                            self.path,
                            part.get_param("name", header="content-disposition"),
                            part.get_filename(),
                            part.get_payload(decode=True),
                        )
                    )
                self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Maker:
    def __init__(self, tmp_path: Path) -> None:
        self.root, root_key = make_ca("Maker Root")
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.signer = issue_leaf(
            self.root, root_key, self.key.public_key(), cn="Firmware Signer", o="Maker",
            not_before=NOW - DAY, not_after=NOW + DAY, client=True, code_signing=True,
        )  # fmt: skip
        self.image = tmp_path / "fw-2.1.0.bin"
        self.image.write_bytes(b"\x7fELF" + bytes(range(256)) * 4096)  # 1 MiB

    def signature(self) -> str:
        return sign_digest(digest_file(self.image)[0], self.key)


def firmware_request(maker: Maker, location: str, signature: str) -> dict[str, Any]:
    return {
        "requestId": 42,
        "firmware": {
            "location": location,
            "retrieveDateTime": (NOW - timedelta(hours=2)).isoformat(),
            "signingCertificate": pem(maker.signer).decode(),
            "signature": signature,
        },
    }


def incoming(csms: FakeCsms, action: str) -> list[dict[str, Any]]:
    return [p for _, p in csms.calls(action)]


def fw_statuses(csms: FakeCsms, version: OcppVersion) -> list[str]:
    action = "SignedFirmwareStatusNotification" if version is V16 else "FirmwareStatusNotification"
    return [p["status"] for p in incoming(csms, action) if p.get("requestId") == 42]


def event_types(csms: FakeCsms) -> list[str]:
    return [p["type"] for p in incoming(csms, "SecurityEventNotification")]


@pytest.mark.parametrize("version", [V16, V201])
async def test_SIM_05_SIM_06_TC_L_01_TC_N_35_download_verify_install_and_upload(
    tmp_path: Path, version: OcppVersion, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    maker = Maker(tmp_path)
    with https_files(tmp_path) as files:
        path = f"/files/firmware/{TOKEN}/fw-2.1.0.bin"
        files.files[path] = maker.image.read_bytes()
        async with fake_csms() as csms:
            config = station(
                csms,
                version,
                heartbeat_interval=30.0,
                csms_root_pem=files.ca_pem,  # the file server shows the CSMS's certificate
                manufacturer_root_pem=pem(maker.root),
            )
            runner = StationRunner(config)
            async with running(runner):
                await csms.wait_for(lambda: runner.state.booted.is_set())
                action = "SignedUpdateFirmware" if version is V16 else "UpdateFirmware"
                payload = firmware_request(maker, files.url(path), maker.signature())
                answer = await csms.call(action, payload)
                assert answer[2] == {"status": "Accepted"}
                await csms.wait_for(lambda: "FirmwareUpdated" in event_types(csms))
                assert fw_statuses(csms, version) == [
                    "Downloading",
                    "Downloaded",
                    "SignatureVerified",
                    "Installing",
                    "InstallRebooting",
                    "Installed",
                ]
                boots = incoming(csms, "BootNotification")
                assert len(boots) == 2
                if version is V16:
                    assert boots[1]["firmwareVersion"] == "fw-2.1.0"
                else:
                    assert boots[1]["chargingStation"]["firmwareVersion"] == "fw-2.1.0"
                    assert boots[1]["reason"] == "FirmwareUpdate"

                log_url = files.url(f"/files/logs/{TOKEN}")
                get_log = {
                    "logType": "SecurityLog",
                    "requestId": 9,
                    "log": {"remoteLocation": log_url},
                }
                answer = await csms.call("GetLog", get_log)
                assert answer[2]["status"] == "Accepted"
                filename = answer[2]["filename"]

                def log_statuses() -> list[str]:
                    return [p["status"] for p in incoming(csms, "LogStatusNotification")]

                await csms.wait_for(lambda: "Uploaded" in log_statuses())
                assert log_statuses() == ["Uploading", "Uploaded"]
                [upload] = files.uploads
                assert (upload.field_name, upload.filename) == ("file", filename)
                lines = upload.content.decode().splitlines()
                assert any(line.endswith("StartupOfTheDevice") for line in lines)
                assert any(" FirmwareUpdated " in line for line in lines)

                # PermissionDenied on 403 (N01.FR.10).
                get_log = {**get_log, "requestId": 10}
                get_log["log"] = {"remoteLocation": files.url("/files/logs/denied")}
                await csms.call("GetLog", get_log)
                await csms.wait_for(lambda: "PermissionDenied" in log_statuses())
    # The token is in the URL path: never logged at INFO or above (the DEBUG wire trace of
    # chargewarden.rpc.trace shows whole frames, as it does for every message).
    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert any("transfer" in m for m in shown)
    assert not [m for m in shown if TOKEN in m]
    assert f"localhost:{files.port}" in caplog.text  # the host is


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_081_TC_L_06_tampered_download_is_refused(
    tmp_path: Path, version: OcppVersion
) -> None:
    maker = Maker(tmp_path)
    signature = maker.signature()
    with https_files(tmp_path) as files:
        path = f"/files/firmware/{TOKEN}/fw-2.1.0.bin"
        files.files[path] = maker.image.read_bytes()[:-1] + b"\x00"
        async with fake_csms() as csms:
            config = station(
                csms, version, csms_root_pem=files.ca_pem, manufacturer_root_pem=pem(maker.root)
            )
            runner = StationRunner(config)
            async with running(runner):
                await csms.wait_for(lambda: runner.state.booted.is_set())
                action = "SignedUpdateFirmware" if version is V16 else "UpdateFirmware"
                await csms.call(action, firmware_request(maker, files.url(path), signature))
                await csms.wait_for(lambda: "InvalidFirmwareSignature" in event_types(csms))
                assert fw_statuses(csms, version) == [
                    "Downloading",
                    "Downloaded",
                    "InvalidSignature",
                ]
                assert len(incoming(csms, "BootNotification")) == 1  # no reboot


async def test_transfers_verify_the_server_and_bound_the_size(tmp_path: Path) -> None:
    """FileTransfers alone: the CSMS roots decide who the file server may be; a file above
    the limit is refused; an HTTP error is reported with its status."""
    with https_files(tmp_path) as files:
        path = f"/files/firmware/{TOKEN}/big.bin"
        files.files[path] = b"x" * 5000
        task = FirmwareDownload(1, 1, files.url(path))

        def transfers(csms_root_pem: bytes, **options: Any) -> FileTransfers:
            config = StationConfig("CS1", V201, "ws://127.0.0.1:1", csms_root_pem=csms_root_pem)
            core = StationCore(config)
            return FileTransfers(core, clock=core.now, on_change=lambda: None, **options)

        assert await transfers(files.ca_pem).fetch(task) == b"x" * 5000
        small = await transfers(files.ca_pem, max_download_bytes=4096).fetch(task)
        assert isinstance(small, TransferError) and "larger than 4096" in small.reason
        missing = await transfers(files.ca_pem).fetch(FirmwareDownload(2, 2, files.url("/no")))
        assert isinstance(missing, TransferError) and missing.http_status == 404
        stranger = await transfers(pem(make_ca("Somebody Else")[0])).fetch(task)
        assert isinstance(stranger, TransferError)
        assert "CERTIFICATE_VERIFY_FAILED" in stranger.reason and TOKEN not in stranger.reason
        plain = FirmwareDownload(3, 3, f"http://127.0.0.1:{files.port}{path}")
        refused = await transfers(files.ca_pem).fetch(plain)  # TLS server, plain client
        assert isinstance(refused, TransferError) and TOKEN not in refused.reason
