"""Opening a station's WebSocket: URL, credentials, subprotocol, TLS, and what went wrong.

Kept apart from the runner so the handshake rules (what counts as admitted, which failures are
security events) sit in one place. Secrets go to websockets only, never to a log.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus
from websockets.typing import Subprotocol

from chargewarden.logs import wire_logger
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.certificates import TlsMaterial
from chargewarden.simulator.config import StationConfig, TlsMaterialError
from chargewarden.simulator.core import StationCore

__all__ = [
    "STATION_TLS12_CIPHERS",
    "ConnectOutcome",
    "TlsFailure",
    "TlsMaterialError",
    "classify_tls_failure",
    "core_ssl_context",
    "open_connection",
    "station_ssl_context",
    "station_tls_context",
    "tls_context_from",
]

_wire_logger = wire_logger("chargewarden.simulator.websockets")

_REASON_MAX = 300  # a refusal body is diagnostic text; keep reports readable
# OpenSSL reasons meaning "no TLS version in common" (the CSMS offers only TLS < 1.2): the
# CSMS's protocol_version alert, or a ServerHello below our minimum. Not WRONG_VERSION_NUMBER:
# that is what a plain-HTTP port answers to a ClientHello (wss:// URL, ws:// server).
_TLS_VERSION_REASONS = ("UNSUPPORTED_PROTOCOL", "PROTOCOL_VERSION", "WRONG_SSL_VERSION")
# OpenSSL reasons that name the cipher suites. A bare handshake_failure alert is not among
# them: OpenSSL servers send it for no shared cipher, no shared group or signature algorithm,
# and a missing TLS 1.2 client certificate alike, and a wrong event is worse than none.
_TLS_CIPHER_REASONS = (
    "NO_SHARED_CIPHER",
    "NO_CIPHERS_AVAILABLE",
    "WRONG_CIPHER_RETURNED",
    "INSUFFICIENT_SECURITY",
    "NO_CIPHER_MATCH",
)
# TLS 1.2 suites a station offers (whitepaper A00.FR.317/318/421/422: the ECDSA and RSA GCM
# suites, plus ECDHE-RSA GCM, which is as strong and what RSA-certificate servers prefer; no
# CBC, no SHA-1 MAC, nothing ENISA calls legacy, A00.FR.319/423). TLS 1.3 suites are all AEAD
# and stay at OpenSSL's defaults.
STATION_TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
    )
)


class TlsFailure(StrEnum):
    """Why the station refused the CSMS during the TLS handshake (SIM-01)."""

    CERTIFICATE = "certificate"
    VERSION = "version"
    CIPHER = "cipher"


# Event names per failure: (OCPP 1.6 whitepaper, OCPP 2.0.1).
_TLS_EVENTS = {
    TlsFailure.CERTIFICATE: ("InvalidCentralSystemCertificate", "InvalidCsmsCertificate"),
    TlsFailure.VERSION: ("InvalidTLSVersion", "InvalidTLSVersion"),
    TlsFailure.CIPHER: ("InvalidTLSCipherSuite", "InvalidTLSCipherSuite"),
}


def classify_tls_failure(exc: ssl.SSLError) -> TlsFailure | None:
    """Map a failed client handshake to the security event it stands for, if any.

    A certificate that does not verify (unknown CA, expired, wrong host name) raises
    SSLCertVerificationError; version and cipher problems are told apart by OpenSSL's reason.
    Anything else (a reset, the CSMS refusing our own certificate) is not the station's event.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsFailure.CERTIFICATE
    reason = exc.reason or ""
    if any(mark in reason for mark in _TLS_VERSION_REASONS):
        return TlsFailure.VERSION
    if any(mark in reason for mark in _TLS_CIPHER_REASONS):
        return TlsFailure.CIPHER
    return None


def station_ssl_context(config: StationConfig) -> ssl.SSLContext | None:
    """The TLS context of a station with this configuration as provisioned; None if it never
    uses wss. (A running station builds its context from what it holds now: `core_ssl_context`.)
    """
    if not config.uses_tls:
        return None
    return tls_context_from(
        TlsMaterial(config.csms_root_pem, config.client_cert_pem, config.client_key_pem)
    )


def core_ssl_context(core: StationCore) -> ssl.SSLContext | None:
    """The TLS context of a station as it is now: its current client certificate and key (a
    CertificateSigned one, or one from its state directory, or the provisioned one) and every
    installed CSMS root. None if it never uses wss (no wss URL configured or in a 2.0.1 slot)."""
    if not core.uses_tls:
        return None
    return tls_context_from(core.certificates.tls_material())


def tls_context_from(material: TlsMaterial) -> ssl.SSLContext:
    """The station's TLS context for this material.

    TLS 1.2 or newer only (A00.FR.312/416), the server chain verified against the CSMS roots
    (the system store when `csms_roots_pem` is None; nothing at all when it is empty) and the
    host name checked (A00.FR.307/308/411/412; the commonName is still accepted when the
    certificate has no subjectAltName, since OCPP puts the FQDN in CN), no compression
    (A00.FR.320/424), the suites of STATION_TLS12_CIPHERS, and the station's certificate chain
    and key when it has them (profile 3).

    Bad material raises TlsMaterialError at once, so a misconfigured station fails when it is
    set up instead of retrying a doomed handshake forever.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.hostname_checks_common_name = True
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_ciphers(STATION_TLS12_CIPHERS)
    roots = material.csms_roots_pem
    if roots is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    elif roots:
        _check_certificates("csms_root_pem", roots)
        try:
            context.load_verify_locations(cadata=roots.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError) as exc:
            raise TlsMaterialError("csms_root_pem", f"cannot be loaded ({exc})") from None
    if material.client_cert_pem is not None and material.client_key_pem is not None:
        _load_client_chain(context, material.client_cert_pem, material.client_key_pem)
    return context


def _check_certificates(field: str, pem: bytes) -> None:
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise TlsMaterialError(field, "no PEM certificate in it") from None


def _check_private_key(pem: bytes) -> None:
    try:
        serialization.load_pem_private_key(pem, password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        raise TlsMaterialError(
            "client_key_pem", "the key is encrypted; a station holds its key unencrypted"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsMaterialError("client_key_pem", "no PEM private key in it") from None


def _load_client_chain(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """Load the station's certificate chain and key from bytes.

    The ssl module loads them from files only. Where Linux offers anonymous memory files
    (memfd_create), they are written there and handed to OpenSSL as /proc/self/fd/N: the key
    never touches a file system, and only this process (or one allowed to trace it) can reach
    it. Elsewhere they go to a fresh private directory (mode 0700, files 0600) that is removed
    as soon as OpenSSL has read them.
    """
    _check_certificates("client_cert_pem", cert_pem)
    _check_private_key(key_pem)
    try:
        with _pem_files(cert_pem, key_pem) as (cert_path, key_path):
            # The callback stops OpenSSL from prompting on the terminal for a passphrase.
            context.load_cert_chain(cert_path, key_path, password=_refuse_password)
    except _EncryptedKey:
        raise TlsMaterialError(
            "client_key_pem", "the key is encrypted; a station holds its key unencrypted"
        ) from None
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in (exc.reason or ""):
            problem = "the key does not belong to the first certificate of client_cert_pem"
            raise TlsMaterialError("client_key_pem", problem) from None
        raise TlsMaterialError("client_cert_pem", f"cannot be loaded ({exc})") from None


class _EncryptedKey(Exception):
    pass


def _refuse_password() -> bytes:
    raise _EncryptedKey


@contextlib.contextmanager
def _pem_files(cert_pem: bytes, key_pem: bytes) -> Iterator[tuple[str, str]]:
    """Paths OpenSSL can read the two PEM blobs from, valid inside the `with` block only."""
    fds = _memory_files(cert_pem, key_pem)
    if fds is not None:
        try:
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="chargewarden-station-") as directory:  # 0700
        paths = []
        for name, data in (("cert.pem", cert_pem), ("key.pem", key_pem)):
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb") as file:
                file.write(data)
            paths.append(path)
        yield paths[0], paths[1]


def _memory_files(*blobs: bytes) -> list[int] | None:
    """Anonymous memory files holding `blobs`; None where there are none (not Linux, no
    /proc, or memfd_create refused by a sandbox)."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None or not Path("/proc/self/fd").is_dir():
        return None
    fds: list[int] = []
    try:
        for index, data in enumerate(blobs):
            fds.append(memfd_create(f"station-pem-{index}", os.MFD_CLOEXEC))
            with open(fds[-1], "wb", closefd=False) as file:
                file.write(data)
    except OSError:
        for fd in fds:
            os.close(fd)
        return None
    return fds


@dataclass
class ConnectOutcome:
    admitted: bool
    http_status: int | None
    subprotocol: str | None
    reason: str


def station_tls_context(context: ssl.SSLContext | None) -> ssl.SSLContext:
    """A context the caller built, never below TLS 1.2 (A00.FR.312/416) whatever it says;
    None → the system roots with host-name checks."""
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
    no subprotocol, TLS or network failure) come back as an outcome, never as an exception.

    `ssl_context` is used for wss as given (clamped to TLS >= 1.2); None → the context
    `core_ssl_context` builds from what the station holds now.
    """
    cfg = core.config
    url = core.connection_url()
    secure = url[:6].lower() == "wss://"
    if core.security_profile >= 2 and not secure:
        # Profiles 2 and 3 exist only over TLS: never put a password on a plain connection.
        reason = f"SecurityProfile {core.security_profile} needs a wss:// URL"
        return ConnectOutcome(False, None, None, reason), None
    headers: dict[str, str] = {}
    header = core.auth_header()
    if header is not None:
        headers["Authorization"] = header
    options: dict[str, Any] = {}
    if secure:
        context = ssl_context if ssl_context is not None else core_ssl_context(core)
        options["ssl"] = station_tls_context(context)
        if cfg.tls_server_hostname is not None:
            options["server_hostname"] = cfg.tls_server_hostname
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
            user_agent_header=f"{cfg.vendor}/{cfg.model} {core.firmware_version}",
            **options,
        )
    except InvalidStatus as exc:
        response = exc.response
        body = bytes(response.body).decode("utf-8", "replace").strip()
        if response.status_code == 401:
            _event(core, "FailedToAuthenticateAtCentralSystem", "FailedToAuthenticateAtCsms", "401")
        reason = (body or response.reason_phrase)[:_REASON_MAX]
        return ConnectOutcome(False, response.status_code, None, reason), None
    except ssl.SSLError as exc:
        return ConnectOutcome(False, None, None, _tls_refusal(core, exc)), None
    except InvalidMessage as exc:
        if secure and isinstance(exc.__cause__, EOFError):
            # TLS 1.3 finishes the client's side of the handshake before the server has checked
            # the client certificate; a CSMS refusing it then just closes the connection.
            reason = "TLS: the CSMS closed the connection before answering (client certificate?)"
        else:
            reason = f"{type(exc).__name__}: {exc}"[:_REASON_MAX]
        return ConnectOutcome(False, None, None, reason), None
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


def _tls_refusal(core: StationCore, exc: ssl.SSLError) -> str:
    """SIM-01: record the security event a failed handshake stands for; the outcome's reason.

    The handshake has already been torn down (A00.FR.310/315/322). The event enters the
    security log each time; its notification is queued once until delivered, so a station
    retrying an untrusted CSMS all night does not pile up thousands of identical messages.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = str(exc.verify_message or exc.reason or exc)
    else:
        detail = str(exc.reason or exc)
    failure = classify_tls_failure(exc)
    if failure is not None:
        name16, name201 = _TLS_EVENTS[failure]
        # 1.6 lists the cipher event as non-critical but asks for it to be sent all the same
        # (whitepaper A00.FR.318 note); otherwise each version's criticality decides.
        push = True if failure is TlsFailure.CIPHER else None
        _event(core, name16, name201, detail, push=push, coalesce=True)
    return f"TLS: {detail}"[:_REASON_MAX]


def _event(
    core: StationCore,
    name16: str,
    name201: str,
    tech_info: str,
    *,
    push: bool | None = None,
    coalesce: bool = False,
) -> None:
    name = name16 if core.version is OcppVersion.V16 else name201
    core.record_security_event(name, core.now(), tech_info, push=push, coalesce=coalesce)
