"""The simulated station over TLS (security profiles 2 and 3, SIM-01) against a TLS server
written here: real handshakes on 127.0.0.1 with a throw-away PKI made in the test.

The server is a websockets TLS server that records what each station presented (Authorization
header, client certificate) and answers every call; the station's refusals (untrusted or
misnamed CSMS certificate, TLS below 1.2) must show up as refused outcomes and security events.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import logging
import os
import socket
import ssl
import tempfile
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from chargewarden.cli import app
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.runner import StationRunner

V16, V201 = OcppVersion.V16, OcppVersion.V201
KEY = bytes.fromhex("0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF")
PASSWORD = "Station-Password-0123456789"
IDENTITY = "AL1000"
WAIT = 5.0  # guard against a hang; never a timing assertion
CERT_EVENT = {V16: "InvalidCentralSystemCertificate", V201: "InvalidCsmsCertificate"}


# ---- a throw-away PKI ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def issue(
    subject: x509.Name,
    issuer: Issued | None,
    *,
    ca: bool = False,
    san: list[x509.GeneralName] | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> Issued:
    """EC P-256 keys: fast to make. `issuer` None → self-signed."""
    now = datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


@dataclass(frozen=True)
class Pki:
    root: Issued
    server: Issued  # CN localhost, SAN localhost + 127.0.0.1
    client_ca: Issued  # intermediate under the root: the station sends leaf + chain
    client: Issued  # CN = serial number, O = CPO (whitepaper A00.FR.404/405)
    stranger_server: Issued  # same names, from a CA nobody trusts

    @property
    def client_chain_pem(self) -> bytes:
        return self.client.cert_pem + self.client_ca.cert_pem


@pytest.fixture(scope="module")
def pki() -> Pki:
    root = issue(name("Test CSMS Root"), None, ca=True)
    server_names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    server = issue(name("localhost"), root, san=server_names, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client_ca = issue(name("Test Station Sub-CA"), root, ca=True)
    client = issue(name(IDENTITY, "ACME CPO"), client_ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    stranger_root = issue(name("Stranger Root"), None, ca=True)
    stranger = issue(name("localhost"), stranger_root, san=server_names)
    return Pki(root, server, client_ca, client, stranger)


def server_context(
    served: Issued, *, client_roots: bytes | None = None, require_client: bool = False
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_chain(context, served)
    if client_roots is not None:
        context.load_verify_locations(cadata=client_roots.decode())
        context.verify_mode = ssl.CERT_REQUIRED if require_client else ssl.CERT_OPTIONAL
    return context


def load_chain(context: ssl.SSLContext, served: Issued) -> None:
    # The ssl module loads certificates from files only; a test server may use a temp file.
    with tempfile.TemporaryDirectory() as directory:
        path = f"{directory}/server.pem"
        with open(path, "wb") as file:
            file.write(served.cert_pem + served.key_pem)
        context.load_cert_chain(path)


# ---- a small TLS CSMS ---------------------------------------------------------------------------


@dataclass
class Seen:
    authorization: str | None
    peer_common_name: str | None
    tls_version: str | None


class TlsCsms:
    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.seen: list[Seen] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._changed = asyncio.Condition()
        self.server: Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(next(iter(self.server.sockets)).getsockname()[1])

    def url(self, host: str = "127.0.0.1") -> str:
        return f"wss://{host}:{self.port}/ocpp"

    def events(self) -> list[dict[str, Any]]:
        return [p for a, p in self.calls if a == "SecurityEventNotification"]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(predicate)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        ssl_object = connection.transport.get_extra_info("ssl_object")
        peer = ssl_object.getpeercert() if ssl_object is not None else None
        common_name = None
        for rdn in (peer or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    common_name = value
        self.seen.append(
            Seen(
                request.headers.get("Authorization"),
                common_name,
                ssl_object.version() if ssl_object is not None else None,
            )
        )
        return None

    @staticmethod
    def choose(connection: ServerConnection, offered: Any) -> Subprotocol | None:
        for protocol in ("ocpp1.6", "ocpp2.0.1"):
            if protocol in offered:
                return Subprotocol(protocol)
        return None

    async def handler(self, ws: ServerConnection) -> None:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                frame = json.loads(text)
                if frame[0] != 2:
                    continue
                action, payload = frame[2], frame[3]
                answer: dict[str, Any] = {}
                if action == "BootNotification":
                    answer = {"status": "Accepted", "currentTime": now, "interval": 300}
                elif action == "Heartbeat":
                    answer = {"currentTime": now}
                await ws.send(json.dumps([3, frame[1], answer]))
                async with self._changed:
                    self.calls.append((action, payload))
                    self._changed.notify_all()


@contextlib.asynccontextmanager
async def tls_csms(context: ssl.SSLContext) -> AsyncIterator[TlsCsms]:
    csms = TlsCsms(context)
    async with serve(
        csms.handler,
        "127.0.0.1",
        0,
        ssl=context,
        process_request=csms.process_request,
        select_subprotocol=csms.choose,
    ) as server:
        csms.server = server
        yield csms


def station(version: OcppVersion, url: str, **overrides: Any) -> StationConfig:
    params: dict[str, Any] = {
        "identity": IDENTITY,
        "ocpp_version": version,
        "url": url,
        "security_profile": 2,
        "auth_key": KEY,
        "password": PASSWORD,
        "heartbeat_interval": 30.0,
        "reconnect_backoff_initial": 0.02,
        "reconnect_backoff_max": 0.05,
    }
    params.update(overrides)
    return StationConfig(**params)


@contextlib.asynccontextmanager
async def running(runner: StationRunner) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(WAIT):
            await task


async def eventually(predicate: Callable[[], bool]) -> None:
    """For station-side state, which nothing signals: poll briefly."""
    async with asyncio.timeout(WAIT):
        while not predicate():  # noqa: ASYNC110 - nothing to wait on but the state itself
            await asyncio.sleep(0.005)


def log_types(runner: StationRunner) -> list[str]:
    return [entry.type for entry in runner.core.security_log]


# ---- profile 2 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [V16, V201])
async def test_profile_2_sends_basic_auth_over_a_verified_tls_connection(
    pki: Pki, version: OcppVersion
) -> None:
    async with tls_csms(server_context(pki.server)) as csms:
        # Only our test root is trusted: the handshake succeeding is the chain check passing.
        config = station(version, csms.url(), csms_root_pem=pki.root.cert_pem)
        outcome = await StationRunner(config).connect_once()
    assert outcome.admitted, outcome.reason
    assert csms.seen[0].tls_version in ("TLSv1.2", "TLSv1.3")
    header = csms.seen[0].authorization
    assert header is not None and header.startswith("Basic ")
    secret = KEY if version is V16 else PASSWORD.encode()
    assert base64.b64decode(header[6:]) == f"{IDENTITY}:".encode() + secret


async def test_server_hostname_override_is_what_the_certificate_is_checked_against(
    pki: Pki,
) -> None:
    async with tls_csms(server_context(pki.server)) as csms:
        by_name = station(
            V201, csms.url(), csms_root_pem=pki.root.cert_pem, tls_server_hostname="localhost"
        )
        assert (await StationRunner(by_name).connect_once()).admitted
        # SIM-01: a certificate valid for another name is refused like an untrusted one.
        misnamed = station(
            V201, csms.url(), csms_root_pem=pki.root.cert_pem, tls_server_hostname="csms.example"
        )
        runner = StationRunner(misnamed)
        outcome = await runner.connect_once()
    assert (outcome.admitted, outcome.http_status) == (False, None)
    assert "Hostname mismatch" in outcome.reason
    assert log_types(runner) == ["InvalidCsmsCertificate"]
    assert "csms.example" in (runner.core.security_log[-1].tech_info or "")
    assert len(csms.seen) == 1  # the misnamed attempt never reached HTTP: no password sent


@pytest.mark.parametrize("version", [V16, V201])
async def test_untrusted_csms_certificate_is_refused_and_reported_after_reconnecting(
    pki: Pki, version: OcppVersion
) -> None:
    context = server_context(pki.stranger_server)
    async with tls_csms(context) as csms:
        runner = StationRunner(station(version, csms.url(), csms_root_pem=pki.root.cert_pem))
        async with running(runner):
            await eventually(lambda: runner.state.refused_connections >= 3)
            assert csms.seen == []  # refused during the handshake: credentials never sent
            assert runner.state.last_outcome is not None
            assert "unable to get local issuer certificate" in runner.state.last_outcome.reason
            # The CSMS fixes its certificate; new handshakes get the trusted one.
            load_chain(context, pki.server)
            await eventually(lambda: runner.state.booted.is_set())
            await csms.wait_for(
                lambda: any(e["type"] == "StartupOfTheDevice" for e in csms.events())
            )
    refusals = [t for t in log_types(runner) if t == CERT_EVENT[version]]
    assert len(refusals) >= 3  # every refusal is in the security log
    delivered = [e for e in csms.events() if e["type"] == CERT_EVENT[version]]
    if version is V201:
        # Critical in 2.0.1: queued while refused, sent once after the Accepted boot, and only
        # once however many times the handshake failed.
        assert len(delivered) == 1
        assert "unable to get local issuer certificate" in delivered[0]["techInfo"]
        actions = [a for a, _ in csms.calls]
        assert actions.index("BootNotification") < actions.index("SecurityEventNotification")
    else:
        # 1.6 whitepaper §8 lists InvalidCentralSystemCertificate as not critical: security log
        # only (the notification order puts it before StartupOfTheDevice if it were sent).
        assert delivered == []


# ---- profile 3 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [V16, V201])
async def test_profile_3_presents_its_certificate_and_no_authorization_header(
    pki: Pki, version: OcppVersion
) -> None:
    context = server_context(pki.server, client_roots=pki.root.cert_pem, require_client=True)
    async with tls_csms(context) as csms:
        config = station(
            version,
            csms.url(),
            security_profile=3,
            csms_root_pem=pki.root.cert_pem,
            client_cert_pem=pki.client_chain_pem,  # leaf + sub-CA: the server knows the root
            client_key_pem=pki.client.key_pem,
        )
        runner = StationRunner(config)
        async with running(runner):
            await eventually(lambda: runner.state.booted.is_set())
    assert csms.seen[0].peer_common_name == IDENTITY
    assert csms.seen[0].authorization is None  # profile 3: the certificate is the credential


async def test_profile_3_without_a_certificate_is_turned_away_by_the_server(pki: Pki) -> None:
    context = server_context(pki.server, client_roots=pki.root.cert_pem, require_client=True)
    async with tls_csms(context) as csms:
        config = station(V201, csms.url(), security_profile=3, csms_root_pem=pki.root.cert_pem)
        runner = StationRunner(config)
        outcome = await runner.connect_once()
    assert (outcome.admitted, outcome.http_status) == (False, None)
    # TLS 1.3: our side of the handshake completes, then the server just closes.
    assert outcome.reason.startswith("TLS: the CSMS closed the connection")
    assert csms.seen == []
    # The CSMS refusing us is the CSMS's event, not one the station records (SIM-01 lists the
    # station's own refusals only).
    assert log_types(runner) == []


# ---- TLS below 1.2 ------------------------------------------------------------------------------


@contextlib.contextmanager
def blocking_tls_server(context: ssl.SSLContext) -> Iterator[int]:
    """A TLS server on a thread with blocking sockets, answering handshakes until closed.

    Not websockets: asyncio's TLS server drops the connection without sending OpenSSL's alert
    when a handshake fails, so the station would only see a reset. A blocking server sends the
    protocol_version alert, which is what a station meets at a real TLS 1.0/1.1-only endpoint.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    done = threading.Event()

    def serve_forever() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(WAIT)
            with conn, contextlib.suppress(OSError):
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        done.set()
        thread.join(WAIT)
        listener.close()


def tls11_only(context: ssl.SSLContext) -> ssl.SSLContext:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl.TLSVersion.TLSv1_1 itself
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def legacy_handshake_works(port: int, root_pem: bytes) -> bool:
    """Can a TLS 1.1 client (built here, never the simulator) complete a handshake?"""
    client = tls11_only(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    client.load_verify_locations(cadata=root_pem.decode())
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            return tls.version() == "TLSv1.1"
    except (ssl.SSLError, OSError):
        return False


@pytest.mark.parametrize("version", [V16, V201])
async def test_csms_offering_only_tls_1_1_is_refused_with_invalid_tls_version(
    pki: Pki, version: OcppVersion
) -> None:
    if not ssl.HAS_TLSv1_1:
        pytest.skip("this OpenSSL was built without TLS 1.1")
    try:
        context = tls11_only(server_context(pki.server))
    except ssl.SSLError as exc:
        pytest.skip(f"this OpenSSL refuses a TLS 1.1 server even at SECLEVEL=0: {exc}")
    with blocking_tls_server(context) as port:
        if not await asyncio.to_thread(legacy_handshake_works, port, pki.root.cert_pem):
            pytest.skip("this OpenSSL cannot complete a TLS 1.1 handshake even at SECLEVEL=0")
        config = station(version, f"wss://127.0.0.1:{port}/ocpp", csms_root_pem=pki.root.cert_pem)
        runner = StationRunner(config)
        outcome = await runner.connect_once()
    assert (outcome.admitted, outcome.http_status) == (False, None)
    assert "PROTOCOL_VERSION" in outcome.reason
    assert log_types(runner) == ["InvalidTLSVersion"]


# ---- the command line ---------------------------------------------------------------------------


@contextlib.contextmanager
def threaded_tls_csms(context: ssl.SSLContext) -> Iterator[TlsCsms]:
    """The TLS CSMS on a loop of its own thread, so the CLI can own the main thread (it runs
    asyncio.run and installs signal handlers)."""
    loop = asyncio.new_event_loop()
    ready: asyncio.Future[TlsCsms] = loop.create_future()
    stop = asyncio.Event()

    async def main() -> None:
        async with tls_csms(context) as csms:
            ready.set_result(csms)
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(asyncio.wait_for(ready, WAIT), loop).result()
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(WAIT)
        loop.close()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI points the root logger at its (here: CliRunner's) stderr; undo that after."""
    names = ("", "websockets", "uvicorn.access")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    yield
    for n, (handlers, level) in saved.items():
        logging.getLogger(n).handlers[:] = handlers
        logging.getLogger(n).setLevel(level)


def write_private(path: Path, data: bytes) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "wb") as file:
        file.write(data)
    return str(path)


@pytest.mark.usefixtures("restore_logging")
def test_cli_profile_3_station_and_fleet_with_one_certificate_each(
    pki: Pki, tmp_path: Path
) -> None:
    root = write_private(tmp_path / "root.pem", pki.root.cert_pem)
    for identity in ("CLI-1", "FL-00001", "FL-00002"):
        leaf = issue(name(identity, "ACME CPO"), pki.client_ca)
        write_private(tmp_path / f"{identity}.crt", leaf.cert_pem + pki.client_ca.cert_pem)
        write_private(tmp_path / f"{identity}.key", leaf.key_pem)
    context = server_context(pki.server, client_roots=pki.root.cert_pem, require_client=True)
    with threaded_tls_csms(context) as csms:
        url = csms.url()
        single = CliRunner().invoke(
            app,
            ["sim", "--url", url, "--identity", "CLI-1", "--ocpp", "2.0.1", "--profile", "3",
             "--csms-root", root, "--cert", str(tmp_path / "CLI-1.crt"),
             "--key", str(tmp_path / "CLI-1.key"), "--tls-server-name", "localhost",
             "--duration", "0.3"],
        )  # fmt: skip
        fleet = CliRunner().invoke(
            app,
            ["sim", "fleet", "--count", "2", "--prefix", "FL-", "--url", url, "--ocpp", "1.6",
             "--profile", "3", "--csms-root", root, "--cert", str(tmp_path / "{identity}.crt"),
             "--key", str(tmp_path / "{identity}.key"), "--duration", "0.3"],
        )  # fmt: skip
    assert single.exit_code == 0, single.output
    assert "CLI-1: admitted (ocpp2.0.1)" in single.stdout
    assert fleet.exit_code == 0, fleet.output
    assert "fleet of 2: admitted 2, refused 0" in fleet.stdout
    assert sorted(s.peer_common_name or "" for s in csms.seen) == ["CLI-1", "FL-00001", "FL-00002"]
    assert {s.authorization for s in csms.seen} == {None}
