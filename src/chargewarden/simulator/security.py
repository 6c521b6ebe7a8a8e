"""The simulated station's own security settings (SIM-04), sans I/O.

`StationSecurity` holds what the CSMS may change about how the station authenticates and
connects: the 1.6 AuthorizationKey / 2.0.1 BasicAuthPassword, the security profile (1.6
ChangeConfiguration; 2.0.1 through network connection profiles, `network`), and the fallback
after a raise that never connected (1.6 A05.FR.08; 2.0.1 B10). The profile only goes up; the one
way down is that fallback. With `StationConfig.state_dir` all of it is kept in one file, so a
restarted station reconnects with its rotated secret on its upgraded profile, as a charger does
after a power cycle.

Secrets (key, password) never reach a repr, a security-log entry or an exception message.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.credentials import AUTH_KEY_MAX_BYTES, AUTH_KEY_MIN_BYTES
from chargewarden.simulator.config import (
    TlsMaterialError,
    basic_auth_header,
    is_wss,
    station_url,
)
from chargewarden.simulator.network import (
    NetworkConfiguration,
    NetworkSlot,
    Rejection,
    parse_priority,
    slot_from_connection_data,
)
from chargewarden.simulator.statedir import StateDir
from chargewarden.simulator.values import is_valid_password, parse_key_hex, parse_non_negative_int

if TYPE_CHECKING:
    from chargewarden.simulator.core import Payload, StationCore

STATE_FILE = "security-state.json"
_FORMAT = 1
_RECONFIGURED = "ReconfigurationOfSecurityParameters"


def _is_profile(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3


class StationSecurity:
    def __init__(self, core: StationCore) -> None:
        cfg = core.config
        self._core = core
        self._config = cfg
        self._version = core.version
        self.auth_key: bytes | None = cfg.auth_key
        self.key_hex_text: str | None = None  # exact text of a CSMS-set key, for hex interop
        self.password: str | None = cfg.password
        self.profile = cfg.security_profile
        # 1.6: the proven profile to return to while a raise has not connected yet.
        self.fallback_profile: int | None = None
        self.network: NetworkConfiguration | None = None
        if self._version is OcppVersion.V201:
            first = NetworkSlot(cfg.base_url(), cfg.security_profile)
            self.network = NetworkConfiguration(cfg.network_slots, first)
        self._state = StateDir(cfg.state_dir) if cfg.state_dir is not None else None
        if self._state is not None:
            self._load(self._state)
        if self.network is not None:
            self.profile = self.network.restart().security_profile  # a start is a boot
        # Written on the first change only: an unchanged station leaves no file behind, so a
        # new provisioning (other flags) still applies until the CSMS changes something.
        self._saved = self._serialise()

    def __repr__(self) -> str:
        return f"StationSecurity(profile={self.profile}, network={self.network!r})"

    def refuses(self, change: str) -> bool:
        """Failure-path hook: StationConfig.refuse_changes names this change."""
        return change in self._config.refuse_changes

    # ---- what a connection uses ---------------------------------------------------------------

    def connection_url(self) -> str:
        if self.network is not None:
            return station_url(self.network.slot.url, self._config.identity)
        return self._config.connection_url(self.profile)

    @property
    def uses_tls(self) -> bool:
        """Whether the station may connect over wss (now, after an upgrade, or from a slot)."""
        if self._config.uses_tls:
            return True
        return self.network is not None and any(is_wss(s.url) for s in self.network.slots.values())

    def auth_header(self) -> str | None:
        """Authorization header with the credentials currently in force (rotations included)."""
        return basic_auth_header(
            version=self._version,
            security_profile=self.profile,
            username=self._config.effective_username,
            auth_key=self.auth_key,
            password=self.password,
            send_key_as_hex=self._config.send_key_as_hex,
            key_hex_text=self.key_hex_text,
        )

    # ---- credentials ----------------------------------------------------------------------------

    def change_auth_key(self, hex_text: str) -> bool:
        """1.6 AuthorizationKey: 16–20 bytes as hex (whitepaper §7.2). Accepted → reconnect."""
        key = parse_key_hex(hex_text)
        if key is None or self.refuses("AuthorizationKey"):
            return False
        self.auth_key, self.key_hex_text = key, hex_text
        # A01.FR.11/12: log the change, never the key.
        self._changed("AuthorizationKey changed", reconnect=True)
        return True

    def change_password(self, password: str) -> bool:
        """2.0.1 BasicAuthPassword: 16–40 chars of identifierString's set (TC_A_01_CS);
        Accepted → reconnect with it at once (A01)."""
        if not is_valid_password(password) or self.refuses("BasicAuthPassword"):
            return False
        self.password = password
        self._changed("BasicAuthPassword changed", reconnect=True)
        return True

    # ---- security profile -----------------------------------------------------------------------

    def prerequisites_problem(self, profile: int) -> str | None:
        """What the station lacks for `profile` (1.6 A05.FR.02-04, 2.0.1 A05.FR.02/03)."""
        core = self._core
        if profile in (1, 2):
            if self._version is OcppVersion.V16:
                key = self.auth_key
                if not (key and AUTH_KEY_MIN_BYTES <= len(key) <= AUTH_KEY_MAX_BYTES):
                    return "no valid AuthorizationKey"
            elif self.password is None:
                return "no BasicAuthPassword"
        if profile in (2, 3) and not core.csms_root_installed:
            return "no CSMS root certificate installed"
        if profile == 3 and not core.station_certificate_installed:
            return "no ChargingStationCertificate installed"
        return None

    def raise_profile(self, text: str) -> bool:
        """1.6 SecurityProfile: only up, and only with its prerequisites (whitepaper A05)."""
        new = parse_non_negative_int(text)
        if new is None or new > 3 or new <= self.profile:  # A05.FR.01
            return False
        if self.prerequisites_problem(new) is not None or self.refuses("SecurityProfile"):
            return False
        # Back to the last profile that connected, even if an earlier raise is still unproven.
        if self.fallback_profile is None:
            self.fallback_profile = self.profile
        self.profile = new
        self._changed(f"SecurityProfile raised to {new}", reconnect=True)  # A05.FR.06/07
        return True

    # ---- 2.0.1 network connection profiles ------------------------------------------------------

    def set_network_profile(self, payload: Payload) -> Payload:
        """SetNetworkProfile: Accepted profiles are kept and used from the next boot on."""
        network = self._network()
        number: int = payload["configurationSlot"]
        data: Payload = payload["connectionData"]
        if self.refuses("NetworkProfile"):
            return {"status": "Rejected"}
        problem = network.slot_problem(number, data)
        if problem is None:
            profile: int = data["securityProfile"]
            if profile > self.profile and self.refuses("SecurityProfile"):
                return {"status": "Rejected"}
            # A slot already in the priority list is used at the next boot with no further
            # check, so its prerequisites are checked now; a new slot's when it enters the list
            # (TC_A_20/21_CS: SetNetworkProfile Accepted, the priority write Rejected).
            missing = self.prerequisites_problem(profile) if profile > network.floor else None
            if missing is not None and number in network.priority:
                problem = Rejection("InvalidNetworkConf", missing)
        if problem is not None:
            status_info = {"reasonCode": problem.code, "additionalInfo": problem.info}
            return {"status": "Rejected", "statusInfo": status_info}
        network.store(number, slot_from_connection_data(data))
        # No URL in the log: it may carry a user name and password.
        self._changed(
            f"network connection profile stored in slot {number} "
            f"(SecurityProfile {data['securityProfile']})"
        )
        return {"status": "Accepted"}

    def priority_text(self) -> str:
        return self._network().priority_text

    def set_priority(self, text: str) -> bool | str:
        """OCPPCommCtrlr.NetworkConfigurationPriority: configured slots only, none below the
        proven profile, prerequisites met for a higher one (TC_A_20/21_CS). Used from the next
        boot on, hence RebootRequired (TC_A_19_CS)."""
        network = self._network()
        slots = parse_priority(text)
        if slots is None or network.priority_problem(slots) is not None:
            return False
        profiles = [network.slots[number].security_profile for number in slots]
        raised = [profile for profile in profiles if profile > network.floor]
        if self.refuses("NetworkProfile") or (raised and self.refuses("SecurityProfile")):
            return False
        if any(self.prerequisites_problem(profile) is not None for profile in raised):
            return False
        if slots == network.priority:
            return True
        network.set_priority(slots)
        self._changed(f"NetworkConfigurationPriority set to {network.priority_text}")
        return "RebootRequired"

    def _network(self) -> NetworkConfiguration:
        if self.network is None:
            raise RuntimeError("network connection profiles exist in OCPP 2.0.1 only")
        return self.network

    # ---- connection lifecycle -------------------------------------------------------------------

    def on_reset(self) -> None:
        """A reboot: 2.0.1 connects with the first slot of the priority list from now on."""
        if self.network is not None:
            self.profile = self.network.restart().security_profile
            self.save()

    def on_connected(self, now: datetime) -> None:
        """A connection was admitted: a raised profile is proven, no fallback below it."""
        if self.network is None:
            self.fallback_profile = None  # A05.FR.07
        elif self.network.on_connected():
            self._core.log_security_event(
                _RECONFIGURED,
                now,
                f"connected with SecurityProfile {self.profile} (network slot "
                f"{self.network.current}); lower profiles are no longer used",
            )
        self.save()

    def on_connect_failed(self, now: datetime) -> None:
        """A connection attempt failed. 1.6: after a fresh raise, back to the previous profile
        (A05.FR.08). 2.0.1: on to the next slot of the priority list (B10), which may be the
        previous profile while the higher one is unproven."""
        if self.network is None:
            if self.fallback_profile is None:
                return
            raised, self.profile = self.profile, self.fallback_profile
            self.fallback_profile = None
            detail = f"SecurityProfile {raised}; fell back to {self.profile}"
        else:
            change = self.network.on_connect_failed()
            if change is None:
                return
            self.profile = change.to_profile
            if change.to_profile >= change.from_profile:
                self.save()
                return  # another slot, no lower profile: not a security reconfiguration
            detail = (
                f"SecurityProfile {change.from_profile} (network slot {change.from_slot}); "
                f"fell back to SecurityProfile {change.to_profile} (slot {change.to_slot})"
            )
        self._core.log_security_event(_RECONFIGURED, now, f"could not connect with {detail}")
        self.save()

    def _changed(self, what: str, *, reconnect: bool = False) -> None:
        self._core.log_security_event(_RECONFIGURED, self._core.now(), what)
        if reconnect:
            self._core.request_reconnect(what)
        self.save()

    # ---- state directory ------------------------------------------------------------------------

    def save(self) -> None:
        """Write the state file if anything in it changed (0600, atomically: `StateDir`)."""
        if self._state is None:
            return
        data = self._serialise()
        if data != self._saved:
            self._state.write(STATE_FILE, data)
            self._saved = data

    def _serialise(self) -> bytes:
        state: dict[str, Any] = {
            "format": _FORMAT,
            "ocpp_version": self._version.value,
            "security_profile": self.profile,
            "fallback_profile": self.fallback_profile,
            "auth_key": None if self.auth_key is None else self.auth_key.hex().upper(),
            "auth_key_text": self.key_hex_text,
            "password": self.password,
            "network": None if self.network is None else self.network.to_json(),
        }
        return (json.dumps(state, indent=2, sort_keys=True) + "\n").encode()

    def _load(self, state: StateDir) -> None:
        raw = state.read(STATE_FILE)
        if raw is None:
            return
        try:
            data = json.loads(raw)
        except ValueError:
            data = None  # the parser's message may quote the file: never repeat it
        try:
            self._restore(data)
        except (ValueError, TypeError) as exc:
            # Messages name the field only, never a value: the file holds the secrets.
            problem = f"{state.path / STATE_FILE}: {exc} (delete it to start from the config)"
            raise TlsMaterialError("state_dir", problem) from None

    def _restore(self, data: Any) -> None:
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("not a station security state")
        if data.get("ocpp_version") != self._version.value:
            raise ValueError("written by a station of another OCPP version")
        profile, fallback = data.get("security_profile"), data.get("fallback_profile")
        if not _is_profile(profile) or not (
            fallback is None or (_is_profile(fallback) and fallback < profile)
        ):
            raise ValueError("security_profile or fallback_profile invalid")
        key_hex, key_text = data.get("auth_key"), data.get("auth_key_text")
        key = None
        if key_hex is not None:
            if not isinstance(key_hex, str):
                raise ValueError("auth_key invalid")
            key = bytes.fromhex(key_hex)
        if key_text is not None and (
            not isinstance(key_text, str) or parse_key_hex(key_text) != key
        ):
            raise ValueError("auth_key_text does not match auth_key")
        password = data.get("password")
        if password is not None and not isinstance(password, str):
            raise ValueError("password invalid")
        if self.network is not None:
            self.network = NetworkConfiguration.from_json(
                self._config.network_slots, data.get("network")
            )
        self.auth_key, self.key_hex_text, self.password = key, key_text, password
        self.profile, self.fallback_profile = profile, fallback
