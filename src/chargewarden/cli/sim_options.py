"""The command-line options `sim` and `sim fleet` share, declared once for both."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chargewarden.simulator.config import (
    CSR_FAULTS,
    FIRMWARE_FAULTS,
    KEY_TYPES,
    REFUSABLE_CHANGES,
)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", help="CSMS base URL; the identity is appended, e.g. ws://127.0.0.1:9000/ocpp"
    ),
]
OcppOption = Annotated[str | None, typer.Option("--ocpp", help="1.6 or 2.0.1")]
ProfileOption = Annotated[int, typer.Option("--profile", min=0, max=3, help="Security profile")]
AuthKeyOption = Annotated[
    str | None,
    typer.Option("--auth-key", envvar="CHARGEWARDEN_AUTH_KEY", help="1.6 AuthorizationKey as hex"),
]
PasswordOption = Annotated[
    str | None,
    typer.Option("--password", envvar="CHARGEWARDEN_PASSWORD", help="2.0.1 BasicAuthPassword"),
]
HexOption = Annotated[
    bool,
    typer.Option("--send-key-as-hex", help="1.6: send the 40-hex text instead of the key bytes"),
]
DurationOption = Annotated[
    float | None,
    typer.Option("--duration", min=0.1, help="Stop after this many seconds (default: Ctrl-C)"),
]
HeartbeatOption = Annotated[
    float | None,
    typer.Option("--heartbeat", min=0.1, help="Heartbeat interval override in seconds"),
]
CsmsRootOption = Annotated[
    Path | None,
    typer.Option(
        "--csms-root",
        metavar="FILE",
        help="PEM file with the CA certificate(s) trusted for the CSMS (default: system store)",
    ),
]
CertOption = Annotated[
    Path | None,
    typer.Option("--cert", metavar="FILE", help="Profile 3: station certificate + chain (PEM)"),
]
KeyOption = Annotated[
    Path | None,
    typer.Option("--key", metavar="FILE", help="Profile 3: station private key (PEM, unencrypted)"),
]
ServerNameOption = Annotated[
    str | None,
    typer.Option(
        "--tls-server-name",
        metavar="NAME",
        help="Name the CSMS certificate must carry (default: the URL's host)",
    ),
]
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        metavar="DIR",
        help="Keep the station's keys, certificates, installed roots, rotated secret, security "
        "profile and network slots here across restarts (sim fleet: one subdirectory per "
        "station)",
    ),
]
CpoNameOption = Annotated[
    str | None,
    typer.Option("--cpo-name", help="CpoName / OrganizationName: the O of the station's CSRs"),
]
HashAlgorithmOption = Annotated[
    str,
    typer.Option(
        "--hash-algorithm", help="GetInstalledCertificateIds hash: SHA256, SHA384 or SHA512"
    ),
]
CsrFaultOption = Annotated[
    str | None,
    typer.Option(
        "--csr-fault", help=f"Send a defective CSR (testing a CSMS): {', '.join(CSR_FAULTS)}"
    ),
]
KeyTypeOption = Annotated[
    str,
    typer.Option("--key-type", help=f"Key pair generated for a CSR: {', '.join(KEY_TYPES)}"),
]
TlsUrlOption = Annotated[
    str | None,
    typer.Option(
        "--tls-url",
        help="wss:// base URL used from security profile 2 on (a 1.6 station raised to 2/3 "
        "moves there; a 2.0.1 station is told its new URL by SetNetworkProfile)",
    ),
]
RefuseChangeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--refuse-change",
        metavar="NAME",
        help="Answer this change Rejected, to test a CSMS's failure paths (repeatable): "
        f"{', '.join(REFUSABLE_CHANGES)}",
    ),
]
NetworkSlotsOption = Annotated[
    int,
    typer.Option(
        "--network-slots",
        min=1,
        max=99,
        help="2.0.1: network connection profile slots (SetNetworkProfile configurationSlot)",
    ),
]
ManufacturerRootOption = Annotated[
    Path | None,
    typer.Option(
        "--manufacturer-root",
        metavar="FILE",
        help="PEM file with the ManufacturerRootCertificate(s) installed at the factory: what "
        "a firmware signing certificate must chain to (SIM-05)",
    ),
]
FirmwareFaultOption = Annotated[
    str | None,
    typer.Option(
        "--firmware-fault",
        help="Make firmware updates fail (testing a CSMS): " + ", ".join(FIRMWARE_FAULTS),
    ),
]
FirmwareVersionOption = Annotated[
    str | None,
    typer.Option(
        "--firmware-version",
        help="firmwareVersion reported until an update installs another (default 1.0.0)",
    ),
]
