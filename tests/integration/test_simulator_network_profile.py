"""SIM-04 over real sockets: the runner moves to the URL and profile the station's core chooses.

A plain and a TLS fake CSMS (from test_simulator_runner) on 127.0.0.1 stand for the CSMS's ws
and wss listeners; the "CSMS" drives the upgrade the way seed 001 / TC_A_19 do and the tests
watch where the station connects next, with which credentials, and what it keeps on disk.
"""

from __future__ import annotations

import base64
import socket
from pathlib import Path
from typing import Any

from test_simulator_runner import (
    KEY,
    PASSWORD,
    FakeCsms,
    eventually,
    fake_csms,
    running,
    station,
    tls_material,
)

from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.runner import StationRunner
from chargewarden.simulator.security import STATE_FILE

V16, V201 = OcppVersion.V16, OcppVersion.V201
NEW_PASSWORD = "Rotated-Password-9876543210"
FAST = {"reconnect_backoff_initial": 0.05, "reconnect_backoff_max": 0.2, "heartbeat_interval": 5.0}


def priority(value: str) -> dict[str, Any]:
    item = {
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "NetworkConfigurationPriority"},
        "attributeValue": value,
    }
    return {"setVariableData": [item]}


def network_profile(slot: int, url: str, profile: int) -> dict[str, Any]:
    return {
        "configurationSlot": slot,
        "connectionData": {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": url,
            "messageTimeout": 30,
            "securityProfile": profile,
            "ocppInterface": "Wired0",
        },
    }


async def answer(csms: FakeCsms, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    frame = await csms.call(action, payload)
    assert frame[0] == 3, frame
    return dict(frame[2])


async def booted_on(csms: FakeCsms, count: int = 1) -> None:
    await csms.wait_for(lambda: len(csms.calls("BootNotification")) >= count)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_201_rotation_and_upgrade_to_profile_2_survive_a_restart(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    server_tls, ca_file = tls_material(tmp_path / "pki")
    async with fake_csms() as plain, fake_csms(server_tls) as secure:
        config = station(plain, V201, state_dir=tmp_path / "state", **FAST)
        plain.secrets["AL1000"].add(NEW_PASSWORD.encode())
        secure.secrets["AL1000"] = {NEW_PASSWORD.encode()}
        runner = StationRunner(config)
        async with running(runner):
            await booted_on(plain)
            rotate = {
                "setVariableData": [
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "BasicAuthPassword"},
                        "attributeValue": NEW_PASSWORD,
                    }
                ]
            }
            result = await answer(plain, "SetVariables", rotate)
            assert result["setVariableResult"][0]["attributeStatus"] == "Accepted"
            await booted_on(plain, 2)  # reconnected at once with the new password
            install = {"certificateType": "CSMSRootCertificate", "certificate": ca_file.read_text()}
            assert await answer(plain, "InstallCertificate", install) == {"status": "Accepted"}
            # ocppCsmsUrl without the identity: the station appends it.
            upgrade = network_profile(2, secure.base_url, 2)
            assert await answer(plain, "SetNetworkProfile", upgrade) == {"status": "Accepted"}
            result = await answer(plain, "SetVariables", priority("2,1"))
            assert result["setVariableResult"][0]["attributeStatus"] == "RebootRequired"
            assert await answer(plain, "Reset", {"type": "OnIdle"}) == {"status": "Accepted"}

            await booted_on(secure)
            assert runner.core.security_profile == 2
            get = {
                "getVariableData": [
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "SecurityProfile"},
                    },
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "NetworkConfigurationPriority"},
                    },
                ]
            }
            values = (await answer(secure, "GetVariables", get))["getVariableResult"]
            assert [v["attributeValue"] for v in values] == ["2", "2"]  # TC_A_19 steps 11, 13

        def basic(password: str) -> str:
            return "Basic " + base64.b64encode(f"AL1000:{password}".encode()).decode()

        assert plain.auth_headers == [basic(PASSWORD), basic(NEW_PASSWORD)]
        assert secure.auth_headers == [basic(NEW_PASSWORD)]
        assert (tmp_path / "state" / STATE_FILE).exists()

        # A power cycle: the restarted station goes straight to the upgraded slot over TLS,
        # with the rotated password (the config still holds the old one).
        outcome = await StationRunner(config).connect_once()
        assert outcome.admitted, outcome.reason
        assert secure.auth_headers[-1] == basic(NEW_PASSWORD)
        assert len(secure.auth_headers) == 2 and len(plain.auth_headers) == 2


async def test_201_unreachable_new_slot_falls_back_to_the_old_one() -> None:
    async with fake_csms() as plain:
        config = station(plain, V201, csms_root_installed=True, **FAST)
        runner = StationRunner(config)
        async with running(runner):
            await booted_on(plain)
            dead = f"wss://127.0.0.1:{closed_port()}/ocpp"
            assert await answer(plain, "SetNetworkProfile", network_profile(2, dead, 2)) == {
                "status": "Accepted"
            }
            await answer(plain, "SetVariables", priority("2,1"))
            await answer(plain, "Reset", {"type": "Immediate"})
            await booted_on(plain, 2)
            assert runner.state.refused_connections >= 1
            assert runner.core.security_profile == 1
            fallbacks = [e for e in runner.core.security_log if "fell back" in (e.tech_info or "")]
            assert fallbacks and "SecurityProfile 2 (network slot 2)" in (
                fallbacks[0].tech_info or ""
            )


async def test_16_raise_to_profile_2_moves_to_the_tls_url(tmp_path: Path) -> None:
    server_tls, ca_file = tls_material(tmp_path)
    async with fake_csms() as plain, fake_csms(server_tls) as secure:
        config = station(plain, V16, tls_url=secure.base_url, **FAST)
        secure.secrets["AL1000"] = {KEY}
        runner = StationRunner(config)
        async with running(runner):
            await booted_on(plain)
            install = {
                "certificateType": "CentralSystemRootCertificate",
                "certificate": ca_file.read_text(),
            }
            assert await answer(plain, "InstallCertificate", install) == {"status": "Accepted"}
            change = {"key": "SecurityProfile", "value": "2"}
            assert await answer(plain, "ChangeConfiguration", change) == {"status": "Accepted"}
            await booted_on(secure)
            await eventually(lambda: runner.state.connected)
            assert runner.core.security_profile == 2
        assert secure.auth_headers[0] == "Basic QUwxMDAwOgABAgMEBQYH////////////////"
