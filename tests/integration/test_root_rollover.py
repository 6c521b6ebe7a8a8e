"""CSMS root rollover (CRT-08) against a running CSMS: install over the API, switch, reload.

Stations are raw WebSocket stations that answer the rollover's calls as a station with or
without AdditionalRootCertificateCheck would (WP ed.3 M05.FR.08-10, OCPP 2.0.1 M05.FR.09-11,
TC_M_09/30/31): one that checks accepts a new CSMS root only if its current root signed it, and
then replaces that root.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from rawstation import RawStation, add_station, boot, connect, register_test_station
from tlskit import CPO, client_context, pem, tls_settings
from websockets.asyncio.client import connect as ws_connect
from wsclient import BOOT_16, BOOT_201, call

from chargewarden.api.operators import create_operator
from chargewarden.app import RunningCsms, start_csms
from chargewarden.pki.hashdata import certificate_hash_data
from chargewarden.pki.material import csms_root_pem
from chargewarden.pki.passphrase import load_passphrase
from chargewarden.pki.provision import provision_station
from chargewarden.pki.recording import record_hierarchy
from chargewarden.pki.rollover import prepare_rollover, rollover_status, switch_root
from chargewarden.rpc.versions import OcppVersion

V16, V201 = OcppVersion.V16, OcppVersion.V201
ARCC = "AdditionalRootCertificateCheck"
CSMS_ROOT_TYPE = {V16: "CentralSystemRootCertificate", V201: "CSMSRootCertificate"}
SUBPROTOCOL = {V16: "ocpp1.6", V201: "ocpp2.0.1"}
BOOT = {V16: BOOT_16, V201: BOOT_201}


@dataclass
class Csms:
    running: RunningCsms
    http: httpx.AsyncClient
    admin: dict[str, str]
    viewer: dict[str, str]
    passphrase: bytes


@pytest.fixture
async def csms(tmp_path: Path, pki_template: Path) -> AsyncIterator[Csms]:
    running = await start_csms(tls_settings(tmp_path / "csms", pki_template), with_api=True)
    try:
        _, token = await create_operator(running.store, "rollover-admin", "admin", actor="test")
        _, viewer = await create_operator(running.store, "rollover-viewer", "viewer", actor="test")
        assert running.api_url is not None
        async with httpx.AsyncClient(base_url=running.api_url, timeout=30) as http:
            yield Csms(
                running,
                http,
                {"Authorization": f"Bearer {token}"},
                {"Authorization": f"Bearer {viewer}"},
                load_passphrase(running.settings),
            )
    finally:
        await running.stop()


@dataclass
class EmulatedStation:
    """Answers GetConfiguration/GetVariables, GetInstalledCertificateIds and
    InstallCertificate like a station whose CSMS root store holds ``roots``."""

    raw: RawStation
    version: OcppVersion
    checks: bool | None  # AdditionalRootCertificateCheck; None: the station does not know it
    roots: list[tuple[x509.Certificate, x509.Certificate]]  # (certificate, its issuer)
    offered: list[x509.Certificate] = field(default_factory=list)

    def answer_for(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "GetConfiguration":
            assert payload == {"key": [ARCC]}
            if self.checks is None:
                return {"unknownKey": [ARCC]}
            value = "true" if self.checks else "false"
            return {"configurationKey": [{"key": ARCC, "readonly": True, "value": value}]}
        if action == "GetVariables":
            (wanted,) = payload["getVariableData"]
            assert wanted == {"component": {"name": "SecurityCtrlr"}, "variable": {"name": ARCC}}
            result: dict[str, Any] = dict(wanted)
            if self.checks is None:
                return {"getVariableResult": [result | {"attributeStatus": "UnknownVariable"}]}
            value = "true" if self.checks else "false"
            result |= {"attributeStatus": "Accepted", "attributeValue": value}
            return {"getVariableResult": [result]}
        if action == "GetInstalledCertificateIds":
            if (
                payload.get("certificateType", CSMS_ROOT_TYPE[self.version])
                != CSMS_ROOT_TYPE[self.version]
            ):
                return {"status": "NotFound"}
            hashes = [certificate_hash_data(c, issuer=i).to_ocpp() for c, i in self.roots]
            if self.version is V16:
                return {"status": "Accepted", "certificateHashData": hashes}
            return {
                "status": "Accepted",
                "certificateHashDataChain": [
                    {"certificateType": CSMS_ROOT_TYPE[V201], "certificateHashData": h}
                    for h in hashes
                ],
            }
        if action == "InstallCertificate":
            assert payload["certificateType"] == CSMS_ROOT_TYPE[self.version]
            certificate = x509.load_pem_x509_certificate(payload["certificate"].encode())
            self.offered.append(certificate)
            if not self.checks:
                self.roots.append((certificate, certificate))
                return {"status": "Accepted"}
            current, _ = self.roots[-1]
            try:  # M05.FR.09: signed by the root it replaces, which it then replaces
                certificate.verify_directly_issued_by(current)
            except Exception:
                return {"status": "Rejected"}
            self.roots = [(certificate, current)]
            return {"status": "Accepted"}
        raise AssertionError(f"unexpected call {action}")

    async def serve(self) -> None:
        while True:
            frame = json.loads(await self.raw.ws.recv())
            if frame[0] == 2:
                await self.raw.answer(frame[1], self.answer_for(frame[2], frame[3]))


@contextlib.asynccontextmanager
async def stations_online(
    csms: RunningCsms, version: OcppVersion, checks: dict[str, bool | None]
) -> AsyncIterator[dict[str, EmulatedStation]]:
    assert csms.pki is not None
    root = csms.pki.root.certificate
    async with contextlib.AsyncExitStack() as stack:
        emulated = {}
        for identity, value in checks.items():
            ws = await stack.enter_async_context(connect(csms, identity, version))
            raw = RawStation(ws)
            await boot(raw, version)
            emulated[identity] = EmulatedStation(raw, version, value, [(root, root)])
        tasks = [asyncio.create_task(s.serve()) for s in emulated.values()]
        try:
            yield emulated
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def handshake(csms: RunningCsms, context: ssl.SSLContext) -> None:
    """A bare TLS handshake with the wss listener; SSLCertVerificationError if refused."""
    assert csms.wss_address is not None
    _, writer = await asyncio.open_connection(
        "127.0.0.1", csms.wss_address[1], ssl=context, server_hostname="localhost"
    )
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


def trusting(*certificates: x509.Certificate, partial_chain: bool = False) -> ssl.SSLContext:
    context = client_context(pem(*certificates))
    if partial_chain:
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


@pytest.mark.parametrize("version", [V16, V201])
async def test_CRT_08_root_rollover_install_switch_and_reload(
    csms: Csms, version: OcppVersion, tmp_path: Path
) -> None:
    running = csms.running
    assert running.pki is not None and running.watcher is not None
    tag = version.value.replace(".", "")
    checking, plain, unknown, offline = (f"RR{tag}-{n}" for n in ("CHK", "PLN", "UNK", "OFF"))
    for identity in (checking, plain, unknown, offline):
        await add_station(running, identity, version)
    old_root = running.pki.root.certificate

    # Before anything is prepared, install is refused.
    response = await csms.http.post("/api/ca/rollover/install", json={}, headers=csms.admin)
    assert response.status_code == 409, response.text
    assert "prepare" in response.json()["detail"]

    # Step 1, offline, while the CSMS runs: nothing it uses changes.
    prepared = await asyncio.to_thread(prepare_rollover, running.settings, csms.passphrase)
    status = (await csms.http.get("/api/ca/rollover", headers=csms.admin)).json()
    assert status["state"] == "prepared" and status["prepared"] and not status["switched"]
    assert status["new_root"]["sha256"] == prepared.new_root_sha256
    assert status["install"] is None
    assert (await csms.http.get("/api/ca/rollover", headers=csms.viewer)).status_code == 403

    # Step 2 over the API.
    checks = {checking: True, plain: False, unknown: None}
    async with stations_online(running, version, checks) as online:
        body = {"stations": [checking, plain, unknown, offline], "concurrency": 2}
        response = await csms.http.post("/api/ca/rollover/install", json=body, headers=csms.admin)
        assert response.status_code == 200, response.text
        answer = response.json()
        outcomes = {o["identity"]: o for o in answer["outcomes"]}
        assert [o["identity"] for o in answer["outcomes"]] == body["stations"]
        # AdditionalRootCertificateCheck true: the cross certificate, signed by the old root.
        assert outcomes[checking]["outcome"] == "installed"
        assert outcomes[checking]["additional_root_check"] is True
        assert outcomes[checking]["certificate"] == "cross"
        assert online[checking].offered == [prepared.cross]
        assert online[checking].roots == [(prepared.cross, old_root)]
        # false or unknown: the self-signed new root, next to the old one.
        for identity in (plain, unknown):
            assert outcomes[identity]["outcome"] == "installed"
            assert outcomes[identity]["additional_root_check"] is False
            assert outcomes[identity]["certificate"] == "self-signed"
            assert online[identity].offered == [prepared.new_root]
        assert outcomes[offline]["outcome"] == "offline"
        assert answer["counts"] == {"installed": 3, "offline": 1}

        # Again, for every connected station: nobody is asked to install twice (a station that
        # checks would refuse, its root being the new one now).
        response = await csms.http.post("/api/ca/rollover/install", json={}, headers=csms.admin)
        assert response.status_code == 200, response.text
        again = {o["identity"]: o["outcome"] for o in response.json()["outcomes"]}
        assert again == dict.fromkeys((checking, plain, unknown), "already-installed")
        assert all(len(s.offered) == 1 for s in online.values())

    audit = await running.store.audit.list(target=checking)
    assert [a.action for a in audit].count("ca.rollover.install") == 2
    assert "station.certificate.install" in [a.action for a in audit]
    status = (await csms.http.get("/api/ca/rollover", headers=csms.admin)).json()
    assert status["install"]["counts"] == {"already-installed": 3, "offline": 1}
    assert [s["identity"] for s in status["install"]["not_installed"]] == [offline]

    # A profile-3 station with a certificate from before the switch.
    identity3 = f"RR{tag}-P3"
    await register_test_station(running.store, identity3, version, 3)
    provisioned = await provision_station(
        running.pki,
        running.store,
        identity=identity3,
        cn=identity3,
        o=CPO,
        out_dir=tmp_path / "p3",
    )
    await handshake(running, trusting(old_root))

    # Step 3, offline (as `ca rollover switch` does it), then the running CSMS's watcher.
    result = await asyncio.to_thread(switch_root, running.settings, csms.passphrase)
    await record_hierarchy(running.store, result.pki)
    await running.watcher.tick()

    # The CSMS shares the new hierarchy: signer, built-in roots, CRLs.
    assert running.pki.root.certificate == prepared.new_root
    assert running.pki.station_ca.certificate == result.pki.station_ca.certificate
    assert x509.load_pem_x509_certificates(csms_root_pem(running.settings)) == [prepared.new_root]
    crl = x509.load_der_x509_crl(
        (running.settings.effective_ca_dir / "crl" / "cpo-root.crl").read_bytes()
    )
    assert crl.issuer == prepared.new_root.subject
    assert crl.is_signature_valid(prepared.new_root.public_key())  # type: ignore[arg-type]

    # The served chain ends at the new root: a client trusting the new root connects; one that
    # has only the cross certificate (a station that checks AdditionalRootCertificateCheck)
    # connects with partial-chain verification; one with only the old root does not.
    await handshake(running, trusting(prepared.new_root))
    await handshake(running, trusting(prepared.cross, partial_chain=True))
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(running, trusting(old_root))

    # The station certificate issued before the switch is still accepted (same station CA key).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=pem(prepared.new_root).decode())
    context.load_cert_chain(provisioned.chain_path, provisioned.key_path)
    assert running.wss_address is not None
    url = f"wss://127.0.0.1:{running.wss_address[1]}/ocpp/{quote(identity3, safe='')}"
    async with ws_connect(
        url,
        ssl=context,
        server_hostname="localhost",
        subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
        open_timeout=5,
    ) as ws:
        assert (await call(ws, "BootNotification", BOOT[version]))[2]["status"] == "Accepted"

    # The rollover is complete.
    status = (await csms.http.get("/api/ca/rollover", headers=csms.admin)).json()
    assert status["state"] == "idle" and status["switched"] and not status["prepared"]
    assert status["current_root"]["sha256"] == prepared.new_root_sha256
    assert status["last_switch"]["retired_root"]["subject"] == old_root.subject.rfc4514_string()
    assert rollover_status(running.settings).last_switch is not None
    response = await csms.http.post("/api/ca/rollover/install", json={}, headers=csms.admin)
    assert response.status_code == 409


CLI = Path(sys.executable).parent / "chargewarden"


async def cli(
    command: str, csms: Csms, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The console script against the running CSMS's data directory (in a thread: the CSMS
    serves on this loop meanwhile)."""
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("CHARGEWARDEN_")}
    environment.update({"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"})
    if token is not None:
        assert csms.running.api_url is not None
        environment.update(
            {"CHARGEWARDEN_API_URL": csms.running.api_url, "CHARGEWARDEN_API_TOKEN": token}
        )
    argv = [str(CLI), *shlex.split(command), "--data-dir", str(csms.running.settings.data_dir)]
    return await asyncio.to_thread(
        subprocess.run,  # noqa: S603 - our own console script, fixed arguments
        argv,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert "Traceback" not in result.stdout + result.stderr


async def test_CRT_08_rollover_from_the_command_line(csms: Csms) -> None:
    running = csms.running
    assert running.pki is not None and running.watcher is not None
    online_id, offline_id = "RRCLI-CHK", "RRCLI-OFF"
    for identity in (online_id, offline_id):
        await add_station(running, identity, V201)
    old_root = running.pki.root.certificate
    token = csms.admin["Authorization"].removeprefix("Bearer ")

    prepared = await cli("ca rollover prepare", csms)
    assert prepared.returncode == 0, prepared.stderr
    assert "Root CA" in prepared.stdout and "next:" in prepared.stdout
    again = await cli("ca rollover prepare", csms)
    one_line_error(again, "already prepared")
    assert "rollover: prepared" in again.stdout  # the status of the prepared one
    one_line_error(await cli("ca rollover switch", csms), "rollover install")

    async with stations_online(running, V201, {online_id: True}) as online:
        installed = await cli(
            f"ca rollover install --station {online_id} --station {offline_id}", csms, token
        )
        one_line_error(installed, "1 of 2 station(s) did not get the new root")
        assert online_id in installed.stdout and "installed" in installed.stdout
        assert offline_id in installed.stdout and "offline" in installed.stdout
        (cross,) = online[online_id].offered
        cross.verify_directly_issued_by(old_root)
        # Every connected station (only one): it has the new root already.
        rerun = await cli("ca rollover install", csms, token)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert "already-installed" in rerun.stdout and "all 1 station(s)" in rerun.stdout

    status = await cli("ca rollover status", csms)
    assert status.returncode == 0
    assert "1 station(s) have the new root" in status.stdout and offline_id in status.stdout

    switched = await cli("ca rollover switch", csms)
    assert switched.returncode == 0, switched.stderr
    assert "warning:" in switched.stderr and offline_id in switched.stderr
    assert "the old root is archived in" in switched.stdout
    await running.watcher.tick()
    assert running.pki.root.certificate.subject == cross.subject
    await handshake(running, trusting(cross, partial_chain=True))
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(running, trusting(old_root))
    audit = await running.store.audit.list(target=str(running.settings.effective_ca_dir))
    assert {"ca.rollover.prepare", "ca.rollover.switch"} <= {a.action for a in audit}

    done = await cli("ca rollover status", csms)
    assert "rollover: idle" in done.stdout and "last switch:" in done.stdout
    one_line_error(await cli("ca rollover install", csms, token), "no root rollover is prepared")
