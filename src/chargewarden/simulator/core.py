"""Sans-I/O logic of one simulated station.

`StationCore` knows what a correct station says and how it reacts, for OCPP 1.6J (+ Security
Whitepaper ed.3) and OCPP 2.0.1; it never touches a socket or sleeps, and reads time only from the
injected clock. The runner feeds it CSMS calls (through `handlers()`) and responses, and drains
what it wants sent (`take_outgoing()`) and whether it wants a new connection
(`reconnect_requested`). Version-specific configuration handling lives in `settings16` /
`settings201`, credentials, security profile and 2.0.1 network profiles in `security` (slots:
`network`), keys and certificates in `certificates` (OCPP side: `certhandlers`), signed
firmware updates in `firmware`, log uploads in `logs`, message payloads in `messages`; this
module holds what both versions share. File transfers are tasks the runner takes
(`take_tasks()`), performs and reports back (`on_download_result` / `on_upload_result`);
timed steps run when the runner calls `poll(now)` at `next_deadline()`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.events import classify
from chargewarden.simulator import messages
from chargewarden.simulator.certhandlers import CertificateHandlers
from chargewarden.simulator.certificates import StationCertificates
from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.firmware import FirmwareUpdates
from chargewarden.simulator.logs import Diagnostics, LogUploads
from chargewarden.simulator.security import StationSecurity
from chargewarden.simulator.settings16 import Settings16
from chargewarden.simulator.settings201 import Settings201
from chargewarden.simulator.tasks import FirmwareDownload, LogUpload, TransferError, TransferTask
from chargewarden.simulator.values import (
    is_valid_cpo_name,
    ocpp_timestamp,
    parse_non_negative_int,
    utc_now,
)

Payload = dict[str, Any]
Handler = Callable[[Payload], Awaitable[Payload]]
Clock = Callable[[], datetime]

DEFAULT_HEARTBEAT_INTERVAL = 300
DEFAULT_BOOT_RETRY = 30.0
_TECH_INFO_MAX = 255  # SecurityEventNotification.techInfo maxLength, both versions

# Messages that only make sense on the connection they were produced for; a new connection
# produces fresh ones, so stale copies are dropped instead of replayed.
_CONNECTION_SCOPED = frozenset({"BootNotification", "Heartbeat", "StatusNotification"})


def is_critical_event(version: OcppVersion, event_type: str) -> bool:
    """Critical events are pushed to the CSMS; the rest only go to the station's security log
    (whitepaper §8; 2.0.1 Part 2 Appendix 1). The CSMS's catalogue is the one source."""
    return classify(version, event_type).critical


class RegistrationStatus(StrEnum):
    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class SecurityLogEntry(NamedTuple):
    time: datetime
    type: str
    tech_info: str | None


@dataclass
class _Outgoing:
    action: str
    payload: Payload
    # A message the CSMS asked for with TriggerMessage may be sent while the boot is Pending
    # (2.0.1 B02.FR.02); anything else waits for Accepted.
    triggered: bool


class StationCore:
    """State and behaviour of one station; one instance per simulated station."""

    def __init__(self, config: StationConfig, clock: Clock = utc_now) -> None:
        self.config = config
        self.version = config.ocpp_version
        self._clock = clock
        # Keys, certificates and installed roots (SIM-02/03); may come from config.state_dir.
        self.certificates = StationCertificates(config)
        # Credentials, security profile, 2.0.1 network slots (SIM-04); also from state_dir.
        self.security = StationSecurity(self)
        profile = self.security.profile
        # Inferred unless set: a profile-2/3 station or one holding a CSMS root trusts the CSMS;
        # a profile-3 station or one holding a client certificate has its certificate. Both
        # become true when the CSMS installs a root / a signed certificate.
        self.csms_root_installed = (
            config.csms_root_installed
            if config.csms_root_installed is not None
            else profile >= 2 or self.certificates.has_csms_root()
        )
        self.station_certificate_installed = (
            config.station_certificate_installed
            if config.station_certificate_installed is not None
            else profile == 3 or self.certificates.client_certificate is not None
        )
        self.registration: RegistrationStatus | None = None
        self.heartbeat_setting = DEFAULT_HEARTBEAT_INTERVAL  # what HeartbeatInterval reads back
        self.retry_interval = config.boot_retry_interval or DEFAULT_BOOT_RETRY
        self.security_log: deque[SecurityLogEntry] = deque(maxlen=config.security_log_size)
        self.reconnect_requested = False
        self.reconnect_reason = ""
        self.last_csms_time: str | None = None
        self._outgoing: deque[_Outgoing] = deque()
        self._powered_up = True  # StartupOfTheDevice still due
        self._boot_reason = "PowerUp"
        self.settings: Settings16 | Settings201 = (
            Settings16(self) if self.version is OcppVersion.V16 else Settings201(self)
        )
        self.certificate_handlers = CertificateHandlers(self)
        self.diagnostics = Diagnostics()  # what a DiagnosticsLog reports
        self._last_task_id = 0
        self.firmware = FirmwareUpdates(self)  # SIM-05; may come from config.state_dir
        self.logs = LogUploads(self)  # SIM-06

    # ---- what the runner reads -------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock()

    @property
    def cpo_name(self) -> str:
        """CpoName (1.6) / SecurityCtrlr.OrganizationName (2.0.1): the O of the station's CSRs."""
        return self.certificates.cpo_name

    @cpo_name.setter
    def cpo_name(self, value: str) -> None:
        self.certificates.cpo_name = value

    def change_cpo_name(self, text: str) -> bool:
        """CpoName (1.6) / SecurityCtrlr.OrganizationName (2.0.1) written by the CSMS."""
        if not is_valid_cpo_name(text):
            return False
        self.cpo_name = text
        return True

    @property
    def heartbeat_interval(self) -> float:
        if self.config.heartbeat_interval is not None:
            return self.config.heartbeat_interval
        return float(self.heartbeat_setting or DEFAULT_HEARTBEAT_INTERVAL)

    @property
    def security_profile(self) -> int:
        """The profile of the connection in use (or being tried)."""
        return self.security.profile

    @property
    def auth_key(self) -> bytes | None:
        return self.security.auth_key

    @property
    def password(self) -> str | None:
        return self.security.password

    def auth_header(self) -> str | None:
        """Authorization header with the credentials currently in force (rotations included)."""
        return self.security.auth_header()

    def connection_url(self) -> str:
        """URL of the next connection: by profile (1.6), the slot in use (2.0.1)."""
        return self.security.connection_url()

    @property
    def uses_tls(self) -> bool:
        return self.security.uses_tls

    @property
    def firmware_version(self) -> str:
        """What BootNotification reports: the provisioned version until an install."""
        return self.firmware.version

    def handlers(self) -> dict[str, Handler]:
        parts = (self.settings, self.certificate_handlers, self.firmware, self.logs)
        return {action: h for part in parts for action, h in part.handlers().items()}

    # ---- file transfers (performed by the runner) ----------------------------------------------

    def new_task_id(self) -> int:
        self._last_task_id += 1
        return self._last_task_id

    def take_tasks(self) -> list[TransferTask]:
        return [*self.firmware.take_tasks(), *self.logs.take_tasks()]

    def take_cancelled(self) -> list[int]:
        """Ids of taken tasks the station no longer wants (a cancelled update or upload)."""
        return [*self.firmware.take_cancelled(), *self.logs.take_cancelled()]

    def next_deadline(self) -> datetime | None:
        due = (self.firmware.next_deadline(), self.logs.next_deadline())
        return min((d for d in due if d is not None), default=None)

    def poll(self, now: datetime) -> None:
        """Run the timed steps that are due (scheduled download or install, retries)."""
        self.firmware.poll(now)
        self.logs.poll(now)

    def on_download_result(self, task: FirmwareDownload, result: bytes | TransferError) -> None:
        self.firmware.on_download_result(task, result)

    def on_upload_result(self, task: LogUpload, error: TransferError | None) -> None:
        self.logs.on_upload_result(task, error)

    # ---- connection lifecycle ----------------------------------------------------------------

    def on_connected(self, now: datetime) -> bool:
        """A connection was admitted. Returns True when a BootNotification must come first."""
        self.security.on_connected(now)  # a raised profile worked: no more fallback (A05.FR.07)
        self.diagnostics.connections_admitted += 1
        self.reconnect_requested = False
        self.reconnect_reason = ""
        self._outgoing = deque(m for m in self._outgoing if m.action not in _CONNECTION_SCOPED)
        accepted_before = self.registration is RegistrationStatus.ACCEPTED
        if self.config.boot_on_reconnect or self._powered_up or not accepted_before:
            self.registration = None
            return True
        # Reconnect without a new boot (OCPP-J 2.0.1 §5.3): report connector state again.
        for action, payload in self.status_notification_requests(now):
            self._queue(action, payload)
        return False

    def on_connect_failed(self, now: datetime) -> None:
        """A connection attempt failed; after a fresh profile raise, fall back (A05.FR.08,
        2.0.1 B10: the next slot of NetworkConfigurationPriority)."""
        self.diagnostics.connections_failed += 1
        self.security.on_connect_failed(now)

    # ---- requests the station sends ----------------------------------------------------------

    def boot_request(self) -> tuple[str, Payload]:
        return messages.boot_notification(self.config, self._boot_reason, self.firmware_version)

    def on_boot_response(self, payload: Payload, now: datetime) -> RegistrationStatus:
        status = RegistrationStatus(payload["status"])
        interval = int(payload.get("interval", 0))
        self.last_csms_time = payload.get("currentTime")
        self.registration = status
        if status is RegistrationStatus.ACCEPTED:
            # interval 0 means "keep your own" (1.6 §4.2, 2.0.1 B01.FR.04).
            if interval > 0:
                self.heartbeat_setting = interval
            self._boot_reason = "PowerUp"
            for action, request in self.status_notification_requests(now):
                self._queue(action, request)
            if self._powered_up:
                self._powered_up = False
                self.record_security_event("StartupOfTheDevice", now)
            self.firmware.on_boot_accepted(now)  # Installed + FirmwareUpdated after an update
        else:
            default_retry = self.config.boot_retry_interval or DEFAULT_BOOT_RETRY
            self.retry_interval = float(interval) if interval > 0 else default_retry
        return status

    def on_response(
        self, action: str, response: Payload, now: datetime, request: Payload | None = None
    ) -> None:
        """Response to a queued call (triggered boots change the registration too); `request`
        is the call it answers."""
        if action == "BootNotification":
            self.on_boot_response(response, now)
        elif action == "Heartbeat":
            self.last_csms_time = response.get("currentTime")
        elif action == "SignCertificate":
            self.certificate_handlers.on_sign_response(request or {}, response, now)
        elif action == self.firmware.status_action:
            self.firmware.on_status_delivered(request or {})

    def heartbeat_request(self) -> tuple[str, Payload]:
        return "Heartbeat", {}

    def status_notification_requests(
        self, now: datetime, connector: int | None = None
    ) -> list[tuple[str, Payload]]:
        return messages.status_notifications(self.config, now, connector)

    def security_event_request(
        self, event_type: str, now: datetime, tech_info: str | None = None
    ) -> tuple[str, Payload]:
        """SecurityEventNotification for `event_type`; the event also enters the security log."""
        tech_info = self.log_security_event(event_type, now, tech_info)
        payload: Payload = {"type": event_type, "timestamp": ocpp_timestamp(now)}
        if tech_info is not None:
            payload["techInfo"] = tech_info
        return "SecurityEventNotification", payload

    def log_security_event(
        self, event_type: str, now: datetime, tech_info: str | None = None
    ) -> str | None:
        """Security log only (no notification). Callers must never pass secret material."""
        if tech_info is not None:
            tech_info = tech_info[:_TECH_INFO_MAX]
        self.security_log.append(SecurityLogEntry(now, event_type, tech_info))
        return tech_info

    def record_security_event(
        self,
        event_type: str,
        now: datetime,
        tech_info: str | None = None,
        *,
        push: bool | None = None,
        coalesce: bool = False,
    ) -> None:
        """Log the event and, when it is critical for this version (or `push` says so), queue
        its notification. `coalesce`: if a notification of this type is still waiting to be
        delivered, only log this one (repeated connection failures)."""
        if push is None:
            push = is_critical_event(self.version, event_type)
        if push and not (coalesce and self._notification_queued(event_type)):
            self._queue(*self.security_event_request(event_type, now, tech_info))
        else:
            self.log_security_event(event_type, now, tech_info)

    def _notification_queued(self, event_type: str) -> bool:
        return any(
            m.action == "SecurityEventNotification" and m.payload.get("type") == event_type
            for m in self._outgoing
        )

    # ---- outgoing queue ----------------------------------------------------------------------

    def _queue(self, action: str, payload: Payload, *, triggered: bool = False) -> None:
        self._outgoing.append(_Outgoing(action, payload, triggered))

    def queue_triggered(self, action: str, payload: Payload) -> None:
        self._queue(action, payload, triggered=True)

    def queue_call(self, action: str, payload: Payload) -> None:
        """A station call sent once the boot is Accepted, kept across reconnects."""
        self._queue(action, payload)

    def has_outgoing(self) -> bool:
        return any(self._sendable(m) for m in self._outgoing)

    def _sendable(self, message: _Outgoing) -> bool:
        if self.registration is RegistrationStatus.ACCEPTED:
            return True
        return self.registration is RegistrationStatus.PENDING and message.triggered

    def take_outgoing(self) -> list[tuple[str, Payload]]:
        """Calls that may be sent now, oldest first; the rest stay queued (store and forward)."""
        ready = [m for m in self._outgoing if self._sendable(m)]
        self._outgoing = deque(m for m in self._outgoing if not self._sendable(m))
        return [(m.action, m.payload) for m in ready]

    def requeue(self, messages: list[tuple[str, Payload]]) -> None:
        """Put taken-but-undelivered calls back at the head of the queue (connection lost while
        sending): a security event may then arrive twice, but is never lost."""
        for action, payload in reversed(messages):
            self._outgoing.appendleft(_Outgoing(action, payload, triggered=False))

    # ---- changes requested by the CSMS (used by the settings modules) ------------------------

    def request_reconnect(self, reason: str) -> None:
        self.reconnect_requested = True
        self.reconnect_reason = reason
        self.diagnostics.note(self._clock(), f"reconnect: {reason}")

    def set_heartbeat_interval(self, text: str) -> bool:
        value = parse_non_negative_int(text)
        if value is None:
            return False
        self.heartbeat_setting = value
        return True

    def reset(self, kind: str) -> bool:
        """Reboot: the next connection boots afresh (2.0.1: with the first slot of
        NetworkConfigurationPriority) and reports StartupOfTheDevice again. False: refused."""
        if self.security.refuses("Reset"):
            return False
        self.reboot("RemoteReset", f"Reset requested by CSMS: {kind}", f"Reset {kind}")
        return True

    def reboot(self, boot_reason: str, why: str, reconnect_reason: str | None = None) -> None:
        """Reboot (a Reset, or activating new firmware); `boot_reason` is the 2.0.1
        BootReasonEnumType of the next BootNotification."""
        self._powered_up = True
        self._boot_reason = boot_reason
        self.record_security_event("ResetOrReboot", self._clock(), why)
        self.security.on_reset()
        self.request_reconnect(reconnect_reason or why)

    def trigger_boot(self) -> None:
        action, payload = self.boot_request()
        if self.version is OcppVersion.V201:
            payload = {**payload, "reason": "Triggered"}
        self.queue_triggered(action, payload)
