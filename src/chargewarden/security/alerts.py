"""Operator alerts: stored, logged as one structured line, and POSTed to a webhook if configured.

The webhook body is JSON; ``X-ChargeWarden-Signature: sha256=<hex>`` is an HMAC-SHA256 over
``<X-ChargeWarden-Timestamp>.<body>`` with the configured secret, so a receiver can check both
origin and freshness. Delivery is retried with exponential backoff in the background; the
alert record counts the attempts and says when it was delivered. An alert is never lost
because a webhook is down: the store has it first.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from chargewarden.config import AlertSettings
from chargewarden.store import Store, StoreError
from chargewarden.store.records import AlertRecord, AlertSeverity

log = logging.getLogger("chargewarden.alerts")

SIGNATURE_HEADER = "X-ChargeWarden-Signature"
TIMESTAMP_HEADER = "X-ChargeWarden-Timestamp"
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 300.0


class AlertConfigError(Exception):
    pass


def load_webhook_secret(settings: AlertSettings) -> bytes | None:
    if settings.webhook_secret_file is None:
        return None
    try:
        secret = settings.webhook_secret_file.read_bytes().strip()
    except OSError as exc:
        raise AlertConfigError(
            f"cannot read alerts.webhook_secret_file {settings.webhook_secret_file}: "
            f"{exc.strerror or exc}"
        ) from None
    if len(secret) < 16:
        raise AlertConfigError("alerts.webhook_secret_file must hold at least 16 bytes")
    return secret


def sign_body(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def alert_body(alert: AlertRecord) -> bytes:
    return json.dumps(
        {
            "id": alert.id,
            "at": (alert.at or datetime.now(UTC)).isoformat(),
            "severity": str(alert.severity),
            "kind": alert.kind,
            "station": alert.station_identity,
            "message": alert.message,
            "details": alert.details,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


class Alerts:
    def __init__(self, store: Store, settings: AlertSettings) -> None:
        self._store = store
        self._settings = settings
        self._secret = load_webhook_secret(settings)
        self._deliveries: set[asyncio.Task[None]] = set()

    async def raise_alert(
        self,
        severity: AlertSeverity,
        kind: str,
        message: str,
        *,
        station: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AlertRecord:
        alert = await self._store.alerts.add(
            AlertRecord(
                severity=severity,
                kind=kind,
                message=message,
                station_identity=station,
                details=details or {},
                at=datetime.now(UTC),
            )
        )
        log.warning(
            "ALERT %s %s station=%s: %s",
            severity,
            kind,
            station,
            message,
            extra={"alert": kind, "severity": str(severity), "station": station},
        )
        if self._settings.webhook_url:
            task = asyncio.create_task(self._deliver(alert))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        return alert

    async def _deliver(self, alert: AlertRecord) -> None:
        assert self._settings.webhook_url is not None and alert.id is not None
        body = alert_body(alert)
        delay = FIRST_RETRY_SECONDS
        async with httpx.AsyncClient(timeout=self._settings.webhook_timeout) as client:
            for attempt in range(1, self._settings.webhook_attempts + 1):
                timestamp = str(int(time.time()))
                headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp}
                if self._secret is not None:
                    headers[SIGNATURE_HEADER] = sign_body(self._secret, timestamp, body)
                try:
                    response = await client.post(
                        self._settings.webhook_url, content=body, headers=headers
                    )
                    delivered = 200 <= response.status_code < 300
                    problem = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    delivered, problem = False, type(exc).__name__
                try:
                    await self._store.alerts.delivery_attempted(alert.id, delivered=delivered)
                except StoreError as exc:
                    log.error("cannot record webhook delivery of alert %s: %s", alert.id, exc)
                if delivered:
                    return
                log.warning(
                    "alert webhook attempt %s/%s for alert %s failed: %s",
                    attempt,
                    self._settings.webhook_attempts,
                    alert.id,
                    problem,
                )
                if attempt < self._settings.webhook_attempts:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_SECONDS)
        log.error("alert %s was not delivered to the webhook; it stays in the store", alert.id)

    async def close(self, grace: float = 2.0) -> None:
        """Give in-flight deliveries a moment, then stop them (they are in the store)."""
        if not self._deliveries:
            return
        _, pending = await asyncio.wait(set(self._deliveries), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
