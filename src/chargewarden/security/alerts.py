"""Operator alerts: stored, logged as one structured line, and POSTed to a webhook if configured.

The webhook body is JSON; ``X-ChargeWarden-Signature: sha256=<hex>`` is an HMAC-SHA256 over
``<X-ChargeWarden-Timestamp>.<body>`` with the configured secret, so a receiver can check both
origin and freshness. Delivery is retried with exponential backoff in the background; the
alert record counts the attempts and says when it was delivered. An alert is never lost
because a webhook is down: the store has it first, and ``start()`` runs a redelivery pass that
picks up what a previous run left undelivered with attempts to spare (stopped mid-backoff,
crashed). Delivery is at least once: receivers deduplicate on the alert ``id``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime, timedelta
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
MAX_CONCURRENT_DELIVERIES = 8
REDELIVERY_BATCH = 100
# The redelivery pass leaves older alerts alone: with attempts left and this old, they were
# raised while no webhook was configured, and a newly configured webhook should not receive
# months of history at once. They stay in the store and in `chargewarden alerts`.
REDELIVER_WITHIN = timedelta(days=7)


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
        # Ids being delivered by this process, so the redelivery pass does not send them twice.
        self._in_flight: set[int] = set()
        # A webhook that is down must not turn a burst of alerts into a burst of sockets.
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_DELIVERIES)
        self._redelivery: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin the redelivery pass of alerts earlier runs did not deliver (background)."""
        if self._settings.webhook_url and self._redelivery is None:
            self._redelivery = asyncio.create_task(self._redeliver(), name="alert-redelivery")

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
            extra={
                "alert": kind,
                "alert_id": alert.id,
                "severity": str(severity),
                "station": station,
            },
        )
        if self._settings.webhook_url:
            self._spawn(alert)
        return alert

    def _spawn(self, alert: AlertRecord) -> asyncio.Task[None]:
        assert alert.id is not None
        self._in_flight.add(alert.id)
        task = asyncio.create_task(self._deliver(alert))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
        return task

    async def _redeliver(self) -> None:
        since = datetime.now(UTC) - REDELIVER_WITHIN
        after_id, total = 0, 0
        try:
            while True:
                batch = await self._store.alerts.undelivered(
                    max_attempts=self._settings.webhook_attempts,
                    since=since,
                    after_id=after_id,
                    limit=REDELIVERY_BATCH,
                )
                if not batch:
                    break
                after_id = batch[-1].id or after_id
                waiting = [a for a in batch if a.id not in self._in_flight]
                if waiting and not total:
                    log.info("sending alerts a previous run did not deliver to the webhook")
                total += len(waiting)
                # One page at a time: a long backlog is never all in memory at once.
                tasks = [self._spawn(alert) for alert in waiting]
                await asyncio.gather(*tasks, return_exceptions=True)
        except StoreError as exc:
            log.error("alert redelivery stopped: %s; undelivered alerts stay in the store", exc)
            return
        if total:
            log.info("redelivery pass done: %d alert(s) retried", total)

    async def _deliver(self, alert: AlertRecord) -> None:
        assert self._settings.webhook_url is not None and alert.id is not None
        try:
            async with self._slots:
                await self._attempts(alert)
        finally:
            self._in_flight.discard(alert.id)

    async def _attempts(self, alert: AlertRecord) -> None:
        assert self._settings.webhook_url is not None and alert.id is not None
        body = alert_body(alert)
        limit = self._settings.webhook_attempts
        # Attempts of an earlier run count: the limit is per alert, not per process.
        first = alert.delivery_attempts + 1
        delay = FIRST_RETRY_SECONDS
        async with httpx.AsyncClient(timeout=self._settings.webhook_timeout) as client:
            for attempt in range(first, limit + 1):
                # A fresh timestamp per attempt: receivers may refuse stale signatures.
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
                    limit,
                    alert.id,
                    problem,
                )
                if attempt < limit:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_SECONDS)
        log.error("alert %s was not delivered to the webhook; it stays in the store", alert.id)

    async def close(self, grace: float = 2.0) -> None:
        """Give in-flight deliveries a moment, then stop them (they are in the store, and the
        next start's redelivery pass sends those with attempts left)."""
        if self._redelivery is not None:
            self._redelivery.cancel()
            await asyncio.gather(self._redelivery, return_exceptions=True)
        if not self._deliveries:
            return
        _, pending = await asyncio.wait(set(self._deliveries), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
