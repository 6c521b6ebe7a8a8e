"""The simulated station manages its certificates over OCPP (SIM-02, SIM-03; CRT-01..06 from the
station's side), both versions.

First through the station core's own handlers, every request, response and queued call checked
against the official schemas; then over real TLS on 127.0.0.1: a profile-3 station gets a new
certificate and presents it on its next connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from chargewarden.pki.hashdata import HashAlgorithm, certificate_hash_data
from chargewarden.pki.issue import issue_ca, issue_leaf, name
from chargewarden.pki.keys import PrivateKey
from chargewarden.rpc.schemas import schema_registry
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.core import StationCore
from chargewarden.simulator.runner import StationRunner

V16, V201 = OcppVersion.V16, OcppVersion.V201
NOW = datetime.now(UTC).replace(microsecond=0)
SERIAL = "SN-0042"
CPO = "Example CPO"
WAIT = 10.0  # guard against a hang; never a timing assertion
ACCEPTED_BOOT = {"status": "Accepted", "interval": 300, "currentTime": "2025-03-01T12:00:00Z"}
TRIGGER = {
    V16: ("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}),
    V201: ("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}),
}
INVALID_EVENT = {V16: "InvalidChargePointCertificate", V201: "InvalidChargingStationCertificate"}
CSMS_ROOT = {V16: "CentralSystemRootCertificate", V201: "CSMSRootCertificate"}


# ---- a throw-away PKI ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def ca(cn: str, issuer: Issued | None = None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_ca(
        name(cn, CPO), key.public_key(), issuer.key if issuer else key,
        issuer_cert=issuer.cert if issuer else None,
        not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=30),
        path_length=None if issuer is None else 0,
    )  # fmt: skip
    return Issued(cert, key)


def leaf(
    issuer: Issued, public_key: Any, *, cn: str = SERIAL, o: str = CPO, server: bool = False
) -> x509.Certificate:
    return issue_leaf(
        issuer.cert, issuer.key, public_key, cn=cn, o=o,
        not_before=NOW - timedelta(minutes=5), not_after=NOW + timedelta(days=10),
        client=not server, dns_names=("localhost",) if server else (),
        ip_addresses=("127.0.0.1",) if server else (),
    )  # fmt: skip


@dataclass(frozen=True)
class Pki:
    root: Issued
    station_ca: Issued

    def sign(self, csr_pem: str, **changes: Any) -> str:
        """What the CSMS's CA answers to a CSR: leaf + sub-CA, PEM."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        assert csr.is_signature_valid
        issued = leaf(self.station_ca, csr.public_key(), **changes)
        return (issued.public_bytes(serialization.Encoding.PEM) + self.station_ca.pem).decode()


@pytest.fixture(scope="module")
def pki() -> Pki:
    root = ca("Test CSMS Root")
    return Pki(root, ca("Test Station CA", root))


# ---- through the core's handlers ----------------------------------------------------------------


def config(version: OcppVersion, pki: Pki, **overrides: Any) -> StationConfig:
    params: dict[str, Any] = {
        "identity": "CP-1",
        "ocpp_version": version,
        "url": "wss://csms.example/ocpp",
        "serial_number": SERIAL,
        "cpo_name": CPO,
        "security_profile": 2,
        "auth_key": b"\x01" * 20,
        "password": "Station-Password-0123456789",
        "csms_root_pem": pki.root.pem,
    }
    params.update(overrides)
    return StationConfig(**params)


class Station:
    """A booted core; every message in and out is schema-checked and kept."""

    def __init__(self, core: StationCore) -> None:
        self.core = core
        self.registry = schema_registry(core.version)
        self.seen: list[Any] = []
        core.on_connected(NOW)
        core.on_boot_response(ACCEPTED_BOOT, NOW)
        core.take_outgoing()

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.registry.validate_request(action, payload)
        response = await self.core.handlers()[action](payload)
        self.registry.validate_response(action, response)
        self.seen += [payload, response]
        return response

    def sent(self) -> list[tuple[str, dict[str, Any]]]:
        messages = self.core.take_outgoing()
        for action, payload in messages:
            self.registry.validate_request(action, payload)
            self.seen.append(payload)
        return messages

    async def csr(self, trigger: tuple[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """Trigger a CSR; the SignCertificate it queues (answered Accepted)."""
        action, payload = trigger or TRIGGER[self.core.version]
        assert await self.call(action, payload) == {"status": "Accepted"}
        [(sent_action, request)] = self.sent()
        assert sent_action == "SignCertificate"
        self.core.on_response("SignCertificate", {"status": "Accepted"}, NOW, request)
        return request


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize("profile", [2, 3])
async def test_certificate_signing_round_trip(pki: Pki, version: OcppVersion, profile: int) -> None:
    extra = {}
    if profile == 3:  # provisioned with a first certificate, as a profile-3 station must be
        first_key = ec.generate_private_key(ec.SECP256R1())
        first = leaf(pki.station_ca, first_key.public_key())
        extra = {
            "client_cert_pem": first.public_bytes(serialization.Encoding.PEM) + pki.station_ca.pem,
            "client_key_pem": Issued(first, first_key).key_pem,
        }
    station = Station(StationCore(config(version, pki, security_profile=profile, **extra)))
    request = await station.csr()
    assert ("certificateType" in request) is (version is V201)  # 1.6: csr only
    csr = x509.load_pem_x509_csr(request["csr"].encode())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SERIAL
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == CPO

    signed: dict[str, Any] = {"certificateChain": pki.sign(request["csr"])}
    if version is V201:
        signed["certificateType"] = "ChargingStationCertificate"
    assert await station.call("CertificateSigned", signed) == {"status": "Accepted"}
    core = station.core
    assert core.certificates.client_certificate.public_key() == csr.public_key()  # type: ignore[union-attr]
    assert core.station_certificate_installed
    # Profile 3: the certificate is the credential, so the station reconnects with it (A02.FR.08).
    assert core.reconnect_requested is (profile == 3)
    assert station.sent() == []  # no security event for a good chain

    # The station's own certificate cannot be deleted (M04.FR.05, TC_M_23_CS).
    own = certificate_hash_data(
        core.certificates.client_certificate,
        issuer=pki.station_ca.cert,  # type: ignore[arg-type]
    )
    assert await station.call("DeleteCertificate", {"certificateHashData": own.to_ocpp()}) == {
        "status": "Failed"
    }
    assert_no_private_key(station)


@pytest.mark.parametrize("version", [V16, V201])
async def test_invalid_certificate_is_rejected_with_a_security_event(
    pki: Pki, version: OcppVersion
) -> None:
    station = Station(StationCore(config(version, pki)))
    request = await station.csr()
    bad = {"certificateChain": pki.sign(request["csr"], cn="SOMEONE-ELSE")}
    assert await station.call("CertificateSigned", bad) == {"status": "Rejected"}
    [(action, event)] = station.sent()
    assert action == "SecurityEventNotification"
    assert event["type"] == INVALID_EVENT[version]  # A02.FR.07, TC_A_14_CS
    assert "SOMEONE-ELSE" in event["techInfo"]
    assert station.core.certificates.client_certificate is None
    # A corrected chain for the same CSR is still accepted.
    good = {"certificateChain": pki.sign(request["csr"])}
    assert await station.call("CertificateSigned", good) == {"status": "Accepted"}
    assert_no_private_key(station)


@pytest.mark.parametrize("version", [V16, V201])
async def test_rejected_sign_certificate_is_logged_and_not_retried(
    pki: Pki, version: OcppVersion
) -> None:
    station = Station(StationCore(config(version, pki)))
    action, payload = TRIGGER[version]
    assert await station.call(action, payload) == {"status": "Accepted"}
    [(_, request)] = station.sent()
    station.core.on_response("SignCertificate", {"status": "Rejected"}, NOW, request)
    assert station.sent() == []  # no loop (CRT-03, TC_A_15_CS)
    assert station.core.security_log[-1].type == "SignCertificateRejected"
    assert not station.core.certificates.has_pending()


async def test_extended_trigger_message_serves_the_other_messages_too(pki: Pki) -> None:
    station = Station(StationCore(config(V16, pki)))
    trigger = "ExtendedTriggerMessage"
    assert await station.call(trigger, {"requestedMessage": "Heartbeat"}) == {"status": "Accepted"}
    assert station.sent() == [("Heartbeat", {})]
    status = {"requestedMessage": "StatusNotification", "connectorId": 1}
    assert await station.call(trigger, status) == {"status": "Accepted"}
    assert [a for a, _ in station.sent()] == ["StatusNotification"]
    status["connectorId"] = 9
    assert await station.call(trigger, status) == {"status": "Rejected"}
    for unsupported in ("MeterValues",):  # Log/FirmwareStatusNotification: SIM-05/06 tests
        answer = await station.call(trigger, {"requestedMessage": unsupported})
        assert answer == {"status": "NotImplemented"}


@pytest.mark.parametrize("version", [V16, V201])
async def test_root_store_install_list_delete(pki: Pki, version: OcppVersion) -> None:
    station = Station(StationCore(config(version, pki, root_store_limit=2)))
    manufacturer = ca("Manufacturer Root")
    install = {
        "certificateType": "ManufacturerRootCertificate",
        "certificate": manufacturer.pem.decode(),
    }
    assert await station.call("InstallCertificate", install) == {"status": "Accepted"}
    assert await station.call("InstallCertificate", install) == {"status": "Accepted"}  # no dup
    not_a_root = {"certificateType": CSMS_ROOT[version], "certificate": pki.station_ca.pem.decode()}
    assert await station.call("InstallCertificate", not_a_root) == {"status": "Rejected"}
    new_root = {"certificateType": CSMS_ROOT[version], "certificate": ca("Second").pem.decode()}
    assert await station.call("InstallCertificate", new_root) == {"status": "Accepted"}
    full = {"certificateType": CSMS_ROOT[version], "certificate": ca("Third").pem.decode()}
    # A full store: 1.6 says Rejected (whitepaper M05.FR.03), 2.0.1 Failed (M05.FR.03).
    expected = "Rejected" if version is V16 else "Failed"
    assert await station.call("InstallCertificate", full) == {"status": expected}

    roots = [CSMS_ROOT[version]]
    ids = await get_ids(station, roots)
    assert ids == [
        (CSMS_ROOT[version], certificate_hash_data(pki.root.cert).to_ocpp()),
        (
            CSMS_ROOT[version],
            certificate_hash_data(station.core.certificates.roots(CSMS_ROOT[version])[1]).to_ocpp(),
        ),
    ]
    # Delete in another algorithm than the station reports (the CSMS uses the one it was given).
    gone = certificate_hash_data(manufacturer.cert, HashAlgorithm.SHA512).to_ocpp()
    assert await station.call("DeleteCertificate", {"certificateHashData": gone}) == {
        "status": "Accepted"
    }
    assert await station.call("DeleteCertificate", {"certificateHashData": gone}) == {
        "status": "NotFound"
    }
    assert await get_ids(station, ["ManufacturerRootCertificate"]) == []
    assert_no_private_key(station)


async def get_ids(station: Station, types: list[str]) -> list[tuple[str, dict[str, str]]]:
    """GetInstalledCertificateIds in the version's shape, flattened; [] for NotFound."""
    if station.core.version is V16:
        [kind] = types
        answer = await station.call("GetInstalledCertificateIds", {"certificateType": kind})
        if answer["status"] == "NotFound":
            assert "certificateHashData" not in answer
            return []
        return [(kind, data) for data in answer["certificateHashData"]]
    answer = await station.call("GetInstalledCertificateIds", {"certificateType": types})
    if answer["status"] == "NotFound":
        assert "certificateHashDataChain" not in answer
        return []
    return [
        (e["certificateType"], e["certificateHashData"]) for e in answer["certificateHashDataChain"]
    ]


async def test_v2g_certificate_and_all_types_201(pki: Pki) -> None:
    station = Station(StationCore(config(V201, pki, hash_algorithm="SHA384")))
    for kind in ("V2GRootCertificate", "MORootCertificate"):
        install = {"certificateType": kind, "certificate": ca(kind).pem.decode()}
        assert await station.call("InstallCertificate", install) == {"status": "Accepted"}
    request = await station.csr(("TriggerMessage", {"requestedMessage": "SignV2GCertificate"}))
    assert request["certificateType"] == "V2GCertificate"
    signed = {"certificateChain": pki.sign(request["csr"]), "certificateType": "V2GCertificate"}
    assert await station.call("CertificateSigned", signed) == {"status": "Accepted"}
    assert not station.core.reconnect_requested  # the V2G certificate is not the TLS client's
    assert station.core.certificates.client_certificate is None

    answer = await station.call("GetInstalledCertificateIds", {})
    assert answer["status"] == "Accepted"
    entries = {e["certificateType"]: e for e in answer["certificateHashDataChain"]}
    assert set(entries) == {
        "V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate", "V2GCertificateChain",
    }  # fmt: skip
    v2g = entries["V2GCertificateChain"]
    assert v2g["certificateHashData"]["hashAlgorithm"] == "SHA384"
    assert v2g["childCertificateHashData"] == [
        certificate_hash_data(pki.station_ca.cert, HashAlgorithm.SHA384, pki.root.cert).to_ocpp()
    ]
    assert "childCertificateHashData" not in entries["CSMSRootCertificate"]
    assert_no_private_key(station)


@pytest.mark.parametrize("version", [V16, V201])
async def test_cpo_name_is_readable_writable_and_goes_into_the_csr(
    pki: Pki, version: OcppVersion
) -> None:
    station = Station(StationCore(config(version, pki)))
    if version is V16:
        read = await station.call(
            "GetConfiguration", {"key": ["CpoName", "CertificateStoreMaxLength"]}
        )
        assert {k["key"]: k["value"] for k in read["configurationKey"]} == {
            "CpoName": CPO,
            "CertificateStoreMaxLength": "10",
        }
        too_long = {"key": "CpoName", "value": "x" * 65}  # X.509 ub-organization-name
        assert await station.call("ChangeConfiguration", too_long) == {"status": "Rejected"}
        change = {"key": "CpoName", "value": "New CPO"}
        assert await station.call("ChangeConfiguration", change) == {"status": "Accepted"}
    else:
        variable = {
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "OrganizationName"},
        }
        read = await station.call("GetVariables", {"getVariableData": [variable]})
        assert read["getVariableResult"][0]["attributeValue"] == CPO
        write = {"setVariableData": [{**variable, "attributeValue": "New CPO"}]}
        answer = await station.call("SetVariables", write)
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    request = await station.csr()
    csr = x509.load_pem_x509_csr(request["csr"].encode())
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "New CPO"
    # The signed certificate must now carry the new O, not the old one.
    old_o = {"certificateChain": pki.sign(request["csr"], o=CPO)}
    assert await station.call("CertificateSigned", old_o) == {"status": "Rejected"}


def assert_no_private_key(station: Station) -> None:
    """A02.FR.05: no message and no log entry ever carries the station's private key."""
    material = station.core.certificates.tls_material()
    secret_lines = []
    if material.client_key_pem is not None:
        secret_lines = material.client_key_pem.decode().splitlines()[1:-1]
    texts = [json.dumps(m) for m in station.seen]
    texts += [repr(e) for e in station.core.security_log]
    texts += [repr(station.core.certificates), repr(station.core.config)]
    for text in texts:
        assert "PRIVATE KEY" not in text
        assert not any(line in text for line in secret_lines)


# ---- over TLS: the new certificate is presented on the next connection --------------------------


class CertificateCsms:
    """A TLS OCPP server that, after the first boot, has the station renew its certificate."""

    def __init__(self, pki: Pki, version: OcppVersion) -> None:
        self.pki = pki
        self.version = version
        self.peer_certificates: list[bytes] = []  # DER presented on each connection
        self.issued: list[x509.Certificate] = []
        self.answers: list[dict[str, Any]] = []  # the station's CALLRESULT payloads
        self.changed = asyncio.Event()

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        ssl_object = connection.transport.get_extra_info("ssl_object")
        self.peer_certificates.append(ssl_object.getpeercert(binary_form=True))
        self.changed.set()
        return None

    async def send_call(self, ws: ServerConnection, action: str, payload: dict[str, Any]) -> None:
        await ws.send(json.dumps([2, str(uuid.uuid4()), action, payload]))

    async def handler(self, ws: ServerConnection) -> None:
        first_connection = len(self.peer_certificates) == 1
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                frame = json.loads(text)
                if frame[0] == 3:
                    self.answers.append(frame[2])
                    continue
                action, payload = frame[2], frame[3]
                answer: dict[str, Any] = {}
                if action == "BootNotification":
                    answer = {"status": "Accepted", "currentTime": now, "interval": 300}
                elif action == "Heartbeat":
                    answer = {"currentTime": now}
                elif action == "SignCertificate":
                    answer = {"status": "Accepted"}
                await ws.send(json.dumps([3, frame[1], answer]))
                if action == "BootNotification" and first_connection:
                    await self.send_call(ws, *TRIGGER[self.version])
                elif action == "SignCertificate":
                    chain = self.pki.sign(payload["csr"])
                    self.issued.append(x509.load_pem_x509_certificates(chain.encode())[0])
                    await self.send_call(ws, "CertificateSigned", {"certificateChain": chain})


def server_context(pki: Pki) -> ssl.SSLContext:
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = Issued(
        leaf(pki.root, server_key.public_key(), cn="localhost", server=True), server_key
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "server.pem"
        path.write_bytes(server.pem + server.key_pem)
        context.load_cert_chain(path)
    context.load_verify_locations(cadata=pki.root.pem.decode())
    context.verify_mode = ssl.CERT_REQUIRED  # profile 3: a client certificate or nothing
    return context


@contextlib.asynccontextmanager
async def certificate_csms(
    pki: Pki, version: OcppVersion
) -> AsyncIterator[tuple[CertificateCsms, int]]:
    csms = CertificateCsms(pki, version)

    def choose(connection: ServerConnection, offered: Any) -> Subprotocol | None:
        return Subprotocol(version.subprotocol) if version.subprotocol in offered else None

    async with serve(
        csms.handler, "127.0.0.1", 0, ssl=server_context(pki),
        process_request=csms.process_request, select_subprotocol=choose,
    ) as server:  # fmt: skip
        yield csms, int(next(iter(server.sockets)).getsockname()[1])


async def until(csms: CertificateCsms, predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            csms.changed.clear()
            await csms.changed.wait()


@pytest.mark.parametrize("version", [V16, V201])
async def test_profile_3_station_reconnects_with_its_new_certificate(
    pki: Pki, version: OcppVersion, tmp_path: Path
) -> None:
    first_key = ec.generate_private_key(ec.SECP256R1())
    first = Issued(leaf(pki.station_ca, first_key.public_key()), first_key)
    async with certificate_csms(pki, version) as (csms, port):
        cfg = config(
            version, pki,
            url=f"wss://127.0.0.1:{port}/ocpp", tls_server_hostname="localhost",
            security_profile=3, client_cert_pem=first.pem + pki.station_ca.pem,
            client_key_pem=first.key_pem, state_dir=tmp_path,
            reconnect_backoff_initial=0.02, reconnect_backoff_max=0.05, heartbeat_interval=30.0,
        )  # fmt: skip
        runner = StationRunner(cfg)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        try:
            await until(csms, lambda: len(csms.peer_certificates) >= 2)
        finally:
            stop.set()
            async with asyncio.timeout(WAIT):
                await task
    der = serialization.Encoding.DER
    assert csms.peer_certificates[0] == first.cert.public_bytes(der)
    [issued] = csms.issued
    assert csms.peer_certificates[1] == issued.public_bytes(der)
    assert {"status": "Accepted"} in csms.answers  # the trigger and CertificateSigned
    assert runner.core.certificates.client_certificate == issued
    # Kept in the state directory: a restarted station presents the new certificate.
    assert StationCore(cfg).certificates.client_certificate == issued


def subjects(context: ssl.SSLContext) -> set[str]:
    """Common names of the CA certificates a context trusts."""
    return {dict(x[0] for x in c["subject"])["commonName"] for c in context.get_ca_certs()}


async def test_tls_context_follows_the_installed_csms_roots(pki: Pki) -> None:
    runner = StationRunner(config(V201, pki))
    before = runner._ssl_context
    assert before is not None
    assert subjects(before) == {"Test CSMS Root"}
    answer = await runner.core.handlers()["InstallCertificate"](
        {"certificateType": "CSMSRootCertificate", "certificate": ca("New CSMS Root").pem.decode()}
    )
    assert answer == {"status": "Accepted"}
    runner._refresh_ssl_context()
    assert runner._ssl_context is not None and runner._ssl_context is not before
    assert subjects(runner._ssl_context) == {"Test CSMS Root", "New CSMS Root"}
