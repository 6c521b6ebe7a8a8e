"""Pure parts of log retrieval (LOG-01): upload URLs never reach a message trace, log types and
times as operators give them."""

from __future__ import annotations

import json

import pytest
import typer

from chargewarden.cli.logs import parse_time
from chargewarden.domain.station_commands import LogRequest, log_payload
from chargewarden.rpc.redact import redact_payload
from chargewarden.store.transfer_records import LogType
from chargewarden.workflows.log_fetch import FAILURE_STATUSES, log_words
from chargewarden.workflows.logs import parse_log_type
from chargewarden.workflows.service import JobError

TOKEN = "Su-gRjC7y7vCx1ei_mxyF8pSNpdQJrsM-5V_kBVhs6w"


def test_LOG_01_GetLog_remote_location_is_redacted_in_traces() -> None:
    payload = log_payload(
        LogRequest(
            request_id=7,
            log_type="SecurityLog",
            remote_location=f"https://files.example.com:9444/files/logs/{TOKEN}",
        )
    )
    redacted = redact_payload("GetLog", payload)
    assert TOKEN not in json.dumps(redacted)
    assert redacted["log"]["remoteLocation"] == "https://files.example.com:9444/***"
    assert redacted["requestId"] == 7 and redacted["logType"] == "SecurityLog"
    # The payload sent to the station is untouched.
    assert TOKEN in payload["log"]["remoteLocation"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"https://[2001:db8::1]:9444/files/firmware/{TOKEN}/fw.bin",
            "https://[2001:db8::1]:9444/***",
        ),
        ("ftp://user:secret-pass@ftp.example.com/logs/", "ftp://ftp.example.com/***"),
        ("not a url", "***"),
    ],
)
def test_file_transfer_urls_keep_only_scheme_and_host(url: str, shown: str) -> None:
    redacted = redact_payload("UpdateFirmware", {"requestId": 1, "firmware": {"location": url}})
    assert redacted["firmware"]["location"] == shown


def test_log_types_as_operators_and_OCPP_name_them() -> None:
    assert parse_log_type("security") is LogType.SECURITY
    assert parse_log_type("Diagnostics") is LogType.DIAGNOSTICS
    assert parse_log_type("SecurityLog") is LogType.SECURITY
    with pytest.raises(JobError, match="security or diagnostics"):
        parse_log_type("kernel")
    assert log_words("SecurityLog") == "security log"


def test_failure_statuses_of_both_spellings() -> None:
    # N01.FR.10 (whitepaper text says UploadFailed, the schemas UploadFailure).
    assert {"UploadFailure", "UploadFailed", "BadMessage", "PermissionDenied"} <= FAILURE_STATUSES
    assert "Uploading" not in FAILURE_STATUSES and "Uploaded" not in FAILURE_STATUSES


def test_cli_times_need_a_zone() -> None:
    assert parse_time("2025-01-31T12:00:00Z", "--since") == "2025-01-31T12:00:00+00:00"
    assert parse_time(None, "--since") is None
    for bad in ("2025-01-31T12:00:00", "yesterday"):
        with pytest.raises(typer.Exit):
            parse_time(bad, "--since")
