"""TLS for the wss listener: the server context, and a handshake we perform ourselves.

Why we run the handshake (loop.start_tls) instead of handing an SSLContext to the listener:
asyncio drops a failed server handshake silently (a DEBUG line at most), so an expired or
foreign client certificate, or a TLS 1.0 client, would leave no trace. Doing it per connection
gives us the peer address and OpenSSL's reason for every refusal (SEC-13), and takes the
*current* context each time, so a renewed server certificate, a new trust store or CA applies
to the next handshake without a restart and without touching live connections (SEC-14).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection

from chargewarden.config import DEFAULT_TLS_READ_BUFFER_BYTES
from chargewarden.gateway.observer import TLS_DROPPED, TLS_OK, TLS_REFUSED
from chargewarden.pki.material import TlsMaterial
from chargewarden.security.events import CsmsEvent

log = logging.getLogger(__name__)

# SEC-08 / whitepaper A00.FR.421-426: the four required TLS 1.2 suites plus ECDHE-RSA AES-GCM
# (forward secrecy for RSA-certificate clients). Nothing CBC, nothing without AEAD. TLS 1.3
# suites are all AEAD and configured separately by OpenSSL.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",  # TLS_RSA_WITH_AES_128_GCM_SHA256
        "AES256-GCM-SHA384",  # TLS_RSA_WITH_AES_256_GCM_SHA384
    )
)
# Long enough for a reconnect storm queued behind thousands of handshakes on a small host.
HANDSHAKE_TIMEOUT_SECONDS = 30.0

# asyncio's TLS transport gives every connection a zero-filled 256 KiB read buffer
# (sslproto.SSLProtocol.max_size): with 10,000 idle chargers that is 2.5 GB of RSS. TLS records
# carry at most 16 KiB of plaintext, so 32 KiB loses nothing but the waste (bench/tls.py).
# It is a class attribute, hence set process-wide.


def set_tls_read_buffer(size: int) -> None:
    """0 leaves asyncio's default alone."""
    from asyncio import sslproto

    if size > 0:
        sslproto.SSLProtocol.max_size = max(size, 16 * 1024 + 512)


_VERSION_REASONS = (
    "UNSUPPORTED_PROTOCOL",
    "VERSION_TOO_LOW",
    "WRONG_VERSION_NUMBER",
    "NO_PROTOCOLS_AVAILABLE",
)
_CIPHER_REASONS = ("NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE", "NO_SUITABLE_SIGNATURE_ALGORITHM")


def build_server_context(material: TlsMaterial) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    # RSA and ECDSA certificates side by side: OpenSSL picks per suite, so ECDHE-ECDSA and
    # TLS_RSA clients are both served.
    for chain, key in material.server_chains:
        context.load_cert_chain(chain, key, password=material.key_passphrase)
    # Optional: profile-2 stations send no certificate; one that is sent must verify.
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata=material.station_trust_pem.decode("ascii"))
    # The station-issuing CA is the trust anchor, not the CPO root above it: a certificate the
    # root issued for any other purpose must not open the door for stations.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


@dataclass(frozen=True, slots=True)
class HandshakeFailure:
    event: CsmsEvent
    reason: str


def classify_handshake_failure(exc: BaseException) -> HandshakeFailure | None:
    """The security event for a refused handshake; None for network noise (resets, timeouts)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or exc.reason or str(exc)
        return HandshakeFailure(
            CsmsEvent.INVALID_CLIENT_CERTIFICATE, f"client certificate refused: {message}"
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if any(mark in reason for mark in _VERSION_REASONS):
            return HandshakeFailure(
                CsmsEvent.TLS_VERSION_REFUSED, f"TLS version below 1.2 refused ({reason})"
            )
        if any(mark in reason for mark in _CIPHER_REASONS):
            return HandshakeFailure(
                CsmsEvent.TLS_CIPHER_REFUSED, f"no permitted cipher suite offered ({reason})"
            )
        if "CERTIFICATE" in reason:
            return HandshakeFailure(
                CsmsEvent.INVALID_CLIENT_CERTIFICATE, f"client certificate refused ({reason})"
            )
        return HandshakeFailure(
            CsmsEvent.TLS_HANDSHAKE_FAILED, f"TLS handshake failed ({reason or exc})"
        )
    return None


FailureHook = Callable[[str, HandshakeFailure], Awaitable[None]]
PeerGate = Callable[[str], bool]
# (outcome, seconds) of every handshake attempted: gateway.observer.TLS_OK / _REFUSED / _DROPPED.
HandshakeTimer = Callable[[str, float], None]


class TlsTerminator:
    """Holds the current server context and performs each handshake."""

    def __init__(
        self,
        context: ssl.SSLContext,
        on_failure: FailureHook,
        admit_peer: PeerGate,
        read_buffer_bytes: int = DEFAULT_TLS_READ_BUFFER_BYTES,
        on_handshake: HandshakeTimer | None = None,
    ) -> None:
        set_tls_read_buffer(read_buffer_bytes)
        self._context = context
        self._on_failure = on_failure
        self._admit_peer = admit_peer
        self._on_handshake = on_handshake
        self._pending: set[asyncio.Task[None]] = set()

    def replace_context(self, context: ssl.SSLContext) -> None:
        """New handshakes use `context`; established connections keep theirs."""
        self._context = context

    def connection_factory(self) -> Callable[..., ServerConnection]:
        terminator = self

        def create(*args: Any, **kwargs: Any) -> ServerConnection:
            return _TlsServerConnection(terminator, *args, **kwargs)

        return create

    def start(self, connection: _TlsServerConnection, transport: asyncio.Transport) -> None:
        task = asyncio.get_running_loop().create_task(self._handshake(connection, transport))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _handshake(
        self, connection: _TlsServerConnection, transport: asyncio.Transport
    ) -> None:
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if peername else "unknown"
        if not self._admit_peer(peer):
            # A peer blocked for repeated failures gets no handshake (and costs no CPU).
            transport.abort()
            return
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            tls_transport = await loop.start_tls(
                transport,
                connection,
                self._context,
                server_side=True,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT_SECONDS,
            )
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
            transport.abort()
            failure = classify_handshake_failure(exc)
            self._timed(TLS_DROPPED if failure is None else TLS_REFUSED, started)
            if failure is None:
                log.debug("TLS handshake with %s ended: %s", peer, type(exc).__name__)
                return
            await self._on_failure(peer, failure)
            return
        if tls_transport is None:  # the peer went away during the handshake
            self._timed(TLS_DROPPED, started)
            return
        self._timed(TLS_OK, started)
        connection.tls_established(tls_transport)

    def _timed(self, outcome: str, started: float) -> None:
        if self._on_handshake is not None:
            self._on_handshake(outcome, time.perf_counter() - started)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)


class _TlsServerConnection(ServerConnection):
    """A websockets connection that starts only once our TLS handshake has completed."""

    def __init__(self, terminator: TlsTerminator, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._terminator = terminator
        self._tls_ready = False
        # The handshake's last flight often carries the HTTP request too: it is decrypted and
        # delivered before start_tls() returns to us, so it waits here instead of being lost.
        self._early: list[bytes] = []
        self._early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        # Not a byte of the ClientHello may reach the HTTP parser before start_tls takes over.
        transport.pause_reading()
        self._terminator.start(self, transport)

    def tls_established(self, transport: asyncio.Transport) -> None:
        self._tls_ready = True
        super().connection_made(transport)
        for chunk in self._early:
            super().data_received(chunk)
        self._early.clear()
        if self._early_eof:
            super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tls_ready:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._tls_ready:
            super().data_received(data)
        else:
            self._early.append(data)

    def eof_received(self) -> bool | None:
        if self._tls_ready:
            return super().eof_received()
        self._early_eof = True
        return None
