"""OCPP 1.6J (with the security whitepaper ed.3 messages): commands to a charge point."""

from __future__ import annotations

from chargewarden.domain.station_commands import (
    Command,
    CommandFailed,
    FailureKind,
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
    RootCertificateKind.CSMS_ROOT: "CentralSystemRootCertificate",
    RootCertificateKind.MANUFACTURER_ROOT: "ManufacturerRootCertificate",
}
_KINDS = {value: kind for kind, value in _ROOT_TYPES.items()}


class Commands16:
    def trigger_csr(self, certificate_type: StationCertificateType) -> Command:
        if certificate_type is not StationCertificateType.CHARGING_STATION:
            raise CommandFailed(
                FailureKind.UNSUPPORTED, "OCPP 1.6 stations have no V2G certificate to sign"
            )
        return Command("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})

    def trigger_accepted(self, answer: Payload) -> bool:
        return bool(answer.get("status") == "Accepted")

    def certificate_signed(
        self, chain_pem: str, certificate_type: StationCertificateType
    ) -> Command:
        return Command("CertificateSigned", {"certificateChain": chain_pem})

    def install_certificate(self, kind: RootCertificateKind, pem: str) -> Command:
        if kind not in _ROOT_TYPES:
            raise CommandFailed(
                FailureKind.UNSUPPORTED, f"OCPP 1.6 stations cannot install a {kind} certificate"
            )
        return Command(
            "InstallCertificate", {"certificateType": _ROOT_TYPES[kind], "certificate": pem}
        )

    def get_installed(self) -> list[Command]:
        # 1.6 asks for one type per call.
        return [
            Command("GetInstalledCertificateIds", {"certificateType": value})
            for value in _ROOT_TYPES.values()
        ]

    def installed_from(self, command: Command, answer: Payload) -> list[InstalledCertificate]:
        if answer.get("status") != "Accepted":
            return []
        certificate_type = command.payload["certificateType"]
        return [
            InstalledCertificate(certificate_type, dict(item))
            for item in answer.get("certificateHashData") or []
        ]

    def delete_certificate(self, hash_data: dict[str, str]) -> Command:
        # Exactly as the station reported it: some compare the hex digits case-sensitively.
        return Command("DeleteCertificate", {"certificateHashData": dict(hash_data)})

    def kind_of(self, certificate_type: str) -> RootCertificateKind | None:
        return _KINDS.get(certificate_type)

    def set_credential(self, secret: str) -> Command:
        return Command("ChangeConfiguration", {"key": "AuthorizationKey", "value": secret})

    def change_status(self, command: Command, answer: Payload) -> str:
        return str(answer.get("status", ""))

    def reset(self) -> Command:
        return Command("Reset", {"type": "Soft"})

    def priority_query(self) -> Command | None:
        return None

    def slots_in_use(self, answer: Payload) -> list[int]:
        return []

    def profile_change(self, target: int, plan: ProfilePlan) -> list[Command]:
        # Whitepaper A05: the charge point reconnects on its own after Accepted (A05.FR.06/07).
        return [Command("ChangeConfiguration", {"key": "SecurityProfile", "value": str(target)})]

    def update_firmware(self, request: FirmwareRequest) -> Command:
        return Command("SignedUpdateFirmware", firmware_payload(request))

    def get_log(self, request: LogRequest) -> Command:
        return Command("GetLog", log_payload(request))
