"""Opening a station's WebSocket: URL, credentials, subprotocol, TLS, and what went wrong.

Kept apart from the runner so the handshake rules (what counts as admitted, which failures are
security events) sit in one place. Secrets go to websockets only, never to a log.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from chargewarden.logs import wire_logger
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.core import StationCore

_wire_logger = wire_logger("chargewarden.simulator.websockets")

_REASON_MAX = 300  # a refusal body is diagnostic text; keep reports readable
# OpenSSL reasons meaning "no TLS version in common" (the CSMS offers only TLS < 1.2).
_TLS_VERSION_REASONS = ("UNSUPPORTED_PROTOCOL", "PROTOCOL_VERSION", "WRONG_SSL_VERSION")


@dataclass
class ConnectOutcome:
    admitted: bool
    http_status: int | None
    subprotocol: str | None
    reason: str


def station_tls_context(context: ssl.SSLContext | None) -> ssl.SSLContext:
    """The context a station uses for wss: by default the system roots with host-name checks
    (SIM-01); never below TLS 1.2 (whitepaper A00.FR.315/416), whatever the caller built."""
    if context is None:
        context = ssl.create_default_context()
    if context.minimum_version < ssl.TLSVersion.TLSv1_2:
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def open_connection(
    core: StationCore,
    *,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float,
) -> tuple[ConnectOutcome, ClientConnection | None]:
    """One handshake with the station's current URL and credentials. Refusals (HTTP status,
    no subprotocol, TLS or network failure) come back as an outcome, never as an exception."""
    cfg = core.config
    url = core.connection_url()
    headers: dict[str, str] = {}
    header = core.auth_header()
    if header is not None:
        headers["Authorization"] = header
    options: dict[str, Any] = {}
    if url.startswith("wss:"):
        # Built on first use: a ws-only fleet of thousands should not load the CA bundle each.
        options["ssl"] = station_tls_context(ssl_context)
    try:
        ws = await connect(
            url,
            subprotocols=[Subprotocol(p) for p in cfg.subprotocols],
            additional_headers=headers,
            compression="deflate",
            open_timeout=connect_timeout,
            proxy=None,  # stations talk to their CSMS directly; ignore *_PROXY variables
            ping_interval=None,  # the CSMS pings (RPC-07); answering is automatic
            logger=_wire_logger,
            user_agent_header=f"{cfg.vendor}/{cfg.model} {cfg.firmware_version}",
            **options,
        )
    except InvalidStatus as exc:
        response = exc.response
        body = bytes(response.body).decode("utf-8", "replace").strip()
        if response.status_code == 401:
            _event(core, "FailedToAuthenticateAtCentralSystem", "FailedToAuthenticateAtCsms", "401")
        reason = (body or response.reason_phrase)[:_REASON_MAX]
        return ConnectOutcome(False, response.status_code, None, reason), None
    except ssl.SSLCertVerificationError as exc:
        # SIM-01: a CSMS certificate that does not verify is a security event.
        message = str(exc.verify_message)
        _event(core, "InvalidCentralSystemCertificate", "InvalidCsmsCertificate", message)
        return ConnectOutcome(False, None, None, f"TLS: {message}"), None
    except ssl.SSLError as exc:
        if any(mark in (exc.reason or "") for mark in _TLS_VERSION_REASONS):
            _event(core, "InvalidTLSVersion", "InvalidTLSVersion", str(exc.reason))
        return ConnectOutcome(False, None, None, f"TLS: {exc.reason or exc}"), None
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        reason = f"{type(exc).__name__}: {exc}"[:_REASON_MAX]
        return ConnectOutcome(False, None, None, reason), None
    chosen = ws.subprotocol
    if chosen is None:
        # RPC-01: the CSMS completes the handshake without a subprotocol, then closes.
        await ws.close()
        return ConnectOutcome(False, 101, None, "no common subprotocol"), None
    if chosen != cfg.ocpp_version.subprotocol:
        # Only possible with offered_subprotocols overridden: we cannot speak what it chose.
        await ws.close()
        return ConnectOutcome(False, 101, chosen, f"CSMS chose {chosen}"), None
    return ConnectOutcome(True, 101, chosen, "admitted"), ws


def _event(core: StationCore, name16: str, name201: str, tech_info: str) -> None:
    name = name16 if core.version is OcppVersion.V16 else name201
    core.record_security_event(name, core.now(), tech_info)
