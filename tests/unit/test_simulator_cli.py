"""`chargewarden sim` / `sim fleet` TLS flags: every mistake is one `error:` line, no traceback,
and nothing is sent anywhere (these fail before a station starts)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from chargewarden.cli import app

WSS = "wss://127.0.0.1:9/ocpp"
WS = "ws://127.0.0.1:9/ocpp"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI points the root logger at its (here: CliRunner's) stderr; undo that after."""
    names = ("", "websockets", "uvicorn.access")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    yield
    for n, (handlers, level) in saved.items():
        logging.getLogger(n).handlers[:] = handlers
        logging.getLogger(n).setLevel(level)


def sim(*args: str) -> Result:
    return CliRunner().invoke(app, ["sim", *args])


def one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "root": tmp_path / "root.pem",
        "garbage": tmp_path / "garbage.pem",
        "empty": tmp_path / "empty.pem",
    }
    files["root"].write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    files["garbage"].write_text("this is not PEM\n")
    files["empty"].write_text("")
    return files


STATION = ["--identity", "CP-1", "--ocpp", "2.0.1"]


def test_profile_2_and_3_need_a_wss_url() -> None:
    one_line_error(sim("--url", WS, *STATION, "--profile", "2", "--password", "x" * 20), "wss://")
    one_line_error(sim("--url", WS, *STATION, "--profile", "3"), "profile 3", "wss://")
    one_line_error(
        sim("fleet", "--count", "2", "--url", WS, "--ocpp", "1.6", "--profile", "3"), "wss://"
    )


def test_tls_flags_need_a_wss_url(pem_files: dict[str, Path]) -> None:
    result = sim(
        "--url", WS, *STATION, "--profile", "1", "--password", "x" * 20,
        "--csms-root", str(pem_files["root"]),
    )  # fmt: skip
    one_line_error(result, "--csms-root", "wss://")


def test_profile_3_needs_certificate_and_key(pem_files: dict[str, Path]) -> None:
    one_line_error(sim("--url", WSS, *STATION, "--profile", "3"), "--cert", "--key")
    result = sim("--url", WSS, *STATION, "--profile", "3", "--cert", str(pem_files["root"]))
    one_line_error(result, "--cert and --key go together")
    result = sim(
        "--url", WSS, *STATION, "--profile", "2", "--password", "x" * 20,
        "--cert", str(pem_files["root"]), "--key", str(pem_files["root"]),
    )  # fmt: skip
    one_line_error(result, "profile 3")


def test_unreadable_and_empty_files_are_named(tmp_path: Path, pem_files: dict[str, Path]) -> None:
    missing = tmp_path / "nowhere.pem"
    result = sim(
        "--url", WSS, *STATION, "--profile", "3", "--cert", str(missing), "--key", str(missing)
    )
    one_line_error(result, f"cannot read --cert {missing}", "No such file")
    result = sim(
        "--url", WSS, *STATION, "--profile", "2", "--password", "x" * 20,
        "--csms-root", str(pem_files["empty"]),
    )  # fmt: skip
    one_line_error(result, f"--csms-root {pem_files['empty']} is empty")
    result = sim(
        "--url", WSS, *STATION, "--profile", "2", "--password", "x" * 20,
        "--csms-root", str(tmp_path),
    )  # fmt: skip
    one_line_error(result, "cannot read --csms-root")


def test_content_that_is_not_pem_is_named(pem_files: dict[str, Path]) -> None:
    result = sim(
        "--url", WSS, *STATION, "--profile", "2", "--password", "x" * 20,
        "--csms-root", str(pem_files["garbage"]),
    )  # fmt: skip
    one_line_error(result, f"--csms-root {pem_files['garbage']}", "no PEM certificate")
    result = sim(
        "--url", WSS, *STATION, "--profile", "3",
        "--cert", str(pem_files["garbage"]), "--key", str(pem_files["garbage"]),
    )  # fmt: skip
    one_line_error(result, f"--cert {pem_files['garbage']}", "no PEM certificate")


def test_fleet_reads_one_certificate_per_station(tmp_path: Path) -> None:
    template = str(tmp_path / "{identity}.pem")
    result = sim(
        "fleet", "--count", "2", "--url", WSS, "--prefix", "FL-", "--ocpp", "2.0.1",
        "--profile", "3", "--cert", template, "--key", template,
    )  # fmt: skip
    one_line_error(result, f"cannot read --cert {tmp_path / 'FL-00001.pem'}")


# ---- certificate options (SIM-02/03) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "fragment"),
    [
        ("--csr-fault", "nonsense", "--csr-fault must be one of weak-key"),
        ("--hash-algorithm", "MD5", "--hash-algorithm must be SHA256, SHA384 or SHA512"),
        ("--key-type", "dsa", "--key-type must be one of ec-p256"),
        ("--cpo-name", "x" * 65, "--cpo-name must be 1-64"),
    ],
)
def test_certificate_options_are_checked(flag: str, value: str, fragment: str) -> None:
    args = ["--url", WS, *STATION, "--profile", "1", "--password", "x" * 20, flag, value]
    one_line_error(sim(*args), fragment)
    fleet = ["fleet", "--count", "2", "--url", WS, "--ocpp", "1.6", "--profile", "0", flag, value]
    one_line_error(sim(*fleet), fragment)


def test_profile_3_may_take_its_certificate_from_the_state_dir(tmp_path: Path) -> None:
    # A state directory whose key does not match its chain: named, before anything connects.
    (tmp_path / "charging-station.chain.pem").write_text("not PEM")
    (tmp_path / "charging-station.key.pem").write_text("not PEM")
    result = sim("--url", WSS, *STATION, "--profile", "3", "--state-dir", str(tmp_path))
    one_line_error(result, f"--state-dir {tmp_path}", "charging-station.chain.pem")


# ---- SIM-04 flags -------------------------------------------------------------------------------


def test_refuse_change_names_are_checked() -> None:
    args = ["--url", WS, *STATION, "--profile", "0", "--refuse-change", "Rest"]
    one_line_error(sim(*args), "--refuse-change Rest", "NetworkProfile")
    fleet = ["fleet", "--count", "2", "--url", WS, "--ocpp", "1.6", "--profile", "0"]
    one_line_error(sim(*fleet, "--refuse-change", "Everything"), "--refuse-change Everything")


def test_tls_url_must_be_wss() -> None:
    args = ["--url", WS, *STATION, "--profile", "0", "--tls-url", WS]
    one_line_error(sim(*args), "--tls-url must be a wss:// URL")


def test_change_flags_reach_the_station_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from chargewarden.cli import sim as sim_module
    from chargewarden.simulator.config import StationConfig

    seen: list[StationConfig] = []

    async def capture_one(config: StationConfig, *_: object) -> int:
        seen.append(config)
        return 0

    async def capture_many(configs: list[StationConfig], *_: object) -> int:
        seen.extend(configs)
        return 0

    monkeypatch.setattr(sim_module, "_run_one", capture_one)
    monkeypatch.setattr(sim_module, "_run_many", capture_many)
    flags = ["--refuse-change", "Reset", "--refuse-change", "NetworkProfile"]
    flags += ["--network-slots", "5", "--tls-url", WSS]
    one = sim("--url", WS, *STATION, "--profile", "1", "--password", "x" * 20, *flags)
    assert one.exit_code == 0, one.output
    fleet = ["fleet", "--count", "2", "--url", WS, "--ocpp", "1.6", "--profile", "0", *flags]
    assert sim(*fleet).exit_code == 0
    # Profile 2 with a plain --url: --tls-url is where it connects.
    two = sim("--url", WS, *STATION, "--profile", "2", "--password", "x" * 20, "--tls-url", WSS)
    assert two.exit_code == 0, two.output
    assert seen.pop().connection_url() == f"{WSS}/CP-1"
    assert len(seen) == 3
    for config in seen:
        assert config.refuse_changes == {"Reset", "NetworkProfile"}
        assert (config.network_slots, config.tls_url) == (5, WSS)
