"""Static configuration of one simulated station.

The configuration is what the station was provisioned with at the factory / installation. What the
CSMS changes later (a rotated key, a raised security profile) lives in `StationCore`, so a config
object can be shared and reused to power-cycle a station back to its factory state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from chargewarden.pki.hashdata import HashAlgorithm
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.basic_auth import basic_authorization_header

# Schema limits of BootNotification (identical in 1.6 and 2.0.1); checked early so a bad fleet
# definition fails at start-up instead of as a FormationViolation on every boot.
_MAX_VENDOR = 20
_MAX_MODEL = 20
_MAX_SERIAL = 25
_MAX_FIRMWARE = 50
# X.509 upper bounds (RFC 5280 ub-common-name, ub-organization-name): the serial number is the
# CN and the CPO name the O of the station's CSR.
_MAX_NAME = 64
_MAX_NETWORK_SLOTS = 99

# Key pairs the station can generate for a CSR (SIM-02).
KEY_TYPES = ("ec-p256", "rsa-2048")
# Deliberately defective CSRs, for testing a CSMS: RSA 1024 key, CN other than the serial
# number, O other than the CPO name, signature that does not verify, BasicConstraints ca=True.
CSR_FAULTS = ("weak-key", "wrong-cn", "wrong-o", "bad-signature", "ca-request")

# Deliberate firmware-update failures, for testing a CSMS's failure paths (SIM-05): every
# download attempt fails (→ DownloadFailed after the request's retries), or the install fails
# after a verified download (→ InstallationFailed).
FIRMWARE_FAULTS = ("download-fails", "install-fails")

# Changes `refuse_changes` can make the station refuse (failure-path tests of a CSMS): the 1.6
# key / 2.0.1 password, the security profile (1.6 ChangeConfiguration; 2.0.1 a raising network
# profile or priority), 2.0.1 SetNetworkProfile and NetworkConfigurationPriority, root
# installation, and Reset.
REFUSABLE_CHANGES = (
    "AuthorizationKey",
    "BasicAuthPassword",
    "SecurityProfile",
    "NetworkProfile",
    "InstallCertificate",
    "Reset",
)

# Fields whose values must never appear in a repr, log line or exception message.
_SECRET_FIELDS = frozenset({"auth_key", "password", "client_key_pem"})
# Public but bulky (PEM certificates): the repr shows their size, not kilobytes of base64.
_PEM_FIELDS = frozenset({"csms_root_pem", "client_cert_pem", "manufacturer_root_pem"})


class TlsMaterialError(ValueError):
    """TLS material in a StationConfig (or in its state directory) that cannot be used;
    `field` names the config field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, repr=False)
class StationConfig:
    identity: str
    ocpp_version: OcppVersion
    url: str
    security_profile: int = 1
    # 1.6 AuthorizationKey as raw bytes (16–20 bytes on a correct station; not enforced so tests
    # can present deliberately wrong keys).
    auth_key: bytes | None = None
    # 2.0.1 SecurityCtrlr.BasicAuthPassword.
    password: str | None = None
    # Interop mode seen in the field: put the 40-hex text of the key on the wire, not its bytes.
    send_key_as_hex: bool = False
    vendor: str = "ChargeWarden"
    model: str = "SimStation"
    serial_number: str = ""  # "" → the identity (see __post_init__)
    firmware_version: str = "1.0.0"
    # Overrides the interval the CSMS hands out (tests and benchmarks want sub-second beats).
    heartbeat_interval: float | None = None
    # Test hook: offer these subprotocols instead of the version's own (e.g. only "ocpp9").
    offered_subprotocols: tuple[str, ...] | None = None
    # Test hook: Basic-auth username other than the identity.
    username: str | None = None
    # Boot again on every fresh connection (what a charger does after a power cycle). False:
    # a reconnect after an accepted boot goes straight to heartbeats (OCPP-J 2.0.1 §5.3).
    boot_on_reconnect: bool = True
    # URL used once the security profile is 2 or 3 (after an upgrade the station moves to wss).
    tls_url: str | None = None
    connector_count: int = 1
    # CpoName (1.6) / SecurityCtrlr.OrganizationName (2.0.1): O of the station's CSRs, and what
    # a signed certificate's O must be. The CSMS may change it over OCPP.
    cpo_name: str = "ChargeWarden CPO"
    # Retry interval when the CSMS answers a boot with interval 0; None → 30 s.
    boot_retry_interval: float | None = None
    reconnect_backoff_initial: float = 1.0
    reconnect_backoff_max: float = 60.0
    # Prerequisites for raising the security profile (whitepaper A05.FR.03/04); None → inferred
    # from the provisioned profile and TLS material (a profile-2/3 station, or one given
    # csms_root_pem, trusts the CSMS root; see StationCore).
    csms_root_installed: bool | None = None
    station_certificate_installed: bool | None = None
    security_log_size: int = 1000
    # TLS material (profiles 2/3), as bytes so a fleet can share it and tests need no files.
    # CA certificate(s) the station trusts for the CSMS server certificate (PEM); None → the
    # system default store.
    csms_root_pem: bytes | None = None
    # Profile 3: the station certificate followed by its chain (PEM) and the station's own
    # private key (PEM, unencrypted; PKCS#8 preferred). Never shown in a repr.
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    # SNI and host-name check name; None → the host of the URL (e.g. connect to an address,
    # verify the CSMS certificate for its DNS name).
    tls_server_hostname: str | None = None
    # Certificates managed over OCPP (SIM-02/03). Key pair generated for each CSR.
    key_type: str = "ec-p256"
    # certificateHashData algorithm of GetInstalledCertificateIds (DeleteCertificate matches in
    # whatever algorithm the CSMS uses).
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256
    # Installed root certificates allowed per type (CertificateStoreMaxLength).
    root_store_limit: int = 10
    # Test hook: send a deliberately defective CSR (one of CSR_FAULTS); None → a correct one.
    csr_fault: str | None = None
    # Directory the station keeps its keys, certificates and installed roots in across restarts
    # (None: in memory only, each start is the factory state).
    state_dir: Path | None = None
    # 2.0.1 network connection profile slots 1..N (SetNetworkProfile configurationSlot); slot 1
    # holds the provisioned connection.
    network_slots: int = 3
    # Test hook: changes (names from REFUSABLE_CHANGES) the station answers Rejected.
    refuse_changes: frozenset[str] = frozenset()
    # ManufacturerRootCertificate(s) installed at the factory (PEM): what a firmware signing
    # certificate must chain to (SIM-05). InstallCertificate can add more.
    manufacturer_root_pem: bytes | None = None
    # Test hook: one of FIRMWARE_FAULTS; None → updates succeed when they should.
    firmware_fault: str | None = None

    def __post_init__(self) -> None:
        # Accept "1.6" / "ocpp2.0.1" from a CLI or a TOML file as well as the enum.
        if not isinstance(self.ocpp_version, OcppVersion):
            object.__setattr__(self, "ocpp_version", OcppVersion.parse(str(self.ocpp_version)))
        if self.offered_subprotocols is not None:
            object.__setattr__(self, "offered_subprotocols", tuple(self.offered_subprotocols))
        if not self.serial_number:
            object.__setattr__(self, "serial_number", self.identity)
        if not isinstance(self.hash_algorithm, HashAlgorithm):
            try:
                algorithm = HashAlgorithm(str(self.hash_algorithm).upper())
            except ValueError:
                raise ValueError("hash_algorithm must be SHA256, SHA384 or SHA512") from None
            object.__setattr__(self, "hash_algorithm", algorithm)
        if self.state_dir is not None and not isinstance(self.state_dir, Path):
            object.__setattr__(self, "state_dir", Path(self.state_dir))
        self._check_refuse_changes()
        if not self.identity:
            raise ValueError("identity must not be empty")
        if self.security_profile not in (0, 1, 2, 3):
            raise ValueError(f"security_profile must be 0..3, got {self.security_profile}")
        if self.connector_count < 1:
            raise ValueError("connector_count must be at least 1")
        if self.heartbeat_interval is not None and self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")
        if not 0 < self.reconnect_backoff_initial <= self.reconnect_backoff_max:
            raise ValueError("need 0 < reconnect_backoff_initial <= reconnect_backoff_max")
        if self.auth_key is not None and not isinstance(self.auth_key, bytes):
            raise TypeError("auth_key must be bytes (the raw AuthorizationKey)")
        for name in ("csms_root_pem", "client_cert_pem", "client_key_pem", "manufacturer_root_pem"):
            if not isinstance(getattr(self, name), bytes | None):
                raise TypeError(f"{name} must be PEM bytes")
        if (self.client_cert_pem is None) != (self.client_key_pem is None):
            raise ValueError("client_cert_pem and client_key_pem go together")
        if self.tls_server_hostname is not None and not self.tls_server_hostname:
            raise ValueError("tls_server_hostname must not be empty (None: the URL's host)")
        if self.key_type not in KEY_TYPES:
            raise ValueError(f"key_type must be one of {', '.join(KEY_TYPES)}")
        if self.csr_fault is not None and self.csr_fault not in CSR_FAULTS:
            raise ValueError(f"csr_fault must be None or one of {', '.join(CSR_FAULTS)}")
        if self.firmware_fault is not None and self.firmware_fault not in FIRMWARE_FAULTS:
            raise ValueError(f"firmware_fault must be None or one of {', '.join(FIRMWARE_FAULTS)}")
        if self.root_store_limit < 1:
            raise ValueError("root_store_limit must be at least 1")
        if not 1 <= self.network_slots <= _MAX_NETWORK_SLOTS:
            raise ValueError(f"network_slots must be 1..{_MAX_NETWORK_SLOTS}")
        for name, value in (("serial_number", self.serial_number), ("cpo_name", self.cpo_name)):
            if len(value) > _MAX_NAME or not value.isprintable():
                raise ValueError(f"{name} must be at most {_MAX_NAME} printable characters")
        for name, value, limit in (
            ("vendor", self.vendor, _MAX_VENDOR),
            ("model", self.model, _MAX_MODEL),
            ("firmware_version", self.firmware_version, _MAX_FIRMWARE),
        ):
            if len(value) > limit:
                raise ValueError(f"{name} longer than {limit} characters (BootNotification)")

    def _check_refuse_changes(self) -> None:
        names = self.refuse_changes
        # A bare string would silently become a set of its letters.
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError("refuse_changes must be a set of change names, not a string")
        unknown = sorted(set(names) - set(REFUSABLE_CHANGES))
        if unknown:
            raise ValueError(
                f"refuse_changes: unknown change {', '.join(unknown)} "
                f"(known: {', '.join(REFUSABLE_CHANGES)})"
            )
        object.__setattr__(self, "refuse_changes", frozenset(names))

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS:
                shown = "None" if value is None else "'***'"
            elif f.name in _PEM_FIELDS and value is not None:
                shown = f"<PEM, {len(value)} bytes>"
            else:
                shown = repr(value)
            parts.append(f"{f.name}={shown}")
        return f"StationConfig({', '.join(parts)})"

    __str__ = __repr__

    @property
    def effective_username(self) -> str:
        return self.username if self.username is not None else self.identity

    @property
    def subprotocols(self) -> tuple[str, ...]:
        if self.offered_subprotocols is not None:
            return self.offered_subprotocols
        return (self.ocpp_version.subprotocol,)

    def boot_serial_number(self) -> str | None:
        """Serial number as it may go into BootNotification (omitted when over the schema limit,
        which happens when it defaults to a long identity)."""
        return self.serial_number if len(self.serial_number) <= _MAX_SERIAL else None

    @property
    def uses_tls(self) -> bool:
        """Whether the station ever connects over wss (now, or after a profile upgrade)."""
        return any(u is not None and is_wss(u) for u in (self.url, self.tls_url))

    def auth_header(self) -> str | None:
        """The Authorization header the station presents with its provisioned credentials:
        Basic for profiles 1 and 2, none for 0 and for 3 (the client certificate is the
        credential: whitepaper §2.5, A00.FR.402)."""
        return basic_auth_header(
            version=self.ocpp_version,
            security_profile=self.security_profile,
            username=self.effective_username,
            auth_key=self.auth_key,
            password=self.password,
            send_key_as_hex=self.send_key_as_hex,
        )

    def base_url(self, security_profile: int | None = None) -> str:
        """The CSMS URL without the identity: `tls_url` for profiles 2/3 when set, else `url`."""
        profile = self.security_profile if security_profile is None else security_profile
        return self.tls_url if profile >= 2 and self.tls_url else self.url

    def connection_url(self, security_profile: int | None = None) -> str:
        """Base URL (plain or TLS, by profile) + the percent-encoded identity as last segment."""
        return station_url(self.base_url(security_profile), self.identity)


def station_url(base: str, identity: str) -> str:
    """`base` (a CSMS URL such as 2.0.1 ocppCsmsUrl) + "/" + the percent-encoded identity."""
    return f"{base.rstrip('/')}/{quote(identity, safe='')}"


def is_wss(url: str) -> bool:
    return url[:6].lower() == "wss://"


def basic_auth_header(
    *,
    version: OcppVersion,
    security_profile: int,
    username: str,
    auth_key: bytes | None,
    password: str | None,
    send_key_as_hex: bool = False,
    key_hex_text: str | None = None,
) -> str | None:
    """Basic header for profiles 1/2; None for 0 (no auth) and 3 (client certificate).

    1.6 puts the raw AuthorizationKey bytes on the wire (OCPP-J 1.6 §6.2.2); interop mode sends
    the hex text instead (`key_hex_text` keeps the exact text the CSMS sent, case included).
    2.0.1 sends BasicAuthPassword as UTF-8. No credential → no header, so tests can exercise the
    CSMS's "missing credentials" branch.
    """
    if security_profile not in (1, 2):
        return None
    if version is OcppVersion.V16:
        if auth_key is None:
            return None
        secret = (key_hex_text or auth_key.hex().upper()).encode() if send_key_as_hex else auth_key
    else:
        if password is None:
            return None
        secret = password.encode("utf-8")
    return basic_authorization_header(username, secret)
