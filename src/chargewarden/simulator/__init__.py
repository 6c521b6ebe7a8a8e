"""Station simulator: sans-I/O station core, network runner and fleet."""

from chargewarden.simulator.certificates import (
    ChainCheck,
    LeafType,
    StationCertificates,
    TlsMaterial,
)
from chargewarden.simulator.config import (
    CSR_FAULTS,
    FIRMWARE_FAULTS,
    KEY_TYPES,
    REFUSABLE_CHANGES,
    StationConfig,
)
from chargewarden.simulator.connect import (
    ConnectOutcome,
    TlsFailure,
    TlsMaterialError,
    classify_tls_failure,
    core_ssl_context,
    station_ssl_context,
)
from chargewarden.simulator.core import RegistrationStatus, SecurityLogEntry, StationCore
from chargewarden.simulator.filetransfer import FileTransfers
from chargewarden.simulator.fleet import (
    FleetReport,
    StationResult,
    fleet_configs,
    fleet_report,
    run_fleet,
)
from chargewarden.simulator.network import NetworkConfiguration, NetworkSlot
from chargewarden.simulator.rootstore import RootType
from chargewarden.simulator.runner import RunnerState, StationRunner
from chargewarden.simulator.security import StationSecurity
from chargewarden.simulator.tasks import FirmwareDownload, LogUpload, TransferError, TransferTask

__all__ = [
    "CSR_FAULTS",
    "FIRMWARE_FAULTS",
    "KEY_TYPES",
    "REFUSABLE_CHANGES",
    "ChainCheck",
    "ConnectOutcome",
    "FileTransfers",
    "FirmwareDownload",
    "FleetReport",
    "LeafType",
    "LogUpload",
    "NetworkConfiguration",
    "NetworkSlot",
    "RegistrationStatus",
    "RootType",
    "RunnerState",
    "SecurityLogEntry",
    "StationCertificates",
    "StationConfig",
    "StationCore",
    "StationResult",
    "StationRunner",
    "StationSecurity",
    "TlsFailure",
    "TlsMaterial",
    "TlsMaterialError",
    "TransferError",
    "TransferTask",
    "classify_tls_failure",
    "core_ssl_context",
    "fleet_configs",
    "fleet_report",
    "run_fleet",
    "station_ssl_context",
]
