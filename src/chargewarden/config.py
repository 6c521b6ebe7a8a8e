"""Settings: one TOML file plus CHARGEWARDEN_* environment overrides, validated at start.

Precedence, highest first: command-line flags, environment (CHARGEWARDEN_WS_PORT=9100,
nested with a double underscore: CHARGEWARDEN_THROTTLE__BLOCK_SECONDS=60), the TOML file, the
defaults below. The embedded default keeps everything under ./var: the SQLite file, the CA,
logs.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from chargewarden.security.throttle import ThrottlePolicy

ENV_PREFIX = "CHARGEWARDEN_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
DEFAULT_DATA_DIR = Path("var")
# See gateway.tls: asyncio's own TLS read buffer is 256 KiB per connection.
DEFAULT_TLS_READ_BUFFER_BYTES = 32 * 1024


class ConfigError(Exception):
    """A configuration problem, worded for the operator (one line per problem)."""


# The parsed TOML file of the load_settings() call in progress (sources are built per class, so
# the file reaches its source this way rather than as init data, where it would outrank the
# environment and where keys such as "_env_prefix" would be taken as pydantic-settings options).
_FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("chargewarden_file_data", default=None)


class _TomlFileSource(PydanticBaseSettingsSource):
    """The TOML file as a settings source, below the environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ hands over the whole file

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get() or {})


class ThrottleSettings(BaseModel):
    """Failed-admission rate limits (see security.throttle.ThrottlePolicy)."""

    model_config = ConfigDict(extra="forbid")

    window: float = Field(60.0, gt=0, description="failures older than this are forgotten")
    slowdown_after: int = Field(5, ge=1, description="per-peer failures before delays start")
    base_delay: float = Field(0.25, ge=0)
    max_delay: float = Field(5.0, ge=0)
    block_after: int = Field(20, ge=1, description="per-peer failures that start a block")
    block_seconds: float = Field(300.0, gt=0)
    identity_block_after: int = Field(10, ge=1)
    identity_block_seconds: float = Field(15.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> ThrottleSettings:
        # The policy owns the rules between the numbers; asking it keeps them in one place and
        # turns a bad combination into a config error instead of a crash at start.
        self.policy()
        return self

    def policy(self) -> ThrottlePolicy:
        return ThrottlePolicy(**self.model_dump())


class ProxySettings(BaseModel):
    """A TLS-terminating proxy in front of the wss listener (SEC-12)."""

    model_config = ConfigDict(extra="forbid")

    # Only connections from these addresses may carry the headers below; anyone else's are
    # ignored and recorded as a security event.
    trusted: list[str] = Field(default_factory=list, description="proxy addresses or CIDRs")
    client_cert_header: str = "X-Client-Cert"
    scheme_header: str = "X-Forwarded-Proto"

    @field_validator("trusted")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return value


class CertificateSettings(BaseModel):
    """Station certificates signed over OCPP (CRT-01..09)."""

    model_config = {"extra": "forbid"}

    renew_before_days: int = Field(30, ge=1, le=3650, description="start renewal this early")
    renewal_check_seconds: float = Field(3600.0, gt=0, description="expiry monitor period")
    renewal_concurrency: int = Field(10, ge=1, le=1000)
    csrs_per_station_per_hour: int = Field(5, ge=1, le=1000)
    csr_wait_seconds: float = Field(
        3600.0, gt=0, description="a triggered request without a CSR fails after this"
    )
    max_delivery_attempts: int = Field(5, ge=1, le=100)


class JobSettings(BaseModel):
    """Durable jobs: password rotation and security-profile upgrades (workflows/)."""

    model_config = {"extra": "forbid"}

    poll_seconds: float = Field(
        5.0, gt=0, le=3600, description="how often waiting jobs are looked at again"
    )
    answer_wait_seconds: float = Field(
        900.0,
        gt=0,
        description="a station that did not answer a credential change has this long to show "
        "which credential it uses before the rotation fails",
    )
    reconnect_wait_seconds: float = Field(
        3600.0, gt=0, description="an upgraded station not back on its new profile is reported"
    )
    certificate_wait_seconds: float = Field(
        3600.0, gt=0, description="an upgrade to profile 3 waits this long for the certificate"
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="credential changes sent again after a CSMS restart"
    )
    fleet_concurrency: int = Field(10, ge=1, le=1000)
    auto_rotate_held: bool = Field(
        True,
        description="rotate the credentials of a station held in Pending for a credential "
        "update as soon as it boots (PWD-03)",
    )
    auto_rotate_retry_seconds: float = Field(
        3600.0, gt=0, description="after a failed automatic rotation, wait this long to retry"
    )
    public_wss_url: str | None = Field(
        None,
        description="wss URL 2.0.1 stations are given on an upgrade, without the identity; "
        "default wss://<public_hostname>:<wss_port>/ocpp",
    )
    network_interface: Literal[
        "Wired0", "Wired1", "Wired2", "Wired3", "Wireless0", "Wireless1", "Wireless2", "Wireless3"
    ] = "Wired0"
    message_timeout: int = Field(30, ge=1, le=600)

    @field_validator("public_wss_url")
    @classmethod
    def _wss_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("wss://"):
            raise ValueError("must be a wss:// URL")
        return value.rstrip("/") if value else value


class AlertSettings(BaseModel):
    """Where operator alerts go besides the store and the log."""

    model_config = {"extra": "forbid"}

    webhook_url: str | None = Field(None, description="POSTed a JSON body per alert")
    webhook_secret_file: Path | None = Field(
        None, description="HMAC-SHA256 key for the X-ChargeWarden-Signature header"
    )
    webhook_timeout: float = Field(10.0, gt=0, le=120)
    webhook_attempts: int = Field(5, ge=1, le=50)

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class FileTransferSettings(BaseModel):
    """The HTTPS endpoint stations download firmware from and upload logs to (FW-01, LOG-01).

    It presents the CSMS server certificate, so stations verify it with the root they already
    trust for wss. Every URL carries a random per-request token; only its SHA-256 is stored.
    """

    model_config = {"extra": "forbid"}

    enabled: bool = Field(
        True, description="false turns firmware updates and log retrieval off (no listener)"
    )
    port: int | None = Field(9444, ge=0, le=65535, description="HTTPS port (0: any free)")
    public_url: str | None = Field(
        None,
        description="base URL stations are given, e.g. https://files.example.com:9444; "
        "default https://<public_hostname>:<port>",
    )
    download_ttl_seconds: float = Field(
        24 * 3600.0,
        gt=0,
        description="a firmware download URL works this long after the update's retrieve time",
    )
    upload_ttl_seconds: float = Field(
        3600.0, gt=0, description="a log upload URL works this long after GetLog was sent"
    )
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1024, le=4 * 1024 * 1024 * 1024)
    max_firmware_bytes: int = Field(2 * 1024 * 1024 * 1024, ge=1024)
    firmware_wait_seconds: float = Field(
        6 * 3600.0,
        gt=0,
        description="an update not Installed this long after its retrieve time fails",
    )
    log_wait_seconds: float = Field(
        3600.0, gt=0, description="a log request not Uploaded this long after GetLog fails"
    )

    @field_validator("public_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return value.rstrip("/") if value else value


class FirmwareSettings(BaseModel):
    """What signed firmware must chain to before any station is sent it (FW-02, A00.FR.706)."""

    model_config = {"extra": "forbid"}

    manufacturer_roots: list[Path] = Field(
        default_factory=list,
        description="PEM files of the manufacturer roots firmware signing certificates must "
        "chain to; empty: the built-in development manufacturer root (demo and tests only)",
    )
    manufacturer_crls: list[Path] = Field(
        default_factory=list,
        description="CRLs (PEM or DER) of those roots; a signing certificate they list is refused",
    )


class EventSettings(BaseModel):
    """Security events and alerts: retention and alert coalescing (EVT-01..03)."""

    model_config = {"extra": "forbid"}

    retention_days: int = Field(
        365, ge=0, le=36500, description="security events older than this are deleted; 0 keeps all"
    )
    alert_retention_days: int = Field(
        365, ge=0, le=36500, description="alerts older than this are deleted; 0 keeps all"
    )
    purge_check_seconds: float = Field(3600.0, gt=0, description="how often retention runs")
    alert_coalesce_seconds: float = Field(
        300.0,
        ge=0,
        description="repeats of one critical event type from one station within this window "
        "raise no new alert (they are still stored); 0 alerts on every one",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = Field(
        None, description="PostgreSQL or SQLite URL; default: SQLite file in the data dir"
    )
    host: str = "127.0.0.1"
    ws_port: int = Field(9000, ge=0, le=65535)
    # wss:// listener for profiles 2 and 3; None disables TLS entirely.
    wss_port: int | None = Field(9443, ge=0, le=65535)
    api_port: int = Field(9080, ge=0, le=65535)
    public_hostname: str = "localhost"
    cpo_name: str = "ChargeWarden CPO"
    # Profile 0 means no authentication at all: development only (SEC-02).
    allow_profile_0: bool = False
    # PKI (pki/): where the CA lives, and how its private keys are unlocked. Without a
    # passphrase from the environment (CHARGEWARDEN_CA_PASSPHRASE) or this file, the embedded
    # default generates one into <ca_dir>/passphrase (mode 0600).
    ca_dir: Path | None = Field(None, description="default: <data_dir>/pki")
    ca_passphrase_file: Path | None = None
    # Fast expiration (SEC-14): e.g. 24 for a one-day server certificate renewed automatically.
    server_cert_lifetime_hours: int = Field(90 * 24, ge=1, le=825 * 24)
    station_cert_lifetime_days: int = Field(2 * 365, ge=1, le=20 * 365)
    # How often the server looks for revocations, new certificates and CRLs (no restart needed).
    pki_watch_seconds: float = Field(5.0, gt=0, le=3600)
    # Read buffer of each TLS connection; asyncio's own is 256 KiB per connection, which is
    # most of the memory an idle charger costs (bench/tls.py). 0 keeps asyncio's default.
    tls_read_buffer_bytes: int = Field(DEFAULT_TLS_READ_BUFFER_BYTES, ge=0, le=1024 * 1024)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    heartbeat_interval: int = Field(300, ge=10, le=86400)
    call_timeout: float = Field(30.0, gt=0, le=600)
    max_message_bytes: int = Field(256 * 1024, ge=4096, le=16 * 1024 * 1024)
    ping_interval: float | None = Field(60.0, gt=0)
    ping_timeout: float | None = Field(30.0, gt=0)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    throttle: ThrottleSettings = Field(default_factory=ThrottleSettings)
    certificates: CertificateSettings = Field(default_factory=CertificateSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    files: FileTransferSettings = Field(default_factory=FileTransferSettings)
    firmware: FirmwareSettings = Field(default_factory=FirmwareSettings)
    events: EventSettings = Field(default_factory=EventSettings)

    @field_validator("host", "public_hostname", "cpo_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @property
    def effective_ca_dir(self) -> Path:
        return self.ca_dir or self.data_dir / "pki"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return "sqlite+aiosqlite:///" + str((self.data_dir / "chargewarden.db").resolve())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest first: flags (init data, see load_settings), environment, TOML file. Sources
        # are deep-merged, so a nested flag or variable changes only the keys it names.
        return (init_settings, env_settings, _TomlFileSource(settings_cls))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(root)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"{where}: {message}")
    return f"invalid configuration ({source}): " + "; ".join(lines)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; flags (overrides with a value other than None) win over everything.

    The environment wins over the file: the file is the operator's baseline, the environment
    is how containers and CI adjust it.
    """
    path = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    file_data = _read_toml(path) if path else {}
    flags = {key: value for key, value in overrides.items() if value is not None}
    source = f"file {path}, environment and flags" if path else "environment and flags"
    token = _FILE_DATA.set(file_data)
    try:
        return Settings(**flags)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    except SettingsError as exc:  # e.g. CHARGEWARDEN_THROTTLE='not json'
        raise ConfigError(f"invalid configuration ({source}): {exc}") from None
    finally:
        _FILE_DATA.reset(token)
