"""The `sim` flags checked and turned into StationConfig fields, one-line errors on the way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from chargewarden.cli.common import CliError, fail
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import (
    CSR_FAULTS,
    FIRMWARE_FAULTS,
    KEY_TYPES,
    REFUSABLE_CHANGES,
)
from chargewarden.simulator.connect import TlsMaterialError

IDENTITY_PLACEHOLDER = "{identity}"
_FLAG_OF_FIELD = {
    "csms_root_pem": "--csms-root",
    "client_cert_pem": "--cert",
    "client_key_pem": "--key",
    "state_dir": "--state-dir",
    "manufacturer_root_pem": "--manufacturer-root",
}


def check_url(url: str) -> str:
    # Checked here: the simulator would only meet a bad URL inside the connect, as an internal
    # error. The URL is not repeated in the message: it may carry a user name and password.
    try:
        parse_uri(url)
    except (InvalidURI, ValueError):
        fail("--url must be a ws:// or wss:// URL with a host, e.g. ws://127.0.0.1:9000/ocpp")
    return url


def check_tls_url(tls_url: str | None) -> str | None:
    if tls_url is None:
        return None
    try:
        secure = parse_uri(tls_url).secure
    except (InvalidURI, ValueError):
        secure = False
    if not secure:
        fail("--tls-url must be a wss:// URL with a host, e.g. wss://csms.example:9443/ocpp")
    return tls_url


def change_fields(refuse: list[str] | None, network_slots: int) -> dict[str, Any]:
    """StationConfig fields of the SIM-04 flags, checked."""
    unknown = sorted(set(refuse or ()) - set(REFUSABLE_CHANGES))
    if unknown:
        fail(
            f"--refuse-change {', '.join(unknown)}: unknown; choose from "
            f"{', '.join(REFUSABLE_CHANGES)}"
        )
    return {"refuse_changes": frozenset(refuse or ()), "network_slots": network_slots}


def parse_version(value: str | None) -> OcppVersion:
    if value is None:
        fail("--ocpp is required (1.6 or 2.0.1)")
    try:
        return OcppVersion.parse(value)
    except ValueError as exc:
        fail(str(exc))


def secret_fields(
    version: OcppVersion, profile: int, auth_key: str | None, password: str | None
) -> dict[str, object]:
    if profile not in (1, 2):
        return {}
    if version is OcppVersion.V16:
        if auth_key is None:
            fail("profile 1/2 on OCPP 1.6 needs --auth-key HEX (or CHARGEWARDEN_AUTH_KEY)")
        try:
            return {"auth_key": bytes.fromhex(auth_key.strip())}
        except ValueError:
            fail("--auth-key must be hexadecimal")
    if password is None:
        fail("profile 1/2 on OCPP 2.0.1 needs --password (or CHARGEWARDEN_PASSWORD)")
    return {"password": password}


def certificate_fields(
    cpo_name: str | None, hash_algorithm: str, csr_fault: str | None, key_type: str
) -> dict[str, Any]:
    """StationConfig fields of the certificate flags, checked (SIM-02/03)."""
    if hash_algorithm.upper() not in ("SHA256", "SHA384", "SHA512"):
        fail("--hash-algorithm must be SHA256, SHA384 or SHA512")
    if csr_fault is not None and csr_fault not in CSR_FAULTS:
        fail(f"--csr-fault must be one of {', '.join(CSR_FAULTS)}")
    if key_type not in KEY_TYPES:
        fail(f"--key-type must be one of {', '.join(KEY_TYPES)}")
    fields: dict[str, Any] = {
        "hash_algorithm": hash_algorithm.upper(),
        "csr_fault": csr_fault,
        "key_type": key_type,
    }
    if cpo_name is not None:
        if not cpo_name.strip() or len(cpo_name) > 64 or not cpo_name.isprintable():
            fail("--cpo-name must be 1-64 printable characters")
        fields["cpo_name"] = cpo_name
    return fields


def firmware_fields(
    manufacturer_root: Path | None, firmware_fault: str | None, firmware_version: str | None
) -> dict[str, Any]:
    """StationConfig fields of the firmware flags, checked (SIM-05)."""
    if firmware_fault is not None and firmware_fault not in FIRMWARE_FAULTS:
        fail(f"--firmware-fault must be one of {', '.join(FIRMWARE_FAULTS)}")
    fields: dict[str, Any] = {"firmware_fault": firmware_fault}
    if firmware_version is not None:
        if not firmware_version.strip() or len(firmware_version) > 50:
            fail("--firmware-version must be 1-50 characters (BootNotification)")
        fields["firmware_version"] = firmware_version
    if manufacturer_root is not None:
        data = read_flag_file("--manufacturer-root", manufacturer_root)
        try:
            x509.load_pem_x509_certificates(data)
        except ValueError:
            fail(f"--manufacturer-root {manufacturer_root}: no PEM certificate in it")
        fields["manufacturer_root_pem"] = data
    return fields


def read_flag_file(flag: str, path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {flag} {path}: {exc.strerror or exc}")
    if not data.strip():
        fail(f"{flag} {path} is empty")
    return data


class TlsFlags:
    """The TLS flags, checked against the URL and profile; files read once."""

    def __init__(
        self,
        url: str,
        profile: int,
        csms_root: Path | None,
        cert: Path | None,
        key: Path | None,
        server_name: str | None,
        state_dir: Path | None = None,
        tls_url: str | None = None,
    ) -> None:
        # --tls-url is wss:// (checked): TLS flags serve it even when --url is plain.
        secure = url[:6].lower() == "wss://" or tls_url is not None
        if profile >= 2 and not secure:
            # The URL is not repeated: it may carry a user name and password.
            fail(f"profile {profile} runs over TLS only: --url must be a wss:// URL")
        given = [
            f
            for f, v in (
                ("--csms-root", csms_root),
                ("--cert", cert),
                ("--key", key),
                ("--tls-server-name", server_name),
            )
            if v is not None
        ]
        if given and not secure:
            fail(f"{', '.join(given)}: only for a wss:// URL (TLS; --url or --tls-url)")
        if (cert is None) != (key is None):
            fail("--cert and --key go together")
        if profile == 3 and cert is None and state_dir is None:
            fail(
                "profile 3 authenticates with a client certificate: give --cert FILE and "
                "--key FILE (or a --state-dir holding one)"
            )
        if profile != 3 and cert is not None:
            fail("--cert and --key are for profile 3 (profiles 1 and 2 use Basic auth)")
        if server_name is not None and not server_name.strip():
            fail("--tls-server-name must not be empty")
        self.paths = {
            "--csms-root": csms_root,
            "--cert": cert,
            "--key": key,
            "--state-dir": state_dir,
        }
        self.root = read_flag_file("--csms-root", csms_root) if csms_root is not None else None
        self.cert, self.key = cert, key
        self.server_name = server_name

    @property
    def per_station(self) -> bool:
        return any(p is not None and IDENTITY_PLACEHOLDER in str(p) for p in (self.cert, self.key))

    def chain_for(self, identity: str) -> tuple[bytes, bytes]:
        assert self.cert is not None and self.key is not None
        return (
            read_flag_file("--cert", Path(str(self.cert).replace(IDENTITY_PLACEHOLDER, identity))),
            read_flag_file("--key", Path(str(self.key).replace(IDENTITY_PLACEHOLDER, identity))),
        )

    def fields(self, identity: str | None = None) -> dict[str, Any]:
        """StationConfig fields; with `identity`, this station's own certificate and key."""
        fields: dict[str, Any] = {
            "csms_root_pem": self.root,
            "tls_server_hostname": self.server_name,
        }
        if self.cert is not None:
            cert, key = self.chain_for(identity or "")
            fields.update(client_cert_pem=cert, client_key_pem=key)
        return fields

    def chain_callback(self) -> Callable[[str], tuple[bytes, bytes]] | None:
        if self.cert is None:
            return None
        if self.per_station:
            return self.chain_for
        shared = self.chain_for("")
        return lambda _identity: shared

    def error(self, exc: TlsMaterialError) -> CliError:
        flag = _FLAG_OF_FIELD.get(exc.field, exc.field)
        path = self.paths.get(flag)
        return CliError(f"{flag} {path}: {exc.problem}" if path else f"{flag}: {exc.problem}")
