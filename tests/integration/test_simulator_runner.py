"""StationRunner against a tiny CSMS written here: real sockets on 127.0.0.1, no mocks.

The fake CSMS checks the Authorization header as bytes, answers the station's calls and can call
the station, so these tests see exactly what the simulator puts on the wire (SIM-04, SIM-06,
RPC-01, SEC-03/04).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.fleet import fleet_configs, run_fleet
from chargewarden.simulator.runner import StationRunner

V16, V201 = OcppVersion.V16, OcppVersion.V201
KEY = bytes.fromhex("0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF")
NEW_KEY_HEX = "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678"
PASSWORD = "Station-Password-0123456789"
WAIT = 3.0  # guard against a hang; never a timing assertion


class FakeCsms:
    def __init__(self, scheme: str = "ws") -> None:
        self.scheme = scheme
        self.secrets: dict[str, set[bytes]] = {}  # identity → accepted passwords (raw bytes)
        self.refusal = "bad credentials"
        self.select_subprotocol = True
        self.boot_statuses: list[str] = []  # answers to the next boots; then "Accepted"
        self.auth_headers: list[str | None] = []
        self.wire: list[tuple[str, Any]] = []  # ("in" | "out", frame) in wire order
        self._changed = asyncio.Condition()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self.connection: ServerConnection | None = None
        self.server: Server | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"{self.scheme}://127.0.0.1:{port}/ocpp"

    def calls(self, action: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        return [
            (f[2], f[3])
            for d, f in self.wire
            if d == "in" and f[0] == 2 and (action is None or f[2] == action)
        ]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ---- handshake ---------------------------------------------------------------------------

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        header = request.headers.get("Authorization")
        self.auth_headers.append(header)
        identity = request.path.rsplit("/", 1)[-1]
        expected = {identity.encode() + b":" + s for s in self.secrets.get(identity, set())}
        presented = None
        if header is not None and header.startswith("Basic "):
            presented = base64.b64decode(header[6:])  # bytes: a 1.6 key is binary
        if presented not in expected:
            return connection.respond(HTTPStatus.UNAUTHORIZED, self.refusal)
        return None

    def choose(self, connection: ServerConnection, offered: Sequence[str]) -> Subprotocol | None:
        if not self.select_subprotocol:
            return None
        for name in ("ocpp1.6", "ocpp2.0.1"):
            if name in offered:
                return Subprotocol(name)
        return None  # RPC-01: complete the handshake without one, then close

    # ---- messages ----------------------------------------------------------------------------

    async def handler(self, ws: ServerConnection) -> None:
        if ws.subprotocol is None:
            await ws.close()
            return
        self.connection = ws
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                try:
                    frame = json.loads(text)
                except ValueError:
                    self.wire.append(("in", text))
                    await self._send(ws, [4, "-1", "RpcFrameworkError", "not JSON", {}])
                    continue
                self.wire.append(("in", frame))
                if frame[0] == 2:
                    await self._send(ws, [3, frame[1], self._answer(frame[2], frame[3])])
                elif frame[1] in self._pending:
                    self._pending.pop(frame[1]).set_result(frame)
                await self._notify()

    def _answer(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        if action == "BootNotification":
            status = self.boot_statuses.pop(0) if self.boot_statuses else "Accepted"
            return {"status": status, "currentTime": now, "interval": 300}
        if action == "Heartbeat":
            return {"currentTime": now}
        return {}  # StatusNotification, SecurityEventNotification

    async def _send(self, ws: ServerConnection, frame: list[Any]) -> None:
        self.wire.append(("out", frame))
        await ws.send(json.dumps(frame))

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        assert self.connection is not None
        message_id = str(uuid.uuid4())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self._send(self.connection, [2, message_id, action, payload])
        async with asyncio.timeout(WAIT):
            return await future


@contextlib.asynccontextmanager
async def fake_csms(tls: ssl.SSLContext | None = None) -> AsyncIterator[FakeCsms]:
    fake = FakeCsms("wss" if tls else "ws")
    async with serve(
        fake.handler,
        "127.0.0.1",
        0,
        process_request=fake.process_request,
        select_subprotocol=fake.choose,
        ssl=tls,
    ) as server:
        fake.server = server
        yield fake


@pytest.fixture
async def csms() -> AsyncIterator[FakeCsms]:
    async with fake_csms() as fake:
        yield fake


def tls_material(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 (EC keys: fast to make)."""
    now = datetime.now(UTC)

    def build(subject: str, issuer: x509.Name | None, key: Any, signer: Any, ca: bool) -> Any:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = build("Sim Test CA", None, ca_key, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build("127.0.0.1", ca_cert.subject, key, ca_key, ca=False)
    (tmp_path / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "server.pem")
    return server, tmp_path / "ca.pem"


def station(csms: FakeCsms, version: OcppVersion, **overrides: Any) -> StationConfig:
    params: dict[str, Any] = {
        "identity": "AL1000",
        "ocpp_version": version,
        "url": csms.base_url,
        "auth_key": KEY,
        "password": PASSWORD,
        "heartbeat_interval": 0.05,
    }
    params.update(overrides)
    secret = KEY if version is V16 else PASSWORD.encode()
    csms.secrets.setdefault(params["identity"], set()).add(secret)
    return StationConfig(**params)


async def eventually(predicate: Callable[[], bool]) -> None:
    """For station-side state, which nothing signals: poll briefly."""
    async with asyncio.timeout(WAIT):
        while not predicate():  # noqa: ASYNC110 - nothing to wait on but the state itself
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(runner: StationRunner) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        async with asyncio.timeout(WAIT):
            await task
    assert not runner.state.connected


@pytest.mark.parametrize("version", [V16, V201])
async def test_boot_status_startup_event_and_heartbeats(csms: FakeCsms, version: OcppVersion):
    runner = StationRunner(station(csms, version))
    async with running(runner):
        await csms.wait_for(lambda: len(csms.calls("Heartbeat")) >= 2)
        async with asyncio.timeout(WAIT):
            await runner.state.booted.wait()
        assert runner.state.connected
        assert runner.state.boot_status == "Accepted"
        actions = [a for a, _ in csms.calls()]
        assert actions[:3] == [
            "BootNotification",
            "StatusNotification",
            "SecurityEventNotification",
        ]
        assert csms.calls("SecurityEventNotification")[0][1]["type"] == "StartupOfTheDevice"
        assert runner.state.sent >= 5 and runner.state.received >= 4
    # SEC-04: 1.6 sends the raw AuthorizationKey bytes (OCPP-J 1.6 §6.2.2 example).
    if version is V16:
        assert csms.auth_headers[0] == "Basic QUwxMDAwOgABAgMEBQYH////////////////"
    assert runner.state.last_outcome is not None
    assert runner.state.last_outcome.subprotocol == version.subprotocol


async def test_profile_2_over_tls_verifies_the_csms(tmp_path: Path) -> None:
    server_tls, ca_file = tls_material(tmp_path)
    async with fake_csms(server_tls) as tls_csms:
        trusting = ssl.create_default_context(cafile=str(ca_file))
        config = station(tls_csms, V201, security_profile=2, heartbeat_interval=30.0)
        outcome = await StationRunner(config, ssl_context=trusting).connect_once()
        assert outcome.admitted, outcome.reason
        # SIM-01: a CSMS certificate the station cannot verify is refused and logged.
        stranger = StationRunner(config, ssl_context=ssl.create_default_context())
        refused = await stranger.connect_once()
        assert (refused.admitted, refused.http_status) == (False, None)
        assert stranger.core.security_log[-1].type == "InvalidCsmsCertificate"


async def test_401_handshake_is_a_refused_outcome(csms: FakeCsms) -> None:
    csms.refusal = "unknown credentials for AL1000"
    runner = StationRunner(station(csms, V16, auth_key=b"\x01" * 20))
    csms.secrets["AL1000"] = {KEY}  # the station presents another key
    outcome = await runner.connect_once()
    assert (outcome.admitted, outcome.http_status, outcome.subprotocol) == (False, 401, None)
    assert outcome.reason == "unknown credentials for AL1000"
    assert runner.core.security_log[-1].type == "FailedToAuthenticateAtCentralSystem"


async def test_no_common_subprotocol_is_refused(csms: FakeCsms) -> None:
    runner = StationRunner(station(csms, V201, offered_subprotocols=("ocpp9",)))
    outcome = await runner.connect_once()
    assert outcome.admitted is False
    assert outcome.http_status == 101
    assert outcome.reason == "no common subprotocol"


async def test_rotated_key_is_used_on_the_immediate_reconnect(
    csms: FakeCsms, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = StationRunner(station(csms, V16, heartbeat_interval=30.0))
    csms.secrets["AL1000"].add(bytes.fromhex(NEW_KEY_HEX))
    async with running(runner):
        await csms.wait_for(lambda: len(csms.calls("SecurityEventNotification")) == 1)
        answer = await csms.call(
            "ChangeConfiguration", {"key": "AuthorizationKey", "value": NEW_KEY_HEX}
        )
        assert answer[2] == {"status": "Accepted"}
        # PWD-01 / SIM-04: the station reconnects at once, now with the new key.
        await csms.wait_for(lambda: len(csms.calls("BootNotification")) == 2)
    new = base64.b64encode(b"AL1000:" + bytes.fromhex(NEW_KEY_HEX)).decode()
    assert csms.auth_headers[-1] == f"Basic {new}"
    assert runner.state.admitted_connections == 2
    # Neither the header nor the key reach the station's logs, even at DEBUG (SEC-05).
    # Everything but the fake CSMS's own server logger, which is not the station's.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "websockets.server")
    assert ours  # the station did log (connects, reconnect reason)
    for secret in (new, NEW_KEY_HEX, base64.b64encode(b"AL1000:" + KEY).decode()):
        assert secret not in ours


async def test_new_password_and_reset_over_the_wire_201(csms: FakeCsms) -> None:
    new_password = "Rotated-Password-9876543210"
    runner = StationRunner(station(csms, V201, heartbeat_interval=30.0))
    csms.secrets["AL1000"].add(new_password.encode())
    async with running(runner):
        await csms.wait_for(lambda: len(csms.calls("SecurityEventNotification")) == 1)
        data = {
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"},
            "attributeValue": new_password,
        }
        answer = await csms.call("SetVariables", {"setVariableData": [data]})
        assert answer[2]["setVariableResult"][0]["attributeStatus"] == "Accepted"
        await csms.wait_for(lambda: len(csms.calls("BootNotification")) == 2)
        new = base64.b64encode(f"AL1000:{new_password}".encode()).decode()
        assert csms.auth_headers[-1] == f"Basic {new}"  # PWD-02 (TC_A_09_CS)
        await csms.wait_for(lambda: len(csms.calls("StatusNotification")) == 2)
        answer = await csms.call("Reset", {"type": "Immediate"})
        assert answer[2] == {"status": "Accepted"}
        await csms.wait_for(lambda: len(csms.calls("SecurityEventNotification")) == 3)
    reasons = [p["reason"] for _, p in csms.calls("BootNotification")]
    assert reasons == ["PowerUp", "PowerUp", "RemoteReset"]
    events = [p["type"] for _, p in csms.calls("SecurityEventNotification")]
    assert events == ["StartupOfTheDevice", "ResetOrReboot", "StartupOfTheDevice"]


async def test_triggered_message_follows_its_answer(csms: FakeCsms) -> None:
    runner = StationRunner(station(csms, V201, heartbeat_interval=30.0))
    async with running(runner):
        await csms.wait_for(lambda: len(csms.calls("SecurityEventNotification")) == 1)
        answer = await csms.call("TriggerMessage", {"requestedMessage": "StatusNotification"})
        assert answer[2] == {"status": "Accepted"}
        await csms.wait_for(lambda: len(csms.calls("StatusNotification")) == 2)
    frames = [f for d, f in csms.wire if d == "in"]
    answer_at = next(i for i, f in enumerate(frames) if f[0] == 3)
    triggered_at = max(
        i for i, f in enumerate(frames) if f[0] == 2 and f[2] == "StatusNotification"
    )
    assert answer_at < triggered_at


async def test_pending_boot_serves_csms_until_a_triggered_boot_is_accepted(csms: FakeCsms):
    csms.boot_statuses = ["Pending"]  # retry interval 300 s: only the trigger can end it
    runner = StationRunner(station(csms, V201, heartbeat_interval=30.0))
    async with running(runner):
        await csms.wait_for(lambda: len(csms.calls("BootNotification")) == 1)
        await eventually(lambda: runner.state.boot_status == "Pending")
        assert not runner.state.booted.is_set()
        answer = await csms.call("TriggerMessage", {"requestedMessage": "BootNotification"})
        assert answer[2] == {"status": "Accepted"}
        await csms.wait_for(lambda: len(csms.calls("SecurityEventNotification")) == 1)
        assert runner.state.booted.is_set()
    boots = csms.calls("BootNotification")
    assert [b["reason"] for _, b in boots] == ["PowerUp", "Triggered"]
    # Nothing but the boots went out while Pending (B02.FR.02).
    assert [a for a, _ in csms.calls()][:2] == ["BootNotification", "BootNotification"]


async def test_reconnects_after_the_csms_drops_the_connection(csms: FakeCsms) -> None:
    config = station(csms, V16, heartbeat_interval=30.0, reconnect_backoff_initial=0.01)
    runner = StationRunner(config)
    async with running(runner):
        await csms.wait_for(lambda: len(csms.calls("SecurityEventNotification")) == 1)
        assert csms.connection is not None
        await csms.connection.close()
        await csms.wait_for(lambda: len(csms.calls("BootNotification")) == 2)
    assert runner.state.admitted_connections == 2
    # Booting again on a fresh connection is not a new start-up of the device.
    assert len(csms.calls("SecurityEventNotification")) == 1


async def test_send_call_send_raw_and_recv_raw(csms: FakeCsms) -> None:
    runner = StationRunner(station(csms, V201, heartbeat_interval=30.0))
    async with running(runner):
        async with asyncio.timeout(WAIT):
            await runner.state.booted.wait()
        assert "currentTime" in await runner.send_call("Heartbeat", {})
        await runner.send_raw("[2, not json")
        reply = json.loads(await runner.recv_raw(WAIT))
        assert reply[:3] == [4, "-1", "RpcFrameworkError"]
        assert runner.state.connected  # the connection survives a malformed frame


async def test_fleet_reports_admitted_and_refused(csms: FakeCsms) -> None:
    base = {"ocpp_version": V201, "url": csms.base_url, "heartbeat_interval": 30.0}
    configs = fleet_configs("SIM", 3, password_for=lambda identity: PASSWORD, **base)
    assert [c.identity for c in configs] == ["SIM00001", "SIM00002", "SIM00003"]
    for config in configs[:2]:
        csms.secrets[config.identity] = {PASSWORD.encode()}
    stop = asyncio.Event()
    fleet = asyncio.create_task(run_fleet(configs, stop, concurrency_of_connects=2))
    await csms.wait_for(lambda: len(csms.calls("SecurityEventNotification")) == 2)
    stop.set()
    async with asyncio.timeout(WAIT):
        report = await fleet
    assert (report.total, report.admitted, report.refused) == (3, 2, 1)
    assert report.refusal_reasons() == {"401: bad credentials": 1}
