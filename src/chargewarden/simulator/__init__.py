"""Station simulator: sans-I/O station core, network runner and fleet."""

from chargewarden.simulator.certificates import (
    ChainCheck,
    LeafType,
    StationCertificates,
    TlsMaterial,
)
from chargewarden.simulator.config import CSR_FAULTS, KEY_TYPES, StationConfig
from chargewarden.simulator.connect import (
    ConnectOutcome,
    TlsFailure,
    TlsMaterialError,
    classify_tls_failure,
    core_ssl_context,
    station_ssl_context,
)
from chargewarden.simulator.core import RegistrationStatus, SecurityLogEntry, StationCore
from chargewarden.simulator.fleet import (
    FleetReport,
    StationResult,
    fleet_configs,
    fleet_report,
    run_fleet,
)
from chargewarden.simulator.rootstore import RootType
from chargewarden.simulator.runner import RunnerState, StationRunner

__all__ = [
    "CSR_FAULTS",
    "KEY_TYPES",
    "ChainCheck",
    "ConnectOutcome",
    "FleetReport",
    "LeafType",
    "RegistrationStatus",
    "RootType",
    "RunnerState",
    "SecurityLogEntry",
    "StationCertificates",
    "StationConfig",
    "StationCore",
    "StationResult",
    "StationRunner",
    "TlsFailure",
    "TlsMaterial",
    "TlsMaterialError",
    "classify_tls_failure",
    "core_ssl_context",
    "fleet_configs",
    "fleet_report",
    "run_fleet",
    "station_ssl_context",
]
