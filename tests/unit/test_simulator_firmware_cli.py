"""`chargewarden sim` / `sim fleet` firmware flags (SIM-05): checked up front, one `error:`
line each, and passed on to every station's config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_simulator_cli import WS, one_line_error, restore_logging, sim

from chargewarden.pki.issue import issue_ca, name
from chargewarden.simulator.certificates import StationCertificates
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.rootstore import RootType

__all__ = ["restore_logging"]  # the autouse fixture, imported to apply here too

STATION = ["--url", WS, "--identity", "CP-1", "--ocpp", "1.6", "--profile", "0"]
FLEET = ["fleet", "--count", "2", "--url", WS, "--ocpp", "2.0.1", "--profile", "0"]


def test_firmware_fault_and_version_are_checked() -> None:
    one_line_error(
        sim(*STATION, "--firmware-fault", "explode"), "--firmware-fault", "install-fails"
    )
    one_line_error(sim(*FLEET, "--firmware-version", "v" * 51), "--firmware-version")


def test_manufacturer_root_must_be_pem(tmp_path: Path) -> None:
    garbage = tmp_path / "maker.pem"
    garbage.write_text("not PEM\n")
    one_line_error(sim(*STATION, "--manufacturer-root", str(garbage)), "--manufacturer-root")
    one_line_error(sim(*STATION, "--manufacturer-root", str(tmp_path / "none.pem")), "cannot read")


def test_firmware_flags_reach_the_station_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chargewarden.cli import sim as sim_module

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    root = issue_ca(
        name("Maker Root", "Maker"), key.public_key(), key, issuer_cert=None,
        not_before=now - timedelta(days=1), not_after=now + timedelta(days=9), path_length=0,
    )  # fmt: skip
    root_file = tmp_path / "maker.pem"
    root_file.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    seen: list[StationConfig] = []

    async def capture_one(config: StationConfig, *_: object) -> int:
        seen.append(config)
        return 0

    async def capture_many(configs: list[StationConfig], *_: object) -> int:
        seen.extend(configs)
        return 0

    monkeypatch.setattr(sim_module, "_run_one", capture_one)
    monkeypatch.setattr(sim_module, "_run_many", capture_many)
    flags = ["--manufacturer-root", str(root_file), "--firmware-fault", "download-fails"]
    flags += ["--firmware-version", "2.0.0-lab"]
    assert sim(*STATION, *flags).exit_code == 0
    assert sim(*FLEET, *flags).exit_code == 0
    assert len(seen) == 3
    for config in seen:
        assert config.firmware_fault == "download-fails"
        assert config.firmware_version == "2.0.0-lab"
        assert config.manufacturer_root_pem == root_file.read_bytes()
    assert StationCertificates(seen[0]).roots(RootType.MANUFACTURER) == [root]
