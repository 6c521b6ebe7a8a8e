"""OCPP 1.6J station side: configuration keys and the CSMS→station calls the simulator serves."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from chargewarden.simulator.values import parse_non_negative_int

if TYPE_CHECKING:
    from chargewarden.simulator.core import Handler, Payload, StationCore

SUPPORTED_FEATURE_PROFILES = "Core,RemoteTrigger"


class ConfigKey(NamedTuple):
    # get None → write-only (never read back); set None → read-only. A setter answers True
    # (Accepted), False (Rejected) or the status itself (e.g. "RebootRequired").
    get: Callable[[], str] | None
    set: Callable[[str], bool | str] | None


def set_status(result: bool | str) -> str:
    """ChangeConfiguration / SetVariables status of a setter's answer."""
    if isinstance(result, str):
        return result
    return "Accepted" if result else "Rejected"


def as_handler(fn: Callable[[Payload], Payload]) -> Handler:
    """Wrap a synchronous core method in the async Handler signature of the RPC layer."""

    async def handler(payload: Payload) -> Payload:
        return fn(payload)

    handler.__name__ = fn.__name__
    return handler


class Settings16:
    def __init__(self, core: StationCore) -> None:
        self._core = core
        # Ordinary integer keys without side effects here; stored as text, validated on write.
        self._plain: dict[str, str] = {
            "ConnectionTimeOut": "60",
            "MeterValueSampleInterval": "60",
            "WebSocketPingInterval": "0",
        }
        self.keys: dict[str, ConfigKey] = {
            "HeartbeatInterval": ConfigKey(
                lambda: str(core.heartbeat_setting), core.set_heartbeat_interval
            ),
            "SecurityProfile": ConfigKey(
                lambda: str(core.security_profile), core.security.raise_profile
            ),
            # Write-only (whitepaper §7.2, A01.FR.12): the station never discloses the key.
            "AuthorizationKey": ConfigKey(None, core.security.change_auth_key),
            # O of the station's CSRs (whitepaper A02.FR.13).
            "CpoName": ConfigKey(lambda: core.cpo_name, core.change_cpo_name),
            "CertificateStoreMaxLength": ConfigKey(lambda: str(core.config.root_store_limit), None),
            # Not implemented: a new CSMS root need not be signed by the old one (M05.FR.08).
            "AdditionalRootCertificateCheck": ConfigKey(lambda: "false", None),
            "NumberOfConnectors": ConfigKey(lambda: str(core.config.connector_count), None),
            "SupportedFeatureProfiles": ConfigKey(lambda: SUPPORTED_FEATURE_PROFILES, None),
        }
        for name in self._plain:
            self.keys[name] = ConfigKey(self._getter(name), self._setter(name))

    def _getter(self, name: str) -> Callable[[], str]:
        return lambda: self._plain[name]

    def _setter(self, name: str) -> Callable[[str], bool]:
        def set_value(text: str) -> bool:
            if parse_non_negative_int(text) is None:
                return False
            self._plain[name] = text.strip()
            return True

        return set_value

    def handlers(self) -> dict[str, Handler]:
        return {
            "GetConfiguration": as_handler(self.get_configuration),
            "ChangeConfiguration": as_handler(self.change_configuration),
            "Reset": as_handler(self.reset),
            "TriggerMessage": as_handler(self.trigger_message),
            "ClearCache": as_handler(self.clear_cache),
            "DataTransfer": as_handler(self.data_transfer),
        }

    # ---- handlers ----------------------------------------------------------------------------

    def get_configuration(self, payload: Payload) -> Payload:
        requested: list[str] | None = payload.get("key")
        known: list[Payload] = []
        unknown: list[str] = []
        names = requested if requested else [n for n, k in self.keys.items() if k.get]
        for name in names:
            key = self.keys.get(name)
            if key is None or key.get is None:
                # A write-only key is reported exactly like an unknown one (SIM-03).
                unknown.append(name)
                continue
            known.append({"key": name, "readonly": key.set is None, "value": key.get()})
        response: Payload = {"configurationKey": known}
        if unknown:
            response["unknownKey"] = unknown
        return response

    def change_configuration(self, payload: Payload) -> Payload:
        key = self.keys.get(payload["key"])
        if key is None:
            return {"status": "NotSupported"}
        if key.set is None:
            return {"status": "Rejected"}
        return {"status": set_status(key.set(payload["value"]))}

    def reset(self, payload: Payload) -> Payload:
        return {"status": "Accepted" if self._core.reset(payload["type"]) else "Rejected"}

    def trigger_message(self, payload: Payload) -> Payload:
        core = self._core
        requested = payload["requestedMessage"]
        connector: int | None = payload.get("connectorId")
        if requested == "BootNotification":
            core.trigger_boot()
        elif requested == "Heartbeat":
            core.queue_triggered(*core.heartbeat_request())
        elif requested == "StatusNotification":
            # 0 is the charge point itself, valid in 1.6; anything beyond our connectors is not.
            if connector is not None and not 0 <= connector <= core.config.connector_count:
                return {"status": "Rejected"}
            for action, request in core.status_notification_requests(core.now(), connector):
                core.queue_triggered(action, request)
        else:
            return {"status": "NotImplemented"}
        return {"status": "Accepted"}

    def clear_cache(self, payload: Payload) -> Payload:
        del payload  # no authorization cache is simulated, so there is nothing to clear
        return {"status": "Accepted"}

    def data_transfer(self, payload: Payload) -> Payload:
        del payload  # no vendor extensions are implemented
        return {"status": "UnknownVendorId"}
