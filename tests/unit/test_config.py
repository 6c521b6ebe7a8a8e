"""Settings: defaults, the TOML file, CHARGEWARDEN_* environment overrides, flags, and errors.

Precedence, highest first: flags (keyword overrides of load_settings), environment, file,
defaults. Every problem is a ConfigError with one line naming the setting, never a pydantic
traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chargewarden.config import CONFIG_ENV, ENV_PREFIX, ConfigError, load_settings
from chargewarden.store import sqlite_url


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's or CI's own CHARGEWARDEN_* variables must not leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def write_toml(tmp_path: Path, text: str, name: str = "chargewarden.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(*args: object, **kwargs: object) -> str:
    """load_settings(...) must fail with one clean ConfigError line; returns the message."""
    with pytest.raises(ConfigError) as caught:
        load_settings(*args, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message
    assert "\n" not in message, message
    assert "Traceback" not in message
    assert "validation error" not in message.lower()  # pydantic's multi-line header
    assert "errors.pydantic.dev" not in message
    # Raised "from None": a traceback, if ever printed, would not chain the pydantic one.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    return message


# --- defaults -------------------------------------------------------------------------------


def test_defaults_keep_everything_under_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.data_dir == Path("var")
    assert settings.database_url is None
    assert settings.effective_database_url == sqlite_url(tmp_path / "var" / "chargewarden.db")
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.host == "127.0.0.1"
    assert (settings.ws_port, settings.api_port) == (9000, 9080)


def test_sec02_profile_0_is_off_by_default():
    assert load_settings().allow_profile_0 is False


def test_sqlite_database_follows_the_data_dir(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path / "state")
    assert settings.effective_database_url == sqlite_url(tmp_path / "state" / "chargewarden.db")


def test_explicit_database_url_wins_over_the_data_dir(tmp_path: Path):
    url = "postgresql://cw@db.example/cw"
    settings = load_settings(data_dir=tmp_path, database_url=url)
    assert settings.effective_database_url == url


# --- sources and precedence -----------------------------------------------------------------


def test_file_values_load(tmp_path: Path):
    path = write_toml(
        tmp_path,
        f"""
data_dir = "{tmp_path / "state"}"
host = "0.0.0.0"
ws_port = 9100
allow_profile_0 = true
log_format = "json"

[throttle]
block_seconds = 42.5
window = 30
""",
    )
    settings = load_settings(path)
    assert settings.data_dir == tmp_path / "state"
    assert settings.host == "0.0.0.0"  # noqa: S104 - a value read back, not a bind
    assert settings.ws_port == 9100
    assert settings.allow_profile_0 is True
    assert settings.log_format == "json"
    assert settings.throttle.block_seconds == 42.5
    assert settings.throttle.window == 30.0
    assert settings.throttle.block_after == 20  # untouched keys keep their defaults


def test_config_file_named_by_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    path = write_toml(tmp_path, "ws_port = 9111\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    assert load_settings().ws_port == 9111
    # An explicit file (--config) wins over CHARGEWARDEN_CONFIG.
    other = write_toml(tmp_path, "ws_port = 9222\n", name="other.toml")
    assert load_settings(other).ws_port == 9222


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    path = write_toml(tmp_path, 'ws_port = 9100\nhost = "10.0.0.1"\n')
    monkeypatch.setenv("CHARGEWARDEN_WS_PORT", "9200")
    settings = load_settings(path)
    assert settings.ws_port == 9200
    assert settings.host == "10.0.0.1"  # not in the environment: the file's value stays


def test_environment_enables_profile_0(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CHARGEWARDEN_ALLOW_PROFILE_0", "true")
    assert load_settings().allow_profile_0 is True


def test_nested_environment_override_with_double_underscore(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    path = write_toml(tmp_path, "[throttle]\nblock_seconds = 10\nwindow = 30\n")
    monkeypatch.setenv("CHARGEWARDEN_THROTTLE__BLOCK_SECONDS", "60")
    settings = load_settings(path)
    assert settings.throttle.block_seconds == 60.0
    assert settings.throttle.window == 30.0  # the file's other nested keys survive


def test_flags_override_environment_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    path = write_toml(tmp_path, f'ws_port = 9100\napi_port = 9101\ndata_dir = "{tmp_path / "f"}"\n')
    monkeypatch.setenv("CHARGEWARDEN_WS_PORT", "9200")
    monkeypatch.setenv("CHARGEWARDEN_DATA_DIR", str(tmp_path / "env"))
    settings = load_settings(path, ws_port=9300, api_port=9301, data_dir=tmp_path / "flag")
    assert settings.ws_port == 9300
    assert settings.api_port == 9301
    assert settings.data_dir == tmp_path / "flag"


def test_flag_zero_is_a_value_not_an_absent_flag(monkeypatch: pytest.MonkeyPatch):
    # `--ws-port 0` (any free port) must win over the environment even though 0 is falsy.
    monkeypatch.setenv("CHARGEWARDEN_WS_PORT", "9200")
    assert load_settings(ws_port=0).ws_port == 0


def test_none_flags_are_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    path = write_toml(tmp_path, 'ws_port = 9100\nhost = "10.0.0.1"\n')
    monkeypatch.setenv("CHARGEWARDEN_API_PORT", "9201")
    settings = load_settings(path, ws_port=None, api_port=None, host=None, data_dir=None)
    assert settings.ws_port == 9100
    assert settings.api_port == 9201
    assert settings.host == "10.0.0.1"
    assert settings.data_dir == Path("var")


def test_nested_flag_changes_only_the_keys_it_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    path = write_toml(tmp_path, "[throttle]\nwindow = 30\nblock_seconds = 10\n")
    monkeypatch.setenv("CHARGEWARDEN_THROTTLE__BLOCK_SECONDS", "60")
    throttle = load_settings(path, throttle={"slowdown_after": 7}).throttle
    assert throttle.slowdown_after == 7
    assert throttle.window == 30.0  # file
    assert throttle.block_seconds == 60.0  # environment


# --- errors: one ConfigError line naming the setting ---------------------------------------


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        pytest.param("bogus_key = 1\n", "bogus_key: unknown setting", id="unknown-key"),
        pytest.param(
            "[throttle]\nblock_secondz = 3\n",
            "throttle.block_secondz: unknown setting",
            id="unknown-nested-key",
        ),
        # Keys that look like pydantic-settings options are settings like any other.
        pytest.param('_env_prefix = "X_"\n', "_env_prefix: unknown setting", id="option-name"),
        pytest.param('ws_port = "abc"\n', "ws_port:", id="wrong-type-port"),
        pytest.param('allow_profile_0 = "maybe"\n', "allow_profile_0:", id="wrong-type-bool"),
        pytest.param("throttle = 5\n", "throttle:", id="wrong-type-table"),
        pytest.param('log_level = "LOUD"\n', "log_level:", id="wrong-choice"),
        pytest.param("ws_port = 70000\n", "ws_port:", id="port-too-high"),
        pytest.param("api_port = -1\n", "api_port:", id="port-negative"),
        pytest.param('host = "   "\n', "host:", id="blank-host"),
    ],
)
def test_invalid_file_is_one_line_naming_the_setting(tmp_path: Path, toml: str, expected: str):
    path = write_toml(tmp_path, toml)
    message = config_error(path)
    assert expected in message
    assert str(path) in message
    assert message.startswith("invalid configuration")


def test_port_out_of_range_says_the_limit(tmp_path: Path):
    message = config_error(write_toml(tmp_path, "ws_port = 70000\n"))
    assert "ws_port" in message
    assert "65535" in message


def test_every_problem_is_reported_on_the_one_line(tmp_path: Path):
    message = config_error(write_toml(tmp_path, 'ws_port = "abc"\nbogus = 1\n'))
    assert "ws_port" in message
    assert "bogus: unknown setting" in message


def test_missing_file(tmp_path: Path):
    path = tmp_path / "nowhere.toml"
    message = config_error(path)
    assert message == f"config file not found: {path}"


def test_missing_file_named_by_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    path = tmp_path / "nowhere.toml"
    monkeypatch.setenv(CONFIG_ENV, str(path))
    assert str(path) in config_error()


def test_invalid_toml(tmp_path: Path):
    path = write_toml(tmp_path, "ws_port = \n")
    message = config_error(path)
    assert f"config file {path} is not valid TOML" in message
    assert "line 1" in message


def test_config_path_is_a_directory(tmp_path: Path):
    message = config_error(tmp_path)
    assert f"cannot read config file {tmp_path}" in message


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CHARGEWARDEN_WS_PORT", "99999", "ws_port:"),
        ("CHARGEWARDEN_WS_PORT", "nine thousand", "ws_port:"),
        ("CHARGEWARDEN_THROTTLE__BLOCK_SECONDS", "abc", "throttle.block_seconds:"),
        ("CHARGEWARDEN_THROTTLE__BLOCK_SECONDZ", "3", "throttle.block_secondz: unknown setting"),
        ("CHARGEWARDEN_LOG_FORMAT", "xml", "log_format:"),
        # A whole nested table given as (bad) JSON: pydantic-settings' own SettingsError.
        ("CHARGEWARDEN_THROTTLE", "not json", "throttle"),
    ],
)
def test_invalid_environment_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
):
    monkeypatch.setenv(variable, value)
    message = config_error()
    assert expected in message
    assert "environment" in message


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"ws_port": 70000}, "ws_port:"),
        ({"api_port": -5}, "api_port:"),
        ({"heartbeat_interval": 1}, "heartbeat_interval:"),
        ({"throttle": {"window": 0}}, "throttle.window:"),
    ],
)
def test_invalid_flag_is_one_line_naming_the_setting(flags: dict[str, object], expected: str):
    assert expected in config_error(**flags)


def test_inconsistent_throttle_is_a_config_error_not_a_crash_at_start():
    with pytest.raises(ConfigError) as error:
        load_settings(None, throttle={"slowdown_after": 30, "block_after": 20})
    assert "throttle" in str(error.value) and "slowdown_after <= block_after" in str(error.value)
