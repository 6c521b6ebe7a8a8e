"""Composition root: builds the store, security services, PKI, gateway and API on one loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from chargewarden.api.app import create_api
from chargewarden.api.context import ApiContext
from chargewarden.api.server import ApiServer
from chargewarden.config import Settings
from chargewarden.domain.certificate_signing import CertificateSigning
from chargewarden.domain.presence import PresenceRecorder
from chargewarden.domain.renewal import CertificateRenewal
from chargewarden.domain.root_rollover import RootRollover
from chargewarden.domain.station_calls import StationCalls, utc_now
from chargewarden.domain.station_certificates import StationCertificates
from chargewarden.domain.station_commands import StationChannel
from chargewarden.firmware.releases import FirmwareReleases
from chargewarden.firmware.trust import load_trust
from chargewarden.gateway.admission import AdmissionPolicy
from chargewarden.gateway.registry import InMemoryRegistry
from chargewarden.gateway.server import Gateway, GatewayOptions, Listener
from chargewarden.metrics import CsmsMetrics
from chargewarden.pki.crl import (
    builtin_root_provider,
    make_crl_provider,
    make_csms_root_provider,
)
from chargewarden.pki.hierarchy import Pki, ensure_pki, record_hierarchy
from chargewarden.pki.material import TlsMaterial, csms_root_pem, load_tls_material
from chargewarden.pki.passphrase import load_passphrase
from chargewarden.pki.signer import BuiltInSigner
from chargewarden.security.alerts import Alerts
from chargewarden.security.recorder import SecurityRecorder
from chargewarden.security.retention import Retention
from chargewarden.security.throttle import AdmissionThrottle
from chargewarden.security.verifier import CredentialVerifier, VerificationCache
from chargewarden.store import Store
from chargewarden.transfer.app import FilesContext, create_files_app
from chargewarden.transfer.server import LiveContext
from chargewarden.transfer.storage import TransferStorage
from chargewarden.transfer.tokens import TransferLinks
from chargewarden.watchers import PkiWatcher
from chargewarden.workflows.engine import JobEngine
from chargewarden.workflows.firmware import UpdateFirmware
from chargewarden.workflows.firmware_service import FirmwareService
from chargewarden.workflows.fleet import FleetJob
from chargewarden.workflows.logs import LogService, install_log_retrieval
from chargewarden.workflows.rotation import RotateCredentials
from chargewarden.workflows.service import JobService
from chargewarden.workflows.steps import WorkflowDeps
from chargewarden.workflows.upgrade import UpgradeProfile

log = logging.getLogger(__name__)


async def open_store(settings: Settings) -> Store:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return await Store.open(settings.effective_database_url)


@dataclass
class RunningCsms:
    settings: Settings
    store: Store
    registry: InMemoryRegistry
    gateway: Gateway
    presence: PresenceRecorder
    ws_address: tuple[str, int]
    wss_address: tuple[str, int] | None
    pki: Pki | None
    watcher: PkiWatcher | None
    api: ApiServer | None
    alerts: Alerts
    station_certificates: StationCertificates
    signing: CertificateSigning | None
    renewal: CertificateRenewal | None
    engine: JobEngine
    jobs: JobService
    # File transfer with stations (firmware downloads, log uploads); None without the CA or
    # with [files] port unset.
    files: FileTransfer | None = None
    # Deletes old security events and alerts (security/retention.py).
    retention: Retention | None = None
    firmware: FirmwareService | None = None
    logs: LogService | None = None
    # This CSMS's Prometheus registry and what records into it (served on GET /metrics).
    metrics: CsmsMetrics | None = None

    @property
    def files_url(self) -> str | None:
        return self.files.links.base_url if self.files is not None else None

    @property
    def ws_url(self) -> str:
        host, port = self.ws_address
        return f"ws://{host}:{port}/ocpp"

    @property
    def wss_url(self) -> str | None:
        if self.wss_address is None:
            return None
        # Stations verify the host name: use the name the server certificate carries.
        return f"wss://{self.settings.public_hostname}:{self.wss_address[1]}/ocpp"

    @property
    def api_address(self) -> tuple[str, int] | None:
        return self.api.address if self.api else None

    @property
    def api_url(self) -> str | None:
        if self.api is None:
            return None
        host, port = self.api.address
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self.api is not None:
            await self.api.stop()
        if self.files is not None:
            await self.files.server.stop()
        if self.renewal is not None:
            await self.renewal.stop()
        await self.engine.stop()
        if self.watcher is not None:
            await self.watcher.stop()
        await self.gateway.stop()
        await self.presence.close()
        if self.retention is not None:
            await self.retention.stop()
        await self.alerts.close()
        await self.store.close()


def _gateway(
    settings: Settings,
    store: Store,
    registry: InMemoryRegistry,
    recorder: SecurityRecorder,
    calls: StationCalls,
    metrics: CsmsMetrics,
) -> Gateway:
    return Gateway(
        store,
        registry,
        recorder,
        CredentialVerifier(VerificationCache()),
        AdmissionThrottle(settings.throttle.policy()),
        calls,
        GatewayOptions(
            policy=AdmissionPolicy(
                allow_profile_0=settings.allow_profile_0, cpo_name=settings.cpo_name
            ),
            call_timeout=settings.call_timeout,
            max_message_bytes=settings.max_message_bytes,
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
            proxy=settings.proxy,
            tls_read_buffer_bytes=settings.tls_read_buffer_bytes,
        ),
        metrics,
    )


async def start_csms(settings: Settings, *, with_api: bool = True) -> RunningCsms:
    """Open the store (migrating it), the PKI (creating it on first start), the station
    listeners and, optionally, the API. Anything that fails undoes what was started."""
    async with contextlib.AsyncExitStack() as undo:
        store = await open_store(settings)
        undo.push_async_callback(store.close)
        registry = InMemoryRegistry()
        # Its own Prometheus registry, not the process-wide default: one per CSMS.
        metrics = CsmsMetrics(registry)
        presence = PresenceRecorder(store)
        undo.push_async_callback(presence.close)
        # Alerts before the recorder: critical security events alert through it (EVT-02).
        alerts = Alerts(store, settings.alerts)
        undo.push_async_callback(alerts.close)
        alerts.start()  # redelivers what an earlier run left undelivered
        recorder = SecurityRecorder(
            store, alerts, coalesce_seconds=settings.events.alert_coalesce_seconds
        )
        calls = StationCalls(store, recorder, settings.heartbeat_interval, presence)
        gateway = _gateway(settings, store, registry, recorder, calls, metrics)
        channel = StationChannel(registry, settings.call_timeout)
        station_certificates = StationCertificates(store, channel)
        signing = renewal = None
        listeners = [Listener(settings.host, settings.ws_port, "ws")]
        pki = watcher = material = None
        if settings.wss_port is not None:
            passphrase = load_passphrase(settings)
            # Key generation on first start takes a moment; keep the loop free meanwhile.
            pki = await asyncio.to_thread(ensure_pki, settings)
            await record_hierarchy(store, pki)
            material = load_tls_material(settings, passphrase)
            gateway.use_tls_material(material)
            listeners.append(Listener(settings.host, settings.wss_port, "wss"))
            watcher = PkiWatcher(settings, store, gateway, pki, passphrase)
            signing = CertificateSigning(
                store,
                BuiltInSigner(pki, settings),
                channel,
                recorder,
                alerts,
                settings.certificates,
                settings.cpo_name,
            )
            calls.certificates = signing
            renewal = CertificateRenewal(store, signing, registry, settings.certificates)
        addresses = await gateway.start(listeners)
        undo.push_async_callback(gateway.stop)
        files = None
        if material is not None and settings.files.enabled and settings.files.port is not None:
            files = await _start_files(settings, store, recorder, material)
            undo.push_async_callback(files.server.stop)
            assert watcher is not None
            watcher.material_listeners.append(files.tls.replace)
        engine, jobs = _jobs(
            settings,
            WorkflowDeps(
                store=store,
                channel=channel,
                registry=registry,
                alerts=alerts,
                settings=settings.jobs,
                clock=utc_now,
                station_certificates=station_certificates,
                signing=signing,
                links=files.links if files is not None else None,
                storage=files.storage if files is not None else None,
                files=settings.files,
            ),
            addresses[1] if len(addresses) > 1 else None,
        )
        calls.jobs = engine
        firmware = logs = None
        if files is not None:
            # Signed firmware and log retrieval: registered before the engine resumes jobs.
            firmware = _firmware(settings, engine, files, recorder)
            calls.firmware = firmware
            logs = install_log_retrieval(engine)
            calls.logs = logs
            files.context.on_log_stored = logs.on_log_stored
        if settings.jobs.auto_rotate_held:
            calls.auto_rotation = jobs
        await engine.start()
        undo.push_async_callback(engine.stop)
        api = None
        if with_api:
            context = ApiContext(
                store=store,
                registry=registry,
                call_timeout=settings.call_timeout,
                crl_provider=make_crl_provider(pki, store) if pki else None,
                csms_root_provider=make_csms_root_provider(settings) if pki else None,
                station_certificates=station_certificates,
                signing=signing,
                renewal=renewal,
                builtin_roots=builtin_root_provider(pki) if pki else None,
                rollover=RootRollover(channel, station_certificates, store) if pki else None,
                settings=settings,
                jobs=jobs,
                firmware=firmware,
                logs=logs,
                metrics=metrics,
                listeners_ready=lambda: gateway.listening,
            )
            api = await ApiServer.start(create_api(context), settings.host, settings.api_port)
        if watcher is not None:
            watcher.start()
        if renewal is not None:
            renewal.start()
            undo.push_async_callback(renewal.stop)
        # Last, after everything that can fail: nothing needs undoing for it.
        retention = Retention(store, settings.events)
        retention.start()
        undo.pop_all()
    return RunningCsms(
        settings,
        store,
        registry,
        gateway,
        presence,
        ws_address=addresses[0],
        wss_address=addresses[1] if len(addresses) > 1 else None,
        pki=pki,
        watcher=watcher,
        api=api,
        alerts=alerts,
        station_certificates=station_certificates,
        signing=signing,
        renewal=renewal,
        engine=engine,
        jobs=jobs,
        files=files,
        retention=retention,
        firmware=firmware,
        logs=logs,
        metrics=metrics,
    )


@dataclass
class FileTransfer:
    server: ApiServer
    links: TransferLinks
    storage: TransferStorage
    context: FilesContext
    tls: LiveContext


async def _start_files(
    settings: Settings, store: Store, recorder: SecurityRecorder, material: TlsMaterial
) -> FileTransfer:
    """The HTTPS listener stations download firmware from and upload logs to."""
    links = TransferLinks(store, settings.files.public_url or "https://unbound")
    storage = TransferStorage(settings.data_dir)
    context = FilesContext(
        store=store,
        links=links,
        storage=storage,
        recorder=recorder,
        settings=settings.files,
        clock=utc_now,
    )
    live = LiveContext(material)
    assert settings.files.port is not None
    server = await ApiServer.start(
        create_files_app(context), settings.host, settings.files.port, ssl_context=live.entry
    )
    if settings.files.public_url is None:
        # The bound port, not the configured one: 0 means "any free port".
        links.base_url = f"https://{settings.public_hostname}:{server.address[1]}"
    return FileTransfer(server, links, storage, context, live)


def _firmware(
    settings: Settings, engine: JobEngine, files: FileTransfer, recorder: SecurityRecorder
) -> FirmwareService:
    releases = FirmwareReleases(
        engine.deps.store,
        files.storage,
        lambda: load_trust(settings),
        recorder,
        utc_now,
        settings.files.max_firmware_bytes,
    )
    engine.register(UpdateFirmware(engine.deps, releases))
    return FirmwareService(engine, releases, fleet_concurrency=settings.jobs.fleet_concurrency)


def _jobs(
    settings: Settings, deps: WorkflowDeps, wss_address: tuple[str, int] | None
) -> tuple[JobEngine, JobService]:
    if wss_address is not None:
        # The bound port, not the configured one: 0 means "any free port".
        wss_url = settings.jobs.public_wss_url or (
            f"wss://{settings.public_hostname}:{wss_address[1]}/ocpp"
        )
        deps.wss_url = lambda: wss_url
        deps.csms_roots = lambda: csms_root_pem(settings)
    engine = JobEngine(deps)
    engine.register(RotateCredentials(deps))
    engine.register(UpgradeProfile(deps))
    engine.register(FleetJob(deps, engine))
    service = JobService(
        engine,
        tls_available=wss_address is not None,
        fleet_concurrency=settings.jobs.fleet_concurrency,
        auto_retry_seconds=settings.jobs.auto_rotate_retry_seconds,
    )
    return engine, service


async def run_until_signalled(running: RunningCsms) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await running.stop()
