"""OCPP 2.0.1 station side: a small device model and the CSMS→station calls the simulator serves."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chargewarden.simulator.certhandlers import CSR_TRIGGERS_201
from chargewarden.simulator.settings16 import ConfigKey, as_handler, set_status
from chargewarden.simulator.values import parse_non_negative_int

if TYPE_CHECKING:
    from chargewarden.simulator.core import Handler, Payload, StationCore

VariableKey = tuple[str, str]  # (component.name, variable.name)


class Settings201:
    def __init__(self, core: StationCore) -> None:
        self._core = core
        self._plain: dict[VariableKey, str] = {("OCPPCommCtrlr", "OfflineThreshold"): "300"}
        self.variables: dict[VariableKey, ConfigKey] = {
            # Changed only through SetNetworkProfile + reboot, never directly (A00.FR.005).
            ("SecurityCtrlr", "SecurityProfile"): ConfigKey(
                lambda: str(core.security_profile), None
            ),
            # Write-only: GetVariables answers Rejected and never the value (A01.FR.12).
            ("SecurityCtrlr", "BasicAuthPassword"): ConfigKey(None, core.security.change_password),
            # O of the station's CSRs (A02.FR.03/13).
            ("SecurityCtrlr", "OrganizationName"): ConfigKey(
                lambda: core.cpo_name, core.change_cpo_name
            ),
            ("SecurityCtrlr", "CertificateEntries"): ConfigKey(
                lambda: str(len(core.certificates.installed())), None
            ),
            ("SecurityCtrlr", "Identity"): ConfigKey(lambda: core.config.identity, None),
            ("OCPPCommCtrlr", "HeartbeatInterval"): ConfigKey(
                lambda: str(core.heartbeat_setting), core.set_heartbeat_interval
            ),
            # Slots to connect with, first one first; used from the next boot (B10, TC_A_19).
            ("OCPPCommCtrlr", "NetworkConfigurationPriority"): ConfigKey(
                core.security.priority_text, core.security.set_priority
            ),
        }
        for key in self._plain:
            self.variables[key] = ConfigKey(self._getter(key), self._setter(key))
        self._components = {component for component, _ in self.variables}

    def _getter(self, key: VariableKey) -> Callable[[], str]:
        return lambda: self._plain[key]

    def _setter(self, key: VariableKey) -> Callable[[str], bool]:
        def set_value(text: str) -> bool:
            if parse_non_negative_int(text) is None:
                return False
            self._plain[key] = text.strip()
            return True

        return set_value

    def handlers(self) -> dict[str, Handler]:
        return {
            "GetVariables": as_handler(self.get_variables),
            "SetVariables": as_handler(self.set_variables),
            "SetNetworkProfile": as_handler(self._core.security.set_network_profile),
            "Reset": as_handler(self.reset),
            "TriggerMessage": as_handler(self.trigger_message),
            "ClearCache": as_handler(self.clear_cache),
            "DataTransfer": as_handler(self.data_transfer),
        }

    # ---- device model lookup -----------------------------------------------------------------

    def _lookup(self, item: Payload) -> ConfigKey | str:
        """The variable, or the status of the first check that fails."""
        component, variable = item["component"], item["variable"]
        # No EVSE-level or instanced components/variables exist in this model.
        if (
            component["name"] not in self._components
            or "evse" in component
            or "instance" in component
        ):
            return "UnknownComponent"
        entry = self.variables.get((component["name"], variable["name"]))
        if entry is None or "instance" in variable:
            return "UnknownVariable"
        if item.get("attributeType", "Actual") != "Actual":
            return "NotSupportedAttributeType"
        return entry

    @staticmethod
    def _result(item: Payload, status: str) -> Payload:
        result: Payload = {
            "attributeStatus": status,
            "component": item["component"],
            "variable": item["variable"],
        }
        if "attributeType" in item:
            result["attributeType"] = item["attributeType"]
        return result

    # ---- handlers ----------------------------------------------------------------------------

    def get_variables(self, payload: Payload) -> Payload:
        results: list[Payload] = []
        for item in payload["getVariableData"]:
            entry = self._lookup(item)
            if isinstance(entry, str):
                results.append(self._result(item, entry))
            elif entry.get is None:
                results.append(self._result(item, "Rejected"))
            else:
                result = self._result(item, "Accepted")
                result["attributeValue"] = entry.get()
                results.append(result)
        return {"getVariableResult": results}

    def set_variables(self, payload: Payload) -> Payload:
        results: list[Payload] = []
        for item in payload["setVariableData"]:
            entry = self._lookup(item)
            if isinstance(entry, str):
                status = entry
            elif entry.set is None:
                status = "Rejected"
            else:
                status = set_status(entry.set(item["attributeValue"]))
            results.append(self._result(item, status))
        return {"setVariableResult": results}

    def reset(self, payload: Payload) -> Payload:
        if "evseId" in payload:
            return {"status": "Rejected"}  # EVSE-level reset is not simulated
        return {"status": "Accepted" if self._core.reset(payload["type"]) else "Rejected"}

    def trigger_message(self, payload: Payload) -> Payload:
        core = self._core
        requested = payload["requestedMessage"]
        evse: Payload | None = payload.get("evse")
        if requested == "BootNotification":
            if core.registration == "Accepted":
                return {"status": "Rejected"}  # F06.FR.17 (TC_F_26_CS)
            core.trigger_boot()
        elif requested == "Heartbeat":
            core.queue_triggered(*core.heartbeat_request())
        elif requested == "StatusNotification":
            if evse is not None and (
                not 1 <= evse["id"] <= core.config.connector_count
                or evse.get("connectorId", 1) != 1
            ):
                return {"status": "Rejected"}
            target = None if evse is None else evse["id"]
            for action, request in core.status_notification_requests(core.now(), target):
                core.queue_triggered(action, request)
        elif requested in CSR_TRIGGERS_201:
            core.certificate_handlers.request_csr(CSR_TRIGGERS_201[requested])
        elif requested == "FirmwareStatusNotification":
            core.firmware.trigger_status()  # L01.FR.28/29
        elif requested == "LogStatusNotification":
            core.logs.trigger_status()  # TC_F_15/16
        else:
            return {"status": "NotImplemented"}  # F06.FR.08
        return {"status": "Accepted"}

    def clear_cache(self, payload: Payload) -> Payload:
        del payload  # no authorization cache is simulated
        return {"status": "Accepted"}

    def data_transfer(self, payload: Payload) -> Payload:
        del payload
        return {"status": "UnknownVendorId"}
