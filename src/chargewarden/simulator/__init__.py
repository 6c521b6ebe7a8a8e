"""Station simulator: sans-I/O station core, network runner and fleet."""

from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.connect import (
    ConnectOutcome,
    TlsFailure,
    TlsMaterialError,
    classify_tls_failure,
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
from chargewarden.simulator.runner import RunnerState, StationRunner

__all__ = [
    "ConnectOutcome",
    "FleetReport",
    "RegistrationStatus",
    "RunnerState",
    "SecurityLogEntry",
    "StationConfig",
    "StationCore",
    "StationResult",
    "StationRunner",
    "TlsFailure",
    "TlsMaterialError",
    "classify_tls_failure",
    "fleet_configs",
    "fleet_report",
    "run_fleet",
    "station_ssl_context",
]
