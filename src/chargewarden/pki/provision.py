"""Factory provisioning of a profile-3 station: key, certificate, chain and CSMS root, as files.

For stations that start on profile 3 and so cannot get their first certificate over OCPP. The
key is generated here for the station and written unencrypted (a station cannot type a
passphrase) with mode 0600; whoever carries the files to the station is trusted with it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from chargewarden.pki import PkiError
from chargewarden.pki.files import ensure_dir, write_public
from chargewarden.pki.hierarchy import Pki, pem_of
from chargewarden.pki.issue import issue_station_certificate
from chargewarden.pki.keys import generate_ec, write_private_key
from chargewarden.pki.layout import STATION_CA
from chargewarden.pki.material import csms_root_pem
from chargewarden.pki.recording import record_for
from chargewarden.store.records import CertificateRecord, CertificateRole

if TYPE_CHECKING:
    from chargewarden.store import Store

STATION_KEY_FILE = "station-key.pem"
STATION_CHAIN_FILE = "station-chain.pem"
CSMS_ROOT_FILE = "csms-root.pem"


@dataclass(frozen=True)
class ProvisionedStation:
    certificate: x509.Certificate
    record: CertificateRecord
    key_path: Path
    chain_path: Path
    root_path: Path


async def provision_station(
    pki: Pki,
    store: Store,
    *,
    identity: str,
    cn: str,
    o: str,
    out_dir: Path,
    lifetime_days: int | None = None,
    now: datetime | None = None,
) -> ProvisionedStation:
    """Generate a P-256 key for ``identity``, issue its certificate (CN ``cn``, O ``o``) from
    the station CA, record it, and write ``station-key.pem`` (0600), ``station-chain.pem``
    (leaf + station CA) and ``csms-root.pem`` into ``out_dir``.

    Refuses (PkiError) to overwrite any of those files: an existing station key may be the
    only copy of one in use.
    """
    paths = [out_dir / STATION_KEY_FILE, out_dir / STATION_CHAIN_FILE, out_dir / CSMS_ROOT_FILE]
    for path in paths:
        if path.exists():
            raise PkiError(f"{path} already exists; choose another --out directory or remove it")
    key = generate_ec(ec.SECP256R1())
    certificate = issue_station_certificate(
        pki,
        key.public_key(),
        serial_number_cn=cn,
        cpo_name=o,
        lifetime_days=lifetime_days or pki.settings.station_cert_lifetime_days,
        now=now or datetime.now(UTC),
    )
    root_pem = csms_root_pem(pki.settings)
    # Recorded before any file exists: a certificate that was handed out is always on record
    # (and can be revoked), even if writing the files fails afterwards.
    record = await store.certificates.add(
        record_for(
            certificate,
            issuer_ca=STATION_CA,
            role=CertificateRole.STATION,
            station_identity=identity,
        )
    )
    try:
        ensure_dir(out_dir)
        write_private_key(paths[0], key, None, exclusive=True)
        write_public(paths[1], pem_of(certificate, pki.station_ca.certificate), exclusive=True)
        write_public(paths[2], root_pem, exclusive=True)
    except OSError as exc:
        for path in paths:
            with contextlib.suppress(OSError):
                path.unlink()
        raise PkiError(
            f"cannot write the station files into {out_dir}: {exc.strerror or exc} "
            f"(certificate {record.serial} was recorded; revoke it with "
            f"'chargewarden cert revoke {record.serial} --reason cessation-of-operation')"
        ) from None
    return ProvisionedStation(certificate, record, *paths)
