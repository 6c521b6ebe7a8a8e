"""OCPP side of the station's certificates (SIM-02, SIM-03; whitepaper A02, M03–M05; 2.0.1 A02,
M03–M05): CSR triggers and SignCertificate, CertificateSigned, InstallCertificate,
DeleteCertificate and GetInstalledCertificateIds, for 1.6 (+ Security Whitepaper) and 2.0.1.

The decisions are `StationCertificates`'; this module maps them to each version's messages,
security events and reconnects.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from chargewarden.pki.hashdata import CertificateHashData
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.certificates import V2G_CHAIN, LeafType
from chargewarden.simulator.rootstore import RootType
from chargewarden.simulator.settings16 import as_handler

if TYPE_CHECKING:
    from chargewarden.simulator.core import Handler, Payload, StationCore

# ExtendedTriggerMessage (1.6) / TriggerMessage (2.0.1) requestedMessage → the certificate whose
# CSR the CSMS asks for.
CSR_TRIGGER_16 = "SignChargePointCertificate"
CSR_TRIGGERS_201 = {
    "SignChargingStationCertificate": LeafType.CHARGING_STATION,
    "SignV2GCertificate": LeafType.V2G,
}
# A02.FR.07: the event a refused CertificateSigned raises.
INVALID_CERTIFICATE_EVENT = {
    OcppVersion.V16: "InvalidChargePointCertificate",
    OcppVersion.V201: "InvalidChargingStationCertificate",
}
_RECONFIGURED = "ReconfigurationOfSecurityParameters"


class CertificateHandlers:
    def __init__(self, core: StationCore) -> None:
        self._core = core
        self._certificates = core.certificates
        self._version = core.version

    def handlers(self) -> dict[str, Handler]:
        handlers = {
            "CertificateSigned": as_handler(self.certificate_signed),
            "InstallCertificate": as_handler(self.install_certificate),
            "DeleteCertificate": as_handler(self.delete_certificate),
            "GetInstalledCertificateIds": as_handler(self.get_installed_certificate_ids),
        }
        if self._version is OcppVersion.V16:
            handlers["ExtendedTriggerMessage"] = as_handler(self.extended_trigger_message)
        return handlers

    # ---- signing ------------------------------------------------------------------------------

    def request_csr(self, leaf_type: LeafType) -> None:
        """Generate a new key pair and queue its SignCertificate (sent after the trigger's
        answer; allowed while the boot is Pending, like any triggered message)."""
        payload: Payload = {"csr": self._certificates.build_csr(leaf_type)}
        if self._version is OcppVersion.V201:
            payload["certificateType"] = leaf_type.value
        self._core.queue_triggered("SignCertificate", payload)

    def on_sign_response(self, request: Payload, response: Payload, now: datetime) -> None:
        """SignCertificate answered. Rejected: the CSMS will send no certificate; the key is
        dropped and the station does not try again by itself (no loop, CRT-03)."""
        if response.get("status") == "Accepted":
            return
        leaf_type = LeafType(request.get("certificateType", LeafType.CHARGING_STATION))
        self._certificates.discard_pending(leaf_type)
        self._core.log_security_event(
            "SignCertificateRejected",
            now,
            f"the CSMS rejected the signing request for the {leaf_type.value}; not retried",
        )

    def extended_trigger_message(self, payload: Payload) -> Payload:
        """1.6 ExtendedTriggerMessage: SignChargePointCertificate, and the whitepaper's
        FirmwareStatusNotification (SignedFirmwareStatusNotification, L01.FR.28/29) and
        LogStatusNotification here, the rest as TriggerMessage (BootNotification, Heartbeat,
        StatusNotification; others NotImplemented)."""
        requested = payload["requestedMessage"]
        if requested == CSR_TRIGGER_16:
            self.request_csr(LeafType.CHARGING_STATION)
        elif requested == "FirmwareStatusNotification":
            self._core.firmware.trigger_status()
        elif requested == "LogStatusNotification":
            self._core.logs.trigger_status()
        else:
            return self._core.settings.trigger_message(payload)
        return {"status": "Accepted"}

    def certificate_signed(self, payload: Payload) -> Payload:
        core = self._core
        now = core.now()
        leaf_type = LeafType(payload.get("certificateType", LeafType.CHARGING_STATION))
        check = self._certificates.accept_signed_chain(payload["certificateChain"], leaf_type, now)
        if not check.ok:
            # A02.FR.07 asks for the event in both versions, critical or not (1.6).
            event = INVALID_CERTIFICATE_EVENT[self._version]
            core.record_security_event(event, now, check.reason, push=True)
            return {"status": "Rejected"}
        core.log_security_event(_RECONFIGURED, now, f"new {leaf_type.value} installed")
        if leaf_type is LeafType.CHARGING_STATION:
            core.station_certificate_installed = True
            # The certificate is the credential only at profile 3: switch to it now (A02.FR.08).
            # At a lower profile it is presented from the next connection on.
            if core.security_profile >= 3:
                core.request_reconnect("new ChargingStationCertificate")
        return {"status": "Accepted"}

    # ---- root store ---------------------------------------------------------------------------

    def install_certificate(self, payload: Payload) -> Payload:
        core = self._core
        if core.security.refuses("InstallCertificate"):
            return {"status": "Rejected"}
        now = core.now()
        name = payload["certificateType"]
        status = self._certificates.install(name, payload["certificate"], now)
        if status == "Failed" and self._version is OcppVersion.V16:
            status = "Rejected"  # 1.6 whitepaper M05.FR.03: a full store is Rejected
        if status == "Accepted":
            if RootType.parse(name) is RootType.CSMS:
                core.csms_root_installed = True
            core.log_security_event(_RECONFIGURED, now, f"{name} installed")
        return {"status": status}

    def delete_certificate(self, payload: Payload) -> Payload:
        try:
            wanted = CertificateHashData.from_ocpp(payload["certificateHashData"])
        except ValueError:
            return {"status": "NotFound"}
        status = self._certificates.delete(wanted)
        if status == "Accepted":
            self._core.log_security_event(
                _RECONFIGURED, self._core.now(), f"certificate {wanted.serial_number} deleted"
            )
        return {"status": status}

    def get_installed_certificate_ids(self, payload: Payload) -> Payload:
        if self._version is OcppVersion.V16:
            found = self._certificates.installed([payload["certificateType"]])
            if not found:
                return {"status": "NotFound"}
            return {"status": "Accepted", "certificateHashData": [d.to_ocpp() for _, d in found]}
        found = self._certificates.installed(payload.get("certificateType"))
        if not found:
            return {"status": "NotFound"}
        chain: list[Payload] = []
        for name, data in found:
            item: Payload = {"certificateType": name, "certificateHashData": data.to_ocpp()}
            if name == V2G_CHAIN:
                children = self._certificates.v2g_child_hash_data()
                if children:
                    item["childCertificateHashData"] = [c.to_ocpp() for c in children]
            chain.append(item)
        return {"status": "Accepted", "certificateHashDataChain": chain}
