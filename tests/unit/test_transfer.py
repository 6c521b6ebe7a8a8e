"""Transfer links (FW-01, LOG-01): which presented token opens which door, and file names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargewarden.store.transfer_records import FileTokenRecord, TransferPurpose
from chargewarden.transfer.storage import safe_filename
from chargewarden.transfer.tokens import TokenProblem, judge, token_digest

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def token(purpose: TransferPurpose, *, used: bool = False, ttl: float = 60) -> FileTokenRecord:
    return FileTokenRecord(
        token_sha256=token_digest("t"), purpose=purpose, station_identity="CP-1", ref_id=1,
        expires_at=NOW + timedelta(seconds=ttl), used_at=NOW if used else None,
    )  # fmt: skip


DOWNLOAD, UPLOAD = TransferPurpose.FIRMWARE_DOWNLOAD, TransferPurpose.LOG_UPLOAD


@pytest.mark.parametrize(
    ("record", "purpose", "problem"),
    [
        (None, DOWNLOAD, TokenProblem.UNKNOWN),
        (token(UPLOAD), DOWNLOAD, TokenProblem.WRONG_PURPOSE),
        (token(DOWNLOAD), UPLOAD, TokenProblem.WRONG_PURPOSE),
        (token(DOWNLOAD, ttl=0), DOWNLOAD, TokenProblem.EXPIRED),
        (token(UPLOAD, ttl=-1), UPLOAD, TokenProblem.EXPIRED),
        (token(UPLOAD, used=True), UPLOAD, TokenProblem.USED),
        # A download link may be fetched again (a station retrying a broken download).
        (token(DOWNLOAD, used=True), DOWNLOAD, None),
        (token(UPLOAD), UPLOAD, None),
    ],
)
def test_FW_01_LOG_01_token_judgement(
    record: FileTokenRecord | None, purpose: TransferPurpose, problem: TokenProblem | None
) -> None:
    check = judge(record, purpose, NOW)
    assert check.problem is problem and check.ok is (problem is None)


def test_tokens_are_stored_as_digests() -> None:
    assert token_digest("abc") != "abc" and len(token_digest("abc")) == 64


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("fw-2.1.0.bin", "fw-2.1.0.bin"),
        ("../../etc/passwd", "passwd"),
        ("a b;rm -rf.log", "a_b_rm_-rf.log"),
        ("..", "file"),
        ("", "file"),
        ("x" * 300, "x" * 100),
    ],
)
def test_file_names_cannot_leave_their_directory(name: str, safe: str) -> None:
    assert safe_filename(name) == safe
