"""OCPP 2.0.1: commands to a charging station."""

from __future__ import annotations

from chargewarden.domain.station_commands import Command, Payload, RootCertificateKind
from chargewarden.pki.csr_policy import StationCertificateType
from chargewarden.store.records import InstalledCertificate

_ROOT_TYPES = {
    RootCertificateKind.CSMS_ROOT: "CSMSRootCertificate",
    RootCertificateKind.MANUFACTURER_ROOT: "ManufacturerRootCertificate",
    RootCertificateKind.V2G_ROOT: "V2GRootCertificate",
    RootCertificateKind.MO_ROOT: "MORootCertificate",
}
_KINDS = {value: kind for kind, value in _ROOT_TYPES.items()}
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
