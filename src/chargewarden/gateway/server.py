"""The station edge: WebSocket listeners, the admission handshake, and connection lifetimes.

Everything that decides lives in `admission.admit()`; this module only gathers the facts
(identity, scheme, peer, credentials, offered subprotocols), performs the slow or I/O steps
admission asks for (store lookup, password verification, throttling), and acts on the verdict.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from typing import Literal

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from chargewarden.config import ProxySettings
from chargewarden.domain.station_calls import StationCalls, StationSession
from chargewarden.gateway.admission import (
    Accept,
    AdmissionPolicy,
    CheckPassword,
    ConnectRequest,
    Reject,
    Transport,
    admit,
)
from chargewarden.gateway.commits import commit_pending_credential, commit_pending_profile
from chargewarden.gateway.connection import StationConnection
from chargewarden.gateway.identity import identity_from_path
from chargewarden.gateway.observer import STORE_UNAVAILABLE, GatewayObserver, NoObserver
from chargewarden.gateway.registry import ConnectionInfo, ConnectionRegistry
from chargewarden.gateway.tls import (
    DEFAULT_TLS_READ_BUFFER_BYTES,
    HandshakeFailure,
    TlsTerminator,
    build_server_context,
)
from chargewarden.gateway.transport_facts import (
    TransportInspector,
    TransportRefused,
    authorization_header,
    offered_subprotocols,
)
from chargewarden.logs import wire_logger
from chargewarden.pki.material import TlsMaterial
from chargewarden.security.basic_auth import parse_basic_authorization
from chargewarden.security.events import CsmsEvent
from chargewarden.security.recorder import SecurityRecorder
from chargewarden.security.throttle import AdmissionThrottle
from chargewarden.security.verifier import CredentialMatch, CredentialVerifier
from chargewarden.store import Store, StoreError
from chargewarden.store.records import StationRecord

log = logging.getLogger(__name__)

# Close code for the older of two connections with one identity: the newest wins.
CLOSE_REPLACED = 4000
SERVER_HEADER = "ChargeWarden"


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int
    scheme: Literal["ws", "wss"] = "ws"


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    policy: AdmissionPolicy
    call_timeout: float = 30.0
    max_message_bytes: int = 256 * 1024
    ping_interval: float | None = 60.0
    ping_timeout: float | None = 30.0
    proxy: ProxySettings = field(default_factory=ProxySettings)
    tls_read_buffer_bytes: int = DEFAULT_TLS_READ_BUFFER_BYTES


@dataclass(frozen=True, slots=True)
class _Admitted:
    accept: Accept
    station: StationRecord
    transport: Transport


class Gateway:
    def __init__(
        self,
        store: Store,
        registry: ConnectionRegistry,
        recorder: SecurityRecorder,
        verifier: CredentialVerifier,
        throttle: AdmissionThrottle,
        calls: StationCalls,
        options: GatewayOptions,
        observer: GatewayObserver | None = None,
    ) -> None:
        self._store = store
        self._observer: GatewayObserver = observer or NoObserver()
        self._registry = registry
        self._recorder = recorder
        self._verifier = verifier
        self._throttle = throttle
        self._calls = calls
        self._options = options
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, _Admitted] = (
            weakref.WeakKeyDictionary()
        )
        self._servers: list[Server] = []
        self._inspector = TransportInspector(store, options.proxy)
        self._tls: TlsTerminator | None = None
        # Strong references, so closing a replaced connection is not garbage-collected midway.
        self._background: set[asyncio.Task[None]] = set()

    def use_tls_material(self, material: TlsMaterial) -> None:
        """Build a server context from `material`; the next handshakes use it (no restart)."""
        context = build_server_context(material)
        if self._tls is None:
            self._tls = TlsTerminator(
                context,
                self._tls_refused,
                self._peer_may_handshake,
                self._options.tls_read_buffer_bytes,
                self._observer.tls_handshake,
            )
        else:
            self._tls.replace_context(context)
        self._inspector.use_material(material)

    async def start(self, listeners: list[Listener]) -> list[tuple[str, int]]:
        """Open every listener; return the bound (host, port) pairs, in order."""
        bound: list[tuple[str, int]] = []
        for listener in listeners:
            extra: dict[str, object] = {}
            if listener.scheme == "wss":
                if self._tls is None:
                    raise RuntimeError("a wss listener needs use_tls_material() first")
                extra["create_connection"] = self._tls.connection_factory()
            server = await serve(
                self._handler,
                listener.host,
                listener.port,
                process_request=lambda conn, req, lst=listener: self._process_request(
                    conn, req, lst
                ),
                select_subprotocol=self._select_subprotocol,
                compression="deflate",
                max_size=self._options.max_message_bytes,
                ping_interval=self._options.ping_interval,
                ping_timeout=self._options.ping_timeout,
                server_header=SERVER_HEADER,
                # Admission waits for the store; in a reconnect storm that queue, not the
                # station, is slow, and refusing would only make the station retry later.
                open_timeout=30,
                logger=wire_logger("chargewarden.gateway.websockets"),
                **extra,  # type: ignore[arg-type]
            )
            self._servers.append(server)
            sockname = next(iter(server.sockets)).getsockname()
            bound.append((sockname[0], sockname[1]))
            log.info(
                "listening for %s stations on %s:%s", listener.scheme, sockname[0], sockname[1]
            )
        return bound

    @property
    def listening(self) -> bool:
        """Every listener is bound and accepting (readiness)."""
        return bool(self._servers) and all(server.is_serving() for server in self._servers)

    def _peer_may_handshake(self, peer: str) -> bool:
        allowed = self._throttle.check("", peer).allowed
        if not allowed:
            self._observer.refused(CsmsEvent.RATE_LIMITED)
        return allowed

    async def _tls_refused(self, peer: str, failure: HandshakeFailure) -> None:
        self._observer.refused(failure.event)
        block_started = self._throttle.record_failure("", peer)
        await self._recorder.csms(failure.event, identity=None, peer=peer, reason=failure.reason)
        if block_started:
            await self._recorder.csms(
                CsmsEvent.RATE_LIMITED,
                identity=None,
                peer=peer,
                reason="repeated failed TLS handshakes; further attempts refused for a while",
            )

    async def close_connections_using(self, fingerprints: set[str], reason: str) -> list[str]:
        """Close every live connection authenticated by one of these certificates."""
        closed: list[str] = []
        for link in self._registry.links():
            if link.info.certificate_fingerprint in fingerprints:
                await self._recorder.csms(
                    CsmsEvent.REVOKED_CERTIFICATE,
                    identity=link.info.identity,
                    peer=link.info.peer,
                    reason=f"live connection closed: {reason}",
                    version=link.info.ocpp_version,
                )
                await link.close(1008, "certificate revoked")
                closed.append(link.info.identity)
        return closed

    async def stop(self) -> None:
        if self._tls is not None:
            await self._tls.close()
        for server in self._servers:
            server.close(close_connections=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def _process_request(
        self, connection: ServerConnection, request: Request, listener: Listener
    ) -> Response | None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return None  # not a WebSocket handshake; websockets answers 426
        try:
            return await self._admit(connection, request, listener)
        except StoreError as exc:
            # Fail closed: without the store nobody can be verified, so nobody gets in.
            log.error("refusing a station connection: the store is unavailable: %s", exc)
            self._observer.refused(STORE_UNAVAILABLE)
            response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Try again later.\n")
            response.headers["Retry-After"] = "30"
            return response

    async def _admit(
        self, connection: ServerConnection, request: Request, listener: Listener
    ) -> Response | None:
        peer = str(connection.remote_address[0]) if connection.remote_address else "unknown"
        identity = identity_from_path(request.path)
        if identity is None:
            self._observer.refused(CsmsEvent.INVALID_IDENTITY)
            self._throttle.record_failure("", peer)
            await self._recorder.csms(
                CsmsEvent.INVALID_IDENTITY,
                identity=None,
                peer=peer,
                reason=f"path does not end in a valid station identity: {request.path[:120]!r}",
            )
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charging station.\n")

        decision = self._throttle.check(identity, peer)
        if not decision.allowed:
            self._observer.refused(CsmsEvent.RATE_LIMITED)
            response = connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS, "Too many failed attempts.\n"
            )
            response.headers["Retry-After"] = str(max(1, int(decision.retry_after + 0.999)))
            return response
        if decision.delay > 0:
            await asyncio.sleep(decision.delay)

        raw_authorization, present = authorization_header(request)
        credentials = parse_basic_authorization(raw_authorization)
        connect = ConnectRequest(
            identity=identity,
            offered_subprotocols=offered_subprotocols(request),
            credentials=credentials,
            malformed_authorization=present and credentials is None,
        )
        try:
            inspection = await self._inspector.inspect(connection, request, listener.scheme, peer)
        except TransportRefused as refused:
            verdict = Reject(403, refused.event, refused.reason)
            return await self._refuse(connection, verdict, identity, peer, None)
        for event, reason in inspection.notes:
            await self._recorder.csms(event, identity=identity, peer=peer, reason=reason)
        transport = inspection.transport
        station = await self._store.stations.get(identity)
        verdict = admit(station, transport, connect, self._options.policy)
        if isinstance(verdict, CheckPassword):
            assert station is not None
            match = await self._verifier.verify(station, verdict.password)
            verdict = admit(station, transport, connect, self._options.policy, match)

        if isinstance(verdict, Reject):
            return await self._refuse(connection, verdict, identity, peer, station)
        assert isinstance(verdict, Accept) and station is not None
        if verdict.credential in (CredentialMatch.CURRENT, CredentialMatch.PENDING):
            self._throttle.record_success(identity, peer)
        if verdict.version is None:  # let in only to be closed at once (no subprotocol)
            self._observer.refused(verdict.close_event or CsmsEvent.NO_COMMON_SUBPROTOCOL)
        else:
            self._observer.admitted(verdict.profile)
        self._admitted[connection] = _Admitted(verdict, station, transport)
        return None

    async def _refuse(
        self,
        connection: ServerConnection,
        verdict: Reject,
        identity: str,
        peer: str,
        station: StationRecord | None,
    ) -> Response:
        self._observer.refused(verdict.event)
        block_started = self._throttle.record_failure(identity, peer)
        await self._recorder.csms(
            verdict.event,
            identity=identity,
            peer=peer,
            reason=verdict.reason,
            version=station.ocpp_version if station else None,
        )
        if block_started:
            await self._recorder.csms(
                CsmsEvent.RATE_LIMITED,
                identity=identity,
                peer=peer,
                reason="repeated failed connection attempts; further attempts refused for a while",
            )
        # The station learns only the class of failure; the reason is in the security event.
        text = (
            "Unknown charging station.\n" if verdict.status == 404 else "Authentication failed.\n"
        )
        response = connection.respond(verdict.status, text)
        for name, value in verdict.headers:
            response.headers[name] = value
        return response

    def _select_subprotocol(self, connection: ServerConnection, offered: object) -> str | None:
        admitted = self._admitted.get(connection)
        if admitted is None or admitted.accept.version is None:
            return None
        return admitted.accept.version.subprotocol

    async def _handler(self, websocket: ServerConnection) -> None:
        admitted = self._admitted.pop(websocket, None)
        if admitted is None:  # cannot happen: process_request admits every handshake
            await websocket.close(1011, "not admitted")
            return
        accept, station = admitted.accept, admitted.station
        peer = admitted.transport.peer
        if accept.version is None:
            await self._recorder.csms(
                accept.close_event or CsmsEvent.NO_COMMON_SUBPROTOCOL,
                identity=accept.identity,
                peer=peer,
                reason=accept.close_reason,
                version=station.ocpp_version,
            )
            await websocket.close(1002, "no supported OCPP subprotocol")
            return
        now = datetime.now(UTC)
        if accept.commits_pending_profile:
            await commit_pending_profile(self._store, station, accept.profile)
        if accept.credential is CredentialMatch.PENDING and station.pending_credential_hash:
            await commit_pending_credential(self._store, station, station.pending_credential_hash)
        session = StationSession(accept.identity, accept.version, peer, station.last_boot_status)
        info = ConnectionInfo(
            identity=accept.identity,
            ocpp_version=accept.version,
            security_profile=accept.profile,
            connected_since=now,
            peer=peer,
            transport=admitted.transport.scheme,
            certificate_fingerprint=(
                admitted.transport.client_certificate.facts.fingerprint_sha256
                if admitted.transport.client_certificate and accept.profile == 3
                else None
            ),
        )
        link = StationConnection(
            websocket,
            info,
            session,
            self._calls,
            self._recorder,
            self._options.call_timeout,
            partial(self._observer.station_call, accept.version),
        )
        previous = self._registry.register(link)
        if previous is not None:
            log.info("station %s reconnected; closing its older connection", accept.identity)
            task = asyncio.create_task(
                previous.close(CLOSE_REPLACED, "replaced by a newer connection")
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        log.info(
            "station %s connected (OCPP %s, profile %s, %s)",
            accept.identity,
            accept.version,
            accept.profile,
            peer,
        )
        try:
            self._calls.seen(accept.identity, now)
            self._calls.connected(session, info.certificate_fingerprint)
            link.start_follow_ups()
            await link.serve()
        finally:
            self._registry.unregister(link)
            log.info("station %s disconnected", accept.identity)
