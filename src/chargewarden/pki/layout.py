"""Where everything lives under the CA directory: one place, shared by the CA, import and TLS.

    <ca_dir>/
      passphrase                       embedded default only (0600)
      cpo-root/{cert,key}.pem          CPO root (self-signed)
      cpo-server-ca/{cert,key}.pem     issues the CSMS server certificates
      cpo-station-ca/{cert,key}.pem    issues station (client) certificates
      manufacturer-root/{cert,key}.pem development Manufacturer root
      firmware-signer/{cert,key}.pem   development firmware-signing certificate
      server/rsa/{chain,key}.pem       generated CSMS server certificates (chain: leaf + CA)
      server/ecdsa/{chain,key}.pem
      server/imported/<rsa|ecdsa>/{chain,key}.pem   an operator's own; replace the generated
      imported/server-roots/<name>.pem roots of imported server certificates (for stations)
      imported/station-cas/<name>.pem  extra CAs whose station certificates are accepted
      imported/station-cas/<name>.crl  ... and their CRLs (optional)
      crl/<ca-name>.crl                CRLs of our CAs (DER), regenerated on revocation
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CPO_ROOT = "cpo-root"
SERVER_CA = "cpo-server-ca"
STATION_CA = "cpo-station-ca"
MANUFACTURER_ROOT = "manufacturer-root"
FIRMWARE_SIGNER = "firmware-signer"
# Signs V2G certificates (ISO 15118) requested with SignCertificate(V2GCertificate); added to
# installations that predate it at their next start (pki.authorities.ADDED_LATER).
V2G_CA = "cpo-v2g-ca"
CA_NAMES = (CPO_ROOT, SERVER_CA, STATION_CA, V2G_CA, MANUFACTURER_ROOT, FIRMWARE_SIGNER)
# Who signed whom (None: self-signed root).
PARENT_OF: dict[str, str | None] = {
    CPO_ROOT: None,
    SERVER_CA: CPO_ROOT,
    STATION_CA: CPO_ROOT,
    V2G_CA: CPO_ROOT,
    MANUFACTURER_ROOT: None,
    FIRMWARE_SIGNER: MANUFACTURER_ROOT,
}
# The CAs that sign CRLs (the firmware signer is a leaf).
CRL_ISSUERS = (CPO_ROOT, SERVER_CA, STATION_CA, V2G_CA, MANUFACTURER_ROOT)
# RSA first, then ECDSA: the order TLS material presents them in.
SERVER_KINDS = ("rsa", "ecdsa")
IMPORTED_PREFIX = "imported:"

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
CHAIN_FILE = "chain.pem"


@dataclass(frozen=True)
class Layout:
    ca_dir: Path

    def cert(self, name: str) -> Path:
        return self.ca_dir / name / CERT_FILE

    def key(self, name: str) -> Path:
        return self.ca_dir / name / KEY_FILE

    def server_dir(self, kind: str, *, imported: bool = False) -> Path:
        return self.ca_dir / "server" / ("imported" if imported else "") / kind

    def server_chain(self, kind: str, *, imported: bool = False) -> Path:
        return self.server_dir(kind, imported=imported) / CHAIN_FILE

    def server_key(self, kind: str, *, imported: bool = False) -> Path:
        return self.server_dir(kind, imported=imported) / KEY_FILE

    @property
    def server_roots_dir(self) -> Path:
        return self.ca_dir / "imported" / "server-roots"

    @property
    def station_cas_dir(self) -> Path:
        return self.ca_dir / "imported" / "station-cas"

    @property
    def crl_dir(self) -> Path:
        return self.ca_dir / "crl"

    def crl(self, ca_name: str) -> Path:
        return self.crl_dir / f"{ca_name}.crl"

    def hierarchy_paths(self) -> list[Path]:
        """What a CA created by ``ca init`` consists of (any of it present: a CA exists)."""
        return [self.ca_dir / name for name in CA_NAMES] + [self.ca_dir / "server"]

    def imported_server_kinds(self) -> list[str]:
        return [k for k in SERVER_KINDS if self.server_chain(k, imported=True).exists()]

    def imported_station_cas(self) -> list[Path]:
        return sorted(self.station_cas_dir.glob("*.pem"))

    def imported_server_roots(self) -> list[Path]:
        return sorted(self.server_roots_dir.glob("*.pem"))

    def watched_files(self) -> list[Path]:
        """Every file the TLS material is built from (for a cheap change check)."""
        files = [self.cert(STATION_CA), self.cert(CPO_ROOT)]
        for kind in SERVER_KINDS:
            for imported in (False, True):
                files += [self.server_chain(kind, imported=imported),
                          self.server_key(kind, imported=imported)]
        files += self.imported_station_cas() + self.imported_server_roots()
        files += sorted(self.station_cas_dir.glob("*.crl"))
        return files
