"""`chargewarden demo`: the CSMS with simulated stations on every profile this build supports.

Demo stations own the identities starting with DEMO-. Each run gives them fresh secrets (only
hashes are stored, so the previous run's secrets cannot be recovered, which is the point), so
the demo works on a fresh checkout and on the tenth run alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from chargewarden.app import RunningCsms, start_csms
from chargewarden.config import Settings
from chargewarden.demo_certificates import run_certificate_phase
from chargewarden.demo_firmware import manufacturer_root_pem, run_firmware_phase
from chargewarden.demo_tls import ClientIdentity, foreign_identity, issue_for_station, tls_config
from chargewarden.demo_upgrades import (
    UPGRADED_STATIONS,
    run_upgrade_phase,
    upgrade_station_config,
)
from chargewarden.domain.station_calls import utc_now
from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.credentials import (
    auth_key_to_hex,
    generate_auth_key,
    generate_password_201,
    hash_secret,
    secret_bytes_for_storage,
)
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.runner import ConnectOutcome, StationRunner
from chargewarden.stations import NewStation, register_station
from chargewarden.store import Store
from chargewarden.store.records import AuditRecord, EventSource

DEMO_ACTOR = "demo"
ADMISSION_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class DemoStation:
    identity: str
    version: OcppVersion
    profile: int
    send_key_as_hex: bool = False
    note: str = ""
    # Simulator fault for the certificate phase (see simulator.config.CSR_FAULTS).
    csr_fault: str | None = None


@dataclass(frozen=True)
class Impostor:
    identity: str
    version: OcppVersion
    profile: int
    note: str
    # HTTP status expected; None: refused in the TLS handshake, before any HTTP.
    expected_status: int | None
    # wrong-secret | no-credentials | foreign-cert | revoked-cert | other-station-cert
    kind: str = "wrong-secret"


DEMO_STATIONS = (
    DemoStation("DEMO-16-P0", OcppVersion.V16, 0),
    DemoStation("DEMO-16-P1", OcppVersion.V16, 1, note="AuthorizationKey as raw bytes"),
    DemoStation(
        "DEMO-16-HEX", OcppVersion.V16, 1, send_key_as_hex=True, note="key sent as 40-hex text"
    ),
    DemoStation("DEMO-201-P0", OcppVersion.V201, 0),
    DemoStation("DEMO-201-P1", OcppVersion.V201, 1, note="BasicAuthPassword"),
)
TLS_STATIONS = (
    DemoStation("DEMO-16-P2", OcppVersion.V16, 2, note="TLS + AuthorizationKey"),
    DemoStation("DEMO-201-P2", OcppVersion.V201, 2, note="TLS + BasicAuthPassword"),
    DemoStation("DEMO-16-P3", OcppVersion.V16, 3, note="mutual TLS"),
    DemoStation("DEMO-201-P3", OcppVersion.V201, 3, note="mutual TLS"),
    DemoStation(
        "DEMO-201-CSR",
        OcppVersion.V201,
        2,
        note="TLS + BasicAuthPassword; its CSRs name the wrong CPO",
        csr_fault="wrong-o",
    ),
    DemoStation(UPGRADED_STATIONS[0], OcppVersion.V16, 1, note="rotated, then upgraded to 3"),
    DemoStation(UPGRADED_STATIONS[1], OcppVersion.V201, 1, note="rotated, then upgraded to 3"),
)
# Certificate phase: renewed over OCPP, and a station whose CSR must be refused.
RENEWED_STATIONS = ("DEMO-16-P3", "DEMO-201-P3")
DEFECTIVE_CSR_STATIONS = ("DEMO-201-CSR",)
IMPOSTORS = (
    Impostor("DEMO-16-P1", OcppVersion.V16, 1, "impostor: wrong AuthorizationKey", 401),
    Impostor("DEMO-201-P1", OcppVersion.V201, 1, "impostor: wrong password", 401),
    Impostor("DEMO-201-P1", OcppVersion.V201, 0, "impostor: no credentials", 401, "no-credentials"),
    Impostor("DEMO-NOBODY", OcppVersion.V16, 1, "unknown identity", 404),
)
TLS_IMPOSTORS = (
    Impostor("DEMO-16-P2", OcppVersion.V16, 2, "impostor: wrong key over TLS", 401),
    Impostor(
        "DEMO-16-P3", OcppVersion.V16, 3, "certificate from a foreign CA", None, "foreign-cert"
    ),
    Impostor("DEMO-201-P3", OcppVersion.V201, 3, "revoked certificate", 403, "revoked-cert"),
    Impostor(
        "DEMO-201-P3", OcppVersion.V201, 3, "certificate of DEMO-16-P3", 403, "other-station-cert"
    ),
)


@dataclass
class DemoRow:
    identity: str
    version: OcppVersion
    profile: int
    note: str
    outcome: str = "not tried"
    why: str = ""
    events: int = 0
    as_expected: bool = False


@dataclass
class DemoRun:
    running: RunningCsms
    rows: list[DemoRow]
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def all_as_expected(self) -> bool:
        return all(row.as_expected for row in self.rows)

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.running.stop()


async def _provision(store: Store, station: DemoStation) -> bytes | str | None:
    """Register the demo station, or give the existing one a fresh secret; return the secret."""
    secret: bytes | str | None = None
    if station.profile in (1, 2):
        secret = (
            generate_auth_key() if station.version is OcppVersion.V16 else generate_password_201()
        )
    existing = await store.stations.get(station.identity)
    if existing is None:
        await register_station(
            store,
            NewStation(
                identity=station.identity,
                ocpp_version=station.version,
                security_profile=station.profile,
                auth_key_hex=auth_key_to_hex(secret) if isinstance(secret, bytes) else None,
                password=secret if isinstance(secret, str) else None,
                generate_secret=False,
                serial_number=None,
                cpo_name=None,
                strict_password=False,
            ),
            actor=DEMO_ACTOR,
        )
        return secret
    await store.stations.update(
        station.identity,
        ocpp_version=station.version,
        security_profile=station.profile,
        pending_profile=None,
        credential_hash=(
            hash_secret(secret_bytes_for_storage(station.version, secret)) if secret else None
        ),
        pending_credential_hash=None,
    )
    await store.audit.add(
        AuditRecord(actor=DEMO_ACTOR, action="station.demo-reset", target=station.identity)
    )
    return secret


def _config(
    running: RunningCsms,
    identity: str,
    version: OcppVersion,
    profile: int,
    secret: bytes | str | None,
    hex_key: bool = False,
) -> StationConfig:
    return StationConfig(
        identity=identity,
        ocpp_version=version,
        url=running.ws_url,
        security_profile=profile,
        auth_key=secret if isinstance(secret, bytes) else None,
        password=secret if isinstance(secret, str) else None,
        send_key_as_hex=hex_key,
        reconnect_backoff_initial=1.0,
        reconnect_backoff_max=10.0,
    )


def _wrong_secret(version: OcppVersion) -> bytes | str:
    return generate_auth_key() if version is OcppVersion.V16 else generate_password_201()


async def _last_refusal(store: Store, identity: str) -> str:
    for event in await store.events.list(station=identity, limit=5):
        if event.source is EventSource.CSMS:
            return f"{event.type}: {event.tech_info or ''}".strip()
    return ""


async def _wait_admitted(runner: StationRunner, timeout: float) -> ConnectOutcome | None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while True:
                outcome = runner.state.first_outcome
                if runner.state.booted.is_set() or (outcome is not None and not outcome.admitted):
                    break
                await asyncio.sleep(0.05)
    return runner.state.first_outcome


async def _station_config(
    running: RunningCsms,
    station: DemoStation,
    secret: bytes | str | None,
    clients: dict[str, ClientIdentity],
) -> StationConfig:
    if station.identity in UPGRADED_STATIONS:
        return upgrade_station_config(running, station.identity, station.version, secret)
    if station.profile <= 1:
        return _config(
            running,
            station.identity,
            station.version,
            station.profile,
            secret,
            station.send_key_as_hex,
        )
    if station.profile == 2:
        config = tls_config(
            running,
            station.identity,
            station.version,
            2,
            auth_key=secret if isinstance(secret, bytes) else None,
            password=secret if isinstance(secret, str) else None,
        )
        # Manufacturer root as installed at the factory: firmware is checked against it.
        return replace(
            config,
            csr_fault=station.csr_fault,
            manufacturer_root_pem=manufacturer_root_pem(running),
        )
    clients[station.identity] = await issue_for_station(running, station.identity)
    return tls_config(
        running, station.identity, station.version, 3, client=clients[station.identity]
    )


async def _impostor_config(
    running: RunningCsms, impostor: Impostor, clients: dict[str, ClientIdentity]
) -> StationConfig:
    identity, version, profile = impostor.identity, impostor.version, impostor.profile
    if impostor.kind == "no-credentials":
        return _config(running, identity, version, 0, None)
    if impostor.kind == "wrong-secret":
        wrong = _wrong_secret(version)
        if profile <= 1:
            return _config(running, identity, version, profile, wrong)
        return tls_config(
            running,
            identity,
            version,
            profile,
            auth_key=wrong if isinstance(wrong, bytes) else None,
            password=wrong if isinstance(wrong, str) else None,
        )
    if impostor.kind == "foreign-cert":
        client = foreign_identity(identity, running.settings.cpo_name)
    elif impostor.kind == "revoked-cert":
        client = await issue_for_station(running, identity)
        await running.store.certificates.revoke(client.serial_hex, "keyCompromise", utc_now())
    else:  # other-station-cert: a genuine certificate, of another station
        client = clients["DEMO-16-P3"]
    return tls_config(running, identity, version, profile, client=client)


async def _latest_event_id(running: RunningCsms) -> int:
    events = await running.store.events.list(limit=1)
    return events[0].id or 0 if events else 0


async def _why_refused(
    running: RunningCsms, impostor: Impostor, outcome: ConnectOutcome, before: int
) -> str:
    if impostor.expected_status is None:
        # Refused in the TLS handshake: the event has a peer but no identity, and the CSMS
        # may store it a moment after the station saw the refusal.
        for _ in range(40):
            events = await running.store.events.list(source=EventSource.CSMS, limit=1)
            if events and (events[0].id or 0) > before:
                return f"{events[0].type}: {events[0].tech_info or ''}"
            await asyncio.sleep(0.05)
        return outcome.reason
    return await _last_refusal(running.store, impostor.identity) or outcome.reason


async def run_demo(settings: Settings, progress: Callable[[str], None]) -> DemoRun:
    running = await start_csms(settings)
    stop = asyncio.Event()
    demo = DemoRun(running, [], stop)
    tls = running.wss_address is not None
    stations = DEMO_STATIONS + (TLS_STATIONS if tls else ())
    impostors = IMPOSTORS + (TLS_IMPOSTORS if tls else ())
    try:
        clients: dict[str, ClientIdentity] = {}
        runners: list[tuple[DemoStation, StationRunner]] = []
        upgraded: dict[str, tuple[StationRunner, bytes | str | None]] = {}
        for station in stations:
            secret = await _provision(running.store, station)
            config = await _station_config(running, station, secret, clients)
            runners.append((station, StationRunner(config)))
            if station.identity in UPGRADED_STATIONS:
                upgraded[station.identity] = (runners[-1][1], secret)
        where = running.ws_url + (f" and {running.wss_url}" if tls else "")
        progress(f"registered {len(stations)} demo stations; connecting them to {where}")
        for _, runner in runners:
            demo.tasks.append(asyncio.create_task(runner.run(stop)))
        for station, runner in runners:
            outcome = await _wait_admitted(runner, ADMISSION_WAIT_SECONDS)
            row = DemoRow(station.identity, station.version, station.profile, station.note)
            if outcome is not None and outcome.admitted:
                row.outcome = "admitted"
                row.why = f"boot {runner.state.boot_status or 'pending'}"
                row.as_expected = runner.state.booted.is_set()
            else:
                row.outcome = f"refused {outcome.http_status if outcome else '-'}"
                row.why = outcome.reason if outcome else "no answer"
            demo.rows.append(row)

        progress("letting impostors try")
        for impostor in impostors:
            probe = StationRunner(await _impostor_config(running, impostor, clients))
            before = await _latest_event_id(running)
            outcome = await probe.connect_once()
            row = DemoRow(impostor.identity, impostor.version, impostor.profile, impostor.note)
            if outcome.admitted:
                row.outcome, row.why = "ADMITTED", "this must not happen"
            else:
                status = outcome.http_status
                row.outcome = f"refused {status}" if status else "refused (TLS)"
                row.why = await _why_refused(running, impostor, outcome, before)
                row.as_expected = status == impostor.expected_status
            demo.rows.append(row)

        if tls:
            for identity, result, ok, why in await run_certificate_phase(
                running, list(RENEWED_STATIONS), list(DEFECTIVE_CSR_STATIONS), progress
            ):
                station = next(s for s in stations if s.identity == identity)
                row = DemoRow(identity, station.version, station.profile, "")
                row.outcome, row.why, row.as_expected = result, why, ok
                demo.rows.append(row)
            for identity, result, ok, why in [
                *await run_upgrade_phase(running, upgraded, progress),
                *await run_firmware_phase(running, progress),
            ]:
                station = next(s for s in stations if s.identity == identity)
                row = DemoRow(identity, station.version, station.profile, "")
                row.outcome, row.why, row.as_expected = result, why, ok
                demo.rows.append(row)

        # Give the admitted stations a moment to deliver StartupOfTheDevice.
        await asyncio.sleep(0.5)
        for row in demo.rows:
            # Admitted rows: what the station reported; refused rows: what the CSMS recorded.
            refused = row.outcome.startswith("refused") or row.outcome == "CSR refused"
            source = EventSource.CSMS if refused else EventSource.STATION
            row.events = await running.store.events.count(station=row.identity, source=source)
        return demo
    except BaseException:
        await demo.close()
        raise


def format_rows(rows: list[DemoRow]) -> list[list[str]]:
    return [
        [
            row.identity,
            str(row.version),
            str(row.profile),
            row.outcome,
            (row.why + (f" ({row.note})" if row.note else ""))[:100],
            str(row.events),
        ]
        for row in rows
    ]


DEMO_TABLE_HEADERS = ["station", "ocpp", "profile", "result", "why", "security events"]
