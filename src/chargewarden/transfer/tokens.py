"""Per-request URL tokens: minted with the request, only their SHA-256 stored.

A firmware download URL may be fetched more than once (a station retries a broken download)
until it expires; a log upload URL is good for one upload. Both belong to one station's
request, so a leaked link is worth one file at most, for a limited time.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import quote

from chargewarden.store import Store
from chargewarden.store.transfer_records import FileTokenRecord, TransferPurpose

TOKEN_BYTES = 32
# Tokens we mint are 43 URL-safe base64 characters; anything far off that is not ours.
MAX_TOKEN_CHARS = 64


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class TokenProblem(StrEnum):
    UNKNOWN = "unknown"
    WRONG_PURPOSE = "wrong-purpose"
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True, slots=True)
class TokenCheck:
    token: FileTokenRecord | None
    problem: TokenProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def judge(record: FileTokenRecord | None, purpose: TransferPurpose, now: datetime) -> TokenCheck:
    """Pure: whether a presented token opens the door, and if not, why."""
    if record is None:
        return TokenCheck(None, TokenProblem.UNKNOWN)
    if record.purpose is not purpose:
        return TokenCheck(record, TokenProblem.WRONG_PURPOSE)
    if now >= record.expires_at:
        return TokenCheck(record, TokenProblem.EXPIRED)
    if purpose is TransferPurpose.LOG_UPLOAD and record.used_at is not None:
        return TokenCheck(record, TokenProblem.USED)
    return TokenCheck(record, None)


class TransferLinks:
    """Mints the URLs stations are given, under the files listener's public base URL."""

    def __init__(self, store: Store, base_url: str) -> None:
        self._store = store
        self.base_url = base_url.rstrip("/")

    async def mint(
        self,
        purpose: TransferPurpose,
        station: str,
        ref_id: int,
        expires_at: datetime,
    ) -> str:
        """A new token, stored (as its digest) before anyone can be told the URL."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        await self._store.file_tokens.add(
            FileTokenRecord(
                token_sha256=token_digest(token),
                purpose=purpose,
                station_identity=station,
                ref_id=ref_id,
                expires_at=expires_at,
            )
        )
        return token

    def firmware_url(self, token: str, filename: str) -> str:
        return f"{self.base_url}/files/firmware/{token}/{quote(filename)}"

    def log_url(self, token: str) -> str:
        return f"{self.base_url}/files/logs/{token}"

    async def check(self, token: str, purpose: TransferPurpose, now: datetime) -> TokenCheck:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return TokenCheck(None, TokenProblem.UNKNOWN)
        return judge(await self._store.file_tokens.find(token_digest(token)), purpose, now)


def expiry(start: datetime, seconds: float) -> datetime:
    return start + timedelta(seconds=seconds)
