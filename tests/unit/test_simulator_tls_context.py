"""The station's TLS side without sockets: configuration, the context it builds, how failed
handshakes become security events (SIM-01), and the profile rules of the handshake."""

from __future__ import annotations

import os
import ssl
import stat
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.connect import (
    STATION_TLS12_CIPHERS,
    TlsFailure,
    TlsMaterialError,
    _tls_refusal,
    classify_tls_failure,
    open_connection,
    station_ssl_context,
    station_tls_context,
)
from chargewarden.simulator.core import StationCore

V16, V201 = OcppVersion.V16, OcppVersion.V201
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
KEY = bytes.fromhex("0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF")
PASSWORD = "Station-Password-0123456789"
ACCEPTED_BOOT = {"status": "Accepted", "interval": 60, "currentTime": "2025-03-01T12:00:00Z"}


def pem_pair(common_name: str) -> tuple[bytes, bytes, ec.EllipticCurvePrivateKey]:
    """A self-signed certificate (PEM), its PKCS#8 key (PEM) and the key object."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, key


ROOT_PEM, _, _ = pem_pair("Test CSMS Root")
CLIENT_PEM, CLIENT_KEY_PEM, CLIENT_KEY = pem_pair("AL1000")


def config(version: OcppVersion = V201, **overrides: Any) -> StationConfig:
    params: dict[str, Any] = {
        "identity": "AL1000",
        "ocpp_version": version,
        "url": "wss://csms.example:8443/ocpp",
        "security_profile": 2,
        "auth_key": KEY,
        "password": PASSWORD,
        "csms_root_pem": ROOT_PEM,
    }
    params.update(overrides)
    return StationConfig(**params)


def profile_3(**overrides: Any) -> StationConfig:
    tls = {"client_cert_pem": CLIENT_PEM, "client_key_pem": CLIENT_KEY_PEM}
    return config(**{"security_profile": 3, **tls, **overrides})


# ---- configuration ------------------------------------------------------------------------------


def test_repr_hides_the_client_key_and_summarises_certificates() -> None:
    cfg = profile_3()
    key_body = CLIENT_KEY_PEM.decode().splitlines()[1]
    for text in (repr(cfg), str(cfg), f"{cfg}"):
        assert "PRIVATE KEY" not in text and key_body not in text
        assert "client_key_pem='***'" in text
        assert f"client_cert_pem=<PEM, {len(CLIENT_PEM)} bytes>" in text
        assert "BEGIN CERTIFICATE" not in text
    assert "client_key_pem=None" in repr(config())


def test_tls_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="go together"):
        config(client_cert_pem=CLIENT_PEM)
    with pytest.raises(ValueError, match="go together"):
        config(client_key_pem=CLIENT_KEY_PEM)
    with pytest.raises(TypeError, match="csms_root_pem"):
        config(csms_root_pem=ROOT_PEM.decode())
    with pytest.raises(ValueError, match="tls_server_hostname"):
        config(tls_server_hostname="")


def test_profile_2_sends_basic_auth_and_profile_3_never_does() -> None:
    assert config(security_profile=2).auth_header() is not None
    # Credentials provisioned or not, profile 3 authenticates by certificate only.
    assert profile_3().auth_header() is None
    assert StationCore(profile_3()).auth_header() is None
    assert profile_3().connection_url() == "wss://csms.example:8443/ocpp/AL1000"


async def test_tls_material_counts_as_installed_for_a_profile_raise() -> None:
    # SIM-04 / A05.FR.03-04: a profile-1 station provisioned with a CSMS root and its own
    # certificate may be raised to 3, and then connects over its TLS URL without Basic auth.
    core = StationCore(
        profile_3(
            ocpp_version=V16, security_profile=1, url="ws://127.0.0.1:9000/ocpp",
            tls_url="wss://csms.example/ocpp",
        ),
        lambda: NOW,
    )  # fmt: skip
    change = core.handlers()["ChangeConfiguration"]
    assert await change({"key": "SecurityProfile", "value": "3"}) == {"status": "Accepted"}
    assert core.connection_url() == "wss://csms.example/ocpp/AL1000"
    assert core.auth_header() is None
    bare = StationCore(config(V16, security_profile=1, url="ws://h/ocpp", csms_root_pem=None))
    assert not bare.csms_root_installed and not bare.station_certificate_installed


# ---- the context --------------------------------------------------------------------------------


def test_no_context_for_a_station_that_never_uses_tls() -> None:
    assert station_ssl_context(config(url="ws://127.0.0.1:9000/ocpp", security_profile=1)) is None
    # A ws station that may be upgraded to a wss URL gets one.
    upgradable = config(
        url="ws://127.0.0.1:9000/ocpp", security_profile=1, tls_url="wss://csms.example/ocpp"
    )
    assert station_ssl_context(upgradable) is not None


def test_context_verifies_the_csms_over_tls_1_2_or_newer_without_compression() -> None:
    context = station_ssl_context(config())
    assert context is not None
    assert context.protocol is ssl.PROTOCOL_TLS_CLIENT
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.check_hostname is True
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.hostname_checks_common_name is True  # OCPP puts the FQDN in CN
    assert context.options & ssl.OP_NO_COMPRESSION
    # Only the configured root is trusted, not the system store.
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "Test CSMS Root"),),)
    ]
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and {c["name"] for c in tls12} <= set(STATION_TLS12_CIPHERS.split(":"))
    assert all(c["aead"] for c in context.get_ciphers())


def test_context_without_a_root_uses_the_system_store() -> None:
    context = station_ssl_context(config(csms_root_pem=None))
    assert context is not None and context.verify_mode is ssl.CERT_REQUIRED


def test_an_explicit_context_is_never_below_tls_1_2() -> None:
    legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    legacy.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    assert station_tls_context(legacy).minimum_version is ssl.TLSVersion.TLSv1_2


def encrypted(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )


@pytest.mark.parametrize(
    ("overrides", "field", "problem"),
    [
        ({"csms_root_pem": b"not a certificate"}, "csms_root_pem", "no PEM certificate"),
        ({"client_cert_pem": b"-----BEGIN NOTHING-----"}, "client_cert_pem", "no PEM certificate"),
        ({"client_key_pem": b"garbage"}, "client_key_pem", "no PEM private key"),
        ({"client_key_pem": encrypted(CLIENT_KEY)}, "client_key_pem", "encrypted"),
        ({"client_key_pem": pem_pair("other")[1]}, "client_key_pem", "does not belong"),
    ],
)
def test_bad_tls_material_is_refused_naming_the_field(
    overrides: dict[str, Any], field: str, problem: str
) -> None:
    params = {"client_cert_pem": CLIENT_PEM, "client_key_pem": CLIENT_KEY_PEM, **overrides}
    with pytest.raises(TlsMaterialError) as caught:
        station_ssl_context(config(security_profile=3, **params))
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert "PRIVATE KEY" not in str(caught.value)


def _recording_load_cert_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[str, str, int, int, int]]:
    """Wrap load_cert_chain to note the paths and their modes while OpenSSL reads them."""
    seen: list[tuple[str, str, int, int, int]] = []
    original = ssl.SSLContext.load_cert_chain

    def load(
        self: ssl.SSLContext, certfile: Any, keyfile: Any = None, password: Any = None
    ) -> None:
        folder = os.path.dirname(str(keyfile))
        seen.append(
            (
                str(certfile),
                str(keyfile),
                stat.S_IMODE(os.stat(certfile).st_mode),
                stat.S_IMODE(os.stat(keyfile).st_mode),
                stat.S_IMODE(os.stat(folder).st_mode),
            )
        )
        original(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", load)
    return seen


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no memfd_create on this platform")
def test_client_key_is_loaded_from_memory_where_possible(monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("no /proc/self/fd")
    seen = _recording_load_cert_chain(monkeypatch)
    assert station_ssl_context(profile_3()) is not None
    [(cert_path, key_path, *_)] = seen
    assert cert_path.startswith("/proc/self/fd/") and key_path.startswith("/proc/self/fd/")
    # The descriptors are closed again (their numbers may since have been reused).
    for path in (cert_path, key_path):
        assert not (os.path.exists(path) and os.readlink(path).startswith("/memfd:station-pem-"))


def _memfd_refused(name: str, flags: int = 0) -> int:
    raise OSError(38, "Function not implemented")  # what a seccomp sandbox may answer


@pytest.mark.parametrize("memfd", ["absent", "refused"])
def test_client_key_fallback_is_a_private_directory_removed_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, memfd: str
) -> None:
    if memfd == "absent":
        monkeypatch.delattr(os, "memfd_create", raising=False)
    else:
        monkeypatch.setattr(os, "memfd_create", _memfd_refused, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = _recording_load_cert_chain(monkeypatch)
    assert station_ssl_context(profile_3()) is not None
    [(cert_path, key_path, cert_mode, key_mode, folder_mode)] = seen
    assert key_path.startswith(str(tmp_path))
    assert (cert_mode, key_mode, folder_mode) == (0o600, 0o600, 0o700)
    assert list(tmp_path.iterdir()) == []


# ---- failed handshakes → security events (SIM-01) --------------------------------------------


def ssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] test")
    error.reason = reason
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), TlsFailure.CERTIFICATE),
        (ssl_error("TLSV1_ALERT_PROTOCOL_VERSION"), TlsFailure.VERSION),
        (ssl_error("UNSUPPORTED_PROTOCOL"), TlsFailure.VERSION),
        (ssl_error("NO_CIPHERS_AVAILABLE"), TlsFailure.CIPHER),
        (ssl_error("WRONG_CIPHER_RETURNED"), TlsFailure.CIPHER),
        (ssl_error("TLSV1_ALERT_INSUFFICIENT_SECURITY"), TlsFailure.CIPHER),
        # wss:// to a plain HTTP port, and the ambiguous handshake_failure alert: no event.
        (ssl_error("WRONG_VERSION_NUMBER"), None),
        (ssl_error("SSLV3_ALERT_HANDSHAKE_FAILURE"), None),
        (ssl_error("TLSV1_ALERT_UNKNOWN_CA"), None),  # the CSMS refusing our certificate
    ],
)
def test_handshake_failures_are_classified(
    error: ssl.SSLError, expected: TlsFailure | None
) -> None:
    assert classify_tls_failure(error) == expected


def booted(version: OcppVersion) -> StationCore:
    core = StationCore(config(version), lambda: NOW)
    core.on_connected(NOW)
    core.on_boot_response(ACCEPTED_BOOT, NOW)
    core.take_outgoing()
    return core


def cert_error(message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = message
    return error


@pytest.mark.parametrize(
    ("version", "reason", "event", "notified"),
    [
        # 1.6 whitepaper §8: the certificate and version events are not critical (log only);
        # the cipher event is sent all the same (A00.FR.318 note).
        (V16, "cert", "InvalidCentralSystemCertificate", False),
        (V16, "TLSV1_ALERT_PROTOCOL_VERSION", "InvalidTLSVersion", False),
        (V16, "NO_CIPHERS_AVAILABLE", "InvalidTLSCipherSuite", True),
        # 2.0.1 Part 2 Appendix 1: all three are critical.
        (V201, "cert", "InvalidCsmsCertificate", True),
        (V201, "TLSV1_ALERT_PROTOCOL_VERSION", "InvalidTLSVersion", True),
        (V201, "NO_CIPHERS_AVAILABLE", "InvalidTLSCipherSuite", True),
    ],
)
def test_refusals_are_logged_and_notified_once_per_kind(
    version: OcppVersion, reason: str, event: str, notified: bool
) -> None:
    core = booted(version)
    error = cert_error("unable to get local issuer certificate") if reason == "cert" else None
    for _ in range(3):
        text = _tls_refusal(core, error or ssl_error(reason))
        assert text.startswith("TLS: ")
    assert [e.type for e in core.security_log][-3:] == [event] * 3
    sent = core.take_outgoing()
    # Three failed handshakes, one notification waiting: a retrying station does not pile up.
    assert sent == ([("SecurityEventNotification", sent[0][1])] if notified else [])
    if notified:
        assert sent[0][1]["type"] == event
        assert sent[0][1]["techInfo"] == (
            "unable to get local issuer certificate" if reason == "cert" else reason
        )
        # Delivered: the next refusal is notified again.
        _tls_refusal(core, error or ssl_error(reason))
        assert [a for a, _ in core.take_outgoing()] == ["SecurityEventNotification"]


# ---- profile rules of the handshake -------------------------------------------------------------


@pytest.mark.parametrize("profile", [2, 3])
async def test_profiles_2_and_3_never_connect_without_tls(profile: int) -> None:
    # Port 9 on loopback: if the station tried, the reason would be a refused connection.
    core = StationCore(
        config(url="ws://127.0.0.1:9/ocpp", security_profile=profile, csms_root_pem=None)
    )
    outcome, ws = await open_connection(core, ssl_context=None, connect_timeout=1.0)
    assert ws is None
    assert (outcome.admitted, outcome.http_status) == (False, None)
    assert outcome.reason == f"SecurityProfile {profile} needs a wss:// URL"
