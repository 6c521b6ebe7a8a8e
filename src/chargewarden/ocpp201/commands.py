"""OCPP 2.0.1: commands to a charging station."""

from __future__ import annotations

from chargewarden.domain.station_commands import (
    Command,
    FirmwareRequest,
    LogRequest,
    Payload,
    ProfilePlan,
    RootCertificateKind,
    firmware_payload,
    log_payload,
)
from chargewarden.pki.csr_policy import StationCertificateType
from chargewarden.store.records import InstalledCertificate

_ROOT_TYPES = {
    RootCertificateKind.CSMS_ROOT: "CSMSRootCertificate",
    RootCertificateKind.MANUFACTURER_ROOT: "ManufacturerRootCertificate",
    RootCertificateKind.V2G_ROOT: "V2GRootCertificate",
    RootCertificateKind.MO_ROOT: "MORootCertificate",
}
_KINDS = {value: kind for kind, value in _ROOT_TYPES.items()}
_PRIORITY = {
    "component": {"name": "OCPPCommCtrlr"},
    "variable": {"name": "NetworkConfigurationPriority"},
}
_TRIGGERS = {
    StationCertificateType.CHARGING_STATION: "SignChargingStationCertificate",
    StationCertificateType.V2G: "SignV2GCertificate",
}


class Commands201:
    def trigger_csr(self, certificate_type: StationCertificateType) -> Command:
        return Command("TriggerMessage", {"requestedMessage": _TRIGGERS[certificate_type]})

    def trigger_accepted(self, answer: Payload) -> bool:
        return bool(answer.get("status") == "Accepted")

    def certificate_signed(
        self, chain_pem: str, certificate_type: StationCertificateType
    ) -> Command:
        return Command(
            "CertificateSigned",
            {"certificateChain": chain_pem, "certificateType": certificate_type.value},
        )

    def install_certificate(self, kind: RootCertificateKind, pem: str) -> Command:
        return Command(
            "InstallCertificate", {"certificateType": _ROOT_TYPES[kind], "certificate": pem}
        )

    def get_installed(self) -> list[Command]:
        # No certificateType: the station reports every type it has.
        return [Command("GetInstalledCertificateIds", {})]

    def installed_from(self, command: Command, answer: Payload) -> list[InstalledCertificate]:
        if answer.get("status") != "Accepted":
            return []
        return [
            InstalledCertificate(item["certificateType"], dict(item["certificateHashData"]))
            for item in answer.get("certificateHashDataChain") or []
        ]

    def delete_certificate(self, hash_data: dict[str, str]) -> Command:
        # Exactly as the station reported it: some compare the hex digits case-sensitively.
        return Command("DeleteCertificate", {"certificateHashData": dict(hash_data)})

    def kind_of(self, certificate_type: str) -> RootCertificateKind | None:
        return _KINDS.get(certificate_type)

    def set_credential(self, secret: str) -> Command:
        return Command(
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "BasicAuthPassword"},
                        "attributeValue": secret,
                    }
                ]
            },
        )

    def change_status(self, command: Command, answer: Payload) -> str:
        if command.action == "SetVariables":
            results = answer.get("setVariableResult") or [{}]
            return str(results[0].get("attributeStatus", ""))
        return str(answer.get("status", ""))

    def reset(self) -> Command:
        return Command("Reset", {"type": "OnIdle"})

    def priority_query(self) -> Command | None:
        return Command("GetVariables", {"getVariableData": [dict(_PRIORITY)]})

    def slots_in_use(self, answer: Payload) -> list[int]:
        results = answer.get("getVariableResult") or [{}]
        if results[0].get("attributeStatus") != "Accepted":
            return []
        slots: list[int] = []
        for part in str(results[0].get("attributeValue", "")).split(","):
            if part.strip().isdigit() and int(part) not in slots:
                slots.append(int(part))
        return slots

    def profile_change(self, target: int, plan: ProfilePlan) -> list[Command]:
        # TC_A_19: the new profile in a free slot, that slot first, then a reboot to use it.
        # The old slots stay behind it so a station that cannot connect falls back (A05.FR.08).
        priority = [plan.slot, *(slot for slot in plan.priority if slot != plan.slot)]
        return [
            Command(
                "SetNetworkProfile",
                {
                    "configurationSlot": plan.slot,
                    "connectionData": {
                        "ocppVersion": "OCPP20",
                        "ocppTransport": "JSON",
                        "ocppCsmsUrl": plan.csms_url,
                        "messageTimeout": plan.message_timeout,
                        "securityProfile": target,
                        "ocppInterface": plan.interface,
                    },
                },
            ),
            Command(
                "SetVariables",
                {
                    "setVariableData": [
                        {**_PRIORITY, "attributeValue": ",".join(str(s) for s in priority)}
                    ]
                },
            ),
            self.reset(),
        ]

    def update_firmware(self, request: FirmwareRequest) -> Command:
        return Command("UpdateFirmware", firmware_payload(request))

    def get_log(self, request: LogRequest) -> Command:
        return Command("GetLog", log_payload(request))
