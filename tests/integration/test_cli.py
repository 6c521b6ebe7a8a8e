"""The `chargewarden` command line, run as the installed console script in a subprocess.

Every test has its own --data-dir (tmp_path). What a user cares about: generated secrets are
shown exactly once and never again, a secret given by the user is never echoed (not even in an
error), and every mistake is one `error:` line (or a usage error, exit 2), never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from chargewarden.store import Store, sqlite_url
from chargewarden.store.records import EventSource, SecurityEventRecord

CLI = Path(sys.executable).parent / "chargewarden"
HEX_KEY_LINE = re.compile(r"^AuthorizationKey \(hex\): ([0-9A-Fa-f]{40})$", re.MULTILINE)
STRONG_PASSWORD = "Zq7-Lm2_Xp9=Rt4@Vb8k"  # 20 characters, passes the 2.0.1 rules
DEMO_TIMEOUT_SECONDS = 240.0
CLI_TIMEOUT_SECONDS = 60.0
PASSWORD_ENV = "CHARGEWARDEN_PASSWORD"
AUTH_KEY_ENV = "CHARGEWARDEN_AUTH_KEY"


def cli(
    command: str,
    *extra: str,
    data_dir: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = CLI_TIMEOUT_SECONDS,
) -> subprocess.CompletedProcess[str]:
    """Run `chargewarden COMMAND EXTRA... [--data-dir D]` with a clean CHARGEWARDEN_* environment.

    COMMAND is split like a shell would; EXTRA arguments (paths, secrets) are passed verbatim.
    """
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("CHARGEWARDEN_")}
    # Wide, colourless output so usage errors are not wrapped mid-word.
    environment.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    environment.update(env or {})
    argv = [str(CLI), *shlex.split(command), *extra]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        argv, capture_output=True, text=True, env=environment, timeout=timeout, check=False
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, output(result)
    assert "Traceback" not in output(result)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit != 0, exactly one stderr line starting with "error:", no traceback; returns it."""
    assert result.returncode not in (0, 70), output(result)  # 70: the internal-error fallback
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in output(result)
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, output(result)
    assert "Traceback" not in output(result)
    assert "Usage:" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def add_events(db: Path, *events: SecurityEventRecord) -> None:
    async def _add() -> None:
        store = await Store.open(sqlite_url(db))
        try:
            for event in events:
                await store.events.add(event)
        finally:
            await store.close()

    asyncio.run(_add())


# --- station add / list / show --------------------------------------------------------------


def test_generated_1_6_key_is_shown_once_and_never_again(tmp_path: Path):
    added = cli("station add CP-1 --ocpp 1.6 --profile 1 --generate-password", data_dir=tmp_path)
    assert_ok(added)
    assert "registered CP-1: OCPP 1.6, security profile 1" in added.stdout
    keys = HEX_KEY_LINE.findall(added.stdout)
    assert len(keys) == 1, added.stdout
    key = keys[0]
    assert added.stdout.count(key) == 1
    assert "shown once" in added.stdout
    assert key not in added.stderr

    listed = cli("station list", data_dir=tmp_path)
    shown = cli("station show CP-1", data_dir=tmp_path)
    for result in (listed, shown):
        assert_ok(result)
        assert "CP-1" in result.stdout
        for secret in (key, key.lower(), key.upper()):
            assert secret not in output(result)
        assert "$argon2" not in output(result)
    assert re.search(r"^CP-1\s+1\.6\s+1\s", listed.stdout, re.MULTILINE), listed.stdout
    assert re.search(r"^credential\s+set$", shown.stdout, re.MULTILINE), shown.stdout
    assert re.search(r"^security profile\s+1$", shown.stdout, re.MULTILINE), shown.stdout


def test_2_0_1_password_from_the_environment(tmp_path: Path):
    added = cli(
        "station add CS-1 --ocpp 2.0.1 --profile 1",
        data_dir=tmp_path,
        env={PASSWORD_ENV: STRONG_PASSWORD},
    )
    assert_ok(added)
    assert "registered CS-1: OCPP 2.0.1, security profile 1" in added.stdout
    assert STRONG_PASSWORD not in output(added)  # the user's own secret is never echoed
    assert "shown once" not in added.stdout  # nothing was generated, nothing to show

    shown = cli("station show CS-1", data_dir=tmp_path)
    assert_ok(shown)
    assert re.search(r"^OCPP version\s+2\.0\.1$", shown.stdout, re.MULTILINE), shown.stdout
    assert STRONG_PASSWORD not in output(shown)
    assert "$argon2" not in output(shown)


@pytest.mark.parametrize(
    ("ocpp", "env", "secret", "expected"),
    [
        pytest.param("2.0.1", PASSWORD_ENV, "1234567890123456", "guess", id="weak-password"),
        pytest.param("2.0.1", PASSWORD_ENV, "Sh0rt-Pw", "16 to 40", id="short-password"),
        pytest.param("1.6", AUTH_KEY_ENV, "00" * 20, "guess", id="weak-hex-key"),
        pytest.param(
            "1.6", AUTH_KEY_ENV, "0123456789abcdef0123456789abcdefXYZ1", "hex", id="bad-hex"
        ),
    ],
)
def test_bad_secret_is_refused_without_echoing_it(
    tmp_path: Path, ocpp: str, env: str, secret: str, expected: str
):
    result = cli(
        f"station add CP-1 --ocpp {ocpp} --profile 1", data_dir=tmp_path, env={env: secret}
    )
    assert_one_line_error(result, expected)
    assert secret not in output(result)
    assert "registered" not in result.stdout


def test_bad_secret_on_the_command_line_is_not_echoed(tmp_path: Path):
    secret = "0123456789abcdef0123456789abcdefQQ"
    result = cli("station add CP-1 --ocpp 1.6 --profile 1 --auth-key", secret, data_dir=tmp_path)
    assert_one_line_error(result, "hexadecimal")
    assert secret not in output(result)


def test_duplicate_station_and_unknown_station(tmp_path: Path):
    command = "station add CP-1 --ocpp 1.6 --profile 1 --generate-password"
    assert_ok(cli(command, data_dir=tmp_path))
    again = cli(command, data_dir=tmp_path)
    assert_one_line_error(again, "CP-1", "already exists")
    assert not HEX_KEY_LINE.search(again.stdout)  # no second secret for a refused station

    unknown = cli("station show CP-404", data_dir=tmp_path)
    assert_one_line_error(unknown, "no station", "CP-404")


def test_profile_out_of_range_is_a_usage_error(tmp_path: Path):
    result = cli("station add CP-1 --ocpp 1.6 --profile 5 --generate-password", data_dir=tmp_path)
    assert_usage_error(result, "--profile")
    assert "registered" not in result.stdout


def test_unknown_ocpp_version_is_refused(tmp_path: Path):
    result = cli("station add CP-1 --ocpp 3.0 --profile 1 --generate-password", data_dir=tmp_path)
    assert_usage_error(result, "3.0", "1.6 or 2.0.1")
    assert "registered" not in result.stdout


# --- operators ------------------------------------------------------------------------------


def test_operator_token_is_shown_once_and_names_are_unique(tmp_path: Path):
    added = cli("operator add alice --role admin", data_dir=tmp_path)
    assert_ok(added)
    assert "operator alice (admin) created" in added.stdout
    tokens = re.findall(r"^token: (\S+)$", added.stdout, re.MULTILINE)
    assert len(tokens) == 1, added.stdout
    token = tokens[0]
    assert len(token) >= 32
    assert "shown once" in added.stdout

    again = cli("operator add alice --role admin", data_dir=tmp_path)
    assert_one_line_error(again, "alice", "already exists")
    assert "token:" not in again.stdout

    listed = cli("operator list", data_dir=tmp_path)
    assert_ok(listed)
    assert "alice" in listed.stdout
    assert token not in output(listed)


def test_operator_with_an_unknown_role_is_a_usage_error(tmp_path: Path):
    result = cli("operator add bob --role god", data_dir=tmp_path)
    assert_usage_error(result, "--role")
    assert "token:" not in result.stdout


# --- events ---------------------------------------------------------------------------------


def test_events_listed_and_filtered(tmp_path: Path):
    empty = cli("events", data_dir=tmp_path)
    assert_ok(empty)
    assert empty.stdout.strip() == "no security events"

    add_events(
        tmp_path / "chargewarden.db",
        SecurityEventRecord(
            type="InvalidCredentials",
            source=EventSource.CSMS,
            critical=False,
            station_identity="CP-1",
            tech_info="password does not match",
            peer_address="192.0.2.7",
        ),
        SecurityEventRecord(
            type="TamperDetectionActivated",
            source=EventSource.STATION,
            critical=True,
            station_identity="CP-2",
            peer_address="192.0.2.8",
        ),
    )
    listed = cli("events", data_dir=tmp_path)
    assert_ok(listed)
    assert "InvalidCredentials" in listed.stdout
    assert "192.0.2.7" in listed.stdout
    assert "password does not match" in listed.stdout
    assert "TamperDetectionActivated" in listed.stdout

    critical = cli("events --critical", data_dir=tmp_path)
    assert_ok(critical)
    assert "TamperDetectionActivated" in critical.stdout
    assert "InvalidCredentials" not in critical.stdout

    one_station = cli("events --station CP-1", data_dir=tmp_path)
    assert_ok(one_station)
    assert "InvalidCredentials" in one_station.stdout
    assert "TamperDetectionActivated" not in one_station.stdout


# --- configuration and environment errors ---------------------------------------------------


def test_missing_config_file_is_one_line(tmp_path: Path):
    missing = tmp_path / "nowhere.toml"
    result = cli("station list --config", str(missing), data_dir=tmp_path)
    assert_one_line_error(result, "config file not found", str(missing))


def test_config_file_with_an_unknown_key_is_one_line_naming_it(tmp_path: Path):
    config = tmp_path / "chargewarden.toml"
    config.write_text("ws_port = 9100\nws_prot = 9101\n", encoding="utf-8")
    result = cli("events --config", str(config), data_dir=tmp_path)
    assert_one_line_error(result, "ws_prot", "unknown setting")


def test_port_flag_out_of_range_is_one_line(tmp_path: Path):
    result = cli("serve --ws-port 70000", data_dir=tmp_path)
    assert_one_line_error(result, "ws_port")


@pytest.mark.parametrize(
    "command",
    ["sim --identity CP-1 --ocpp 1.6", "sim fleet --count 2 --ocpp 1.6"],
    ids=["single", "fleet"],
)
def test_sim_without_url_is_a_clear_error(command: str):
    assert_one_line_error(cli(command), "--url")


def test_sim_with_a_non_websocket_url_is_a_clear_error():
    # Was an "internal error (InvalidURI)"; the URL (it may hold a password) is not echoed.
    result = cli("sim --url http://cp:hunter2@csms.example/ocpp --identity CP-1 --ocpp 1.6")
    assert_one_line_error(result, "--url", "ws://")
    assert "hunter2" not in output(result)


def test_data_dir_that_cannot_be_created_is_one_line(tmp_path: Path):
    regular_file = tmp_path / "not-a-directory"
    regular_file.write_text("", encoding="utf-8")
    under_a_file = cli("station list", data_dir=regular_file / "state")
    assert_one_line_error(under_a_file, "data directory", str(regular_file / "state"))
    is_a_file = cli("station list", data_dir=regular_file)
    assert_one_line_error(is_a_file, "data directory", str(regular_file), "not a directory")


# --- the whole stack ------------------------------------------------------------------------


def test_demo_once_admits_and_refuses_as_expected(tmp_path: Path):
    result = cli(
        "demo --once --ws-port 0 --wss-port 0 --api-port 0 --files-port 0",
        data_dir=tmp_path,
        timeout=DEMO_TIMEOUT_SECONDS,
    )
    assert_ok(result)
    for fragment in ("admitted", "refused 401", "refused 404", "as expected"):
        assert fragment in result.stdout, result.stdout
    # The certificate phase: a renewal per OCPP version and a refused CSR (issue 4's demo).
    for fragment in ("DEMO-16-P3", "DEMO-201-P3"):
        assert any(
            line.startswith(fragment) and " renewed " in line for line in result.stdout.splitlines()
        ), result.stdout
    assert "CSR refused" in result.stdout
    assert "NOT as expected" not in result.stdout
