"""`ca import`: an operator's own material, validated before it replaces or extends ours.

Three kinds: a server certificate with its key (like the WinCC OA privateKey/publicKey/rootCA
entries), which replaces the generated server certificates and is not renewed automatically;
an extra station CA (with an optional CRL), whose station certificates are then accepted; and
a new CRL for an imported station CA. Every refusal is one line saying what is wrong with
which file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chargewarden.config import Settings
from chargewarden.pki import PkiError
from chargewarden.pki.files import write_public
from chargewarden.pki.hierarchy import load_certificates, pem_of
from chargewarden.pki.keys import (
    PrivateKey,
    check_key_strength,
    key_matches,
    load_private_key_pem,
    write_private_key,
)
from chargewarden.pki.layout import IMPORTED_PREFIX, STATION_CA, Layout
from chargewarden.pki.lifecycle import certificate_matches_host
from chargewarden.pki.recording import record_for
from chargewarden.store.records import CertificateRecord, CertificateRole

ROOT_IMPORT_REFUSAL = (
    "replacing the CPO root is not supported: stations trust the current root, and a new one "
    "must reach them first (InstallCertificate, CRT-04/08). To present your own server "
    "certificate use --server-cert/--server-key/--server-chain (include its root in the chain "
    "and stations are offered it as a CSMS root); to accept station certificates from your own "
    "CA use --station-ca"
)


@dataclass
class ImportResult:
    """What an import wrote, what to record in the store, and what the operator should know."""

    written: list[Path] = field(default_factory=list)
    records: list[CertificateRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_certificates(path: Path, what: str) -> list[x509.Certificate]:
    """The certificates of a PEM file, with a one-line reason when it is not one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise PkiError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in data:
        raise PkiError(f"{what} {path} is not PEM (no -----BEGIN line)")
    if b"-----BEGIN CERTIFICATE-----" not in data:
        found = re.search(rb"-----BEGIN ([A-Z0-9 ]+)-----", data)
        kind = found.group(1).decode("ascii") if found else "something else"
        raise PkiError(f"{what} {path} is not a certificate (it holds a {kind})")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise PkiError(f"{what} {path} holds a damaged certificate") from None


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "(empty subject)"


def check_validity(certificate: x509.Certificate, now: datetime, what: str) -> None:
    if now > certificate.not_valid_after_utc:
        raise PkiError(
            f"{what} ({_subject(certificate)}) expired on "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    if now < certificate.not_valid_before_utc:
        raise PkiError(
            f"{what} ({_subject(certificate)}) is not yet valid (from "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC)"
        )


def _check_issued_by(child: x509.Certificate, issuer: x509.Certificate, what: str) -> None:
    if not is_ca(issuer):
        raise PkiError(f"{what}: {_subject(issuer)} is not a CA, so it cannot issue certificates")
    try:
        child.verify_directly_issued_by(issuer)
    except Exception:  # InvalidSignature, or a name/algorithm mismatch (ValueError, TypeError)
        raise PkiError(
            f"{what}: {_subject(child)} is not issued by {_subject(issuer)}; "
            "give the chain in order, leaf first"
        ) from None


def _has_server_auth(certificate: x509.Certificate) -> bool:
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.SERVER_AUTH in eku


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def _cn(certificate: x509.Certificate) -> str:
    values = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else ""


def _record(
    certificate: x509.Certificate, issuer: str, role: CertificateRole
) -> CertificateRecord:
    return record_for(certificate, issuer_ca=issuer, role=role)


def _read_key(path: Path, passphrase: bytes | None) -> PrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"server key {path} does not exist") from None
    except OSError as exc:
        raise PkiError(f"cannot read server key {path}: {exc.strerror or exc}") from None
    return load_private_key_pem(data, passphrase, f"server key {path}")


def import_server_certificate(
    settings: Settings,
    ca_passphrase: bytes,
    *,
    cert_path: Path,
    key_path: Path,
    key_passphrase: bytes | None = None,
    chain_path: Path | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Validate and install the operator's server certificate (SEC-06)."""
    now = now or datetime.now(UTC)
    given = read_certificates(cert_path, "server certificate")
    leaf, chain = given[0], given[1:]
    if chain_path is not None:
        chain += read_certificates(chain_path, "server chain")
    what = f"server certificate {cert_path}"
    if is_ca(leaf):
        raise PkiError(f"{what} is a CA certificate; give the server (leaf) certificate")
    check_validity(leaf, now, what)
    public_key = check_key_strength(leaf.public_key(), what)
    if not _has_server_auth(leaf):
        raise PkiError(f"{what} lacks the serverAuth extended key usage; TLS clients refuse it")
    host = settings.public_hostname
    if not certificate_matches_host(leaf, host):
        raise PkiError(f"{what} does not name public_hostname {host!r} in its subjectAltName")
    cn, bare = _cn(leaf).lower(), host.strip("[]").lower()
    wildcard_ok = cn.startswith("*.") and bare.partition(".")[2] == cn[2:]
    if cn != bare and not wildcard_ok:
        raise PkiError(
            f"{what} has CN {_cn(leaf)!r}, not {host!r}; the CN must be the FQDN (SEC-06: "
            "some stations check only the CN)"
        )
    key = _read_key(key_path, key_passphrase)
    if not key_matches(leaf, key):
        raise PkiError(f"server key {key_path} does not match {what}")
    for index, issuer in enumerate(chain):
        check_validity(issuer, now, f"server chain certificate {index + 1}")
        check_key_strength(issuer.public_key(), f"server chain certificate {index + 1}")
        _check_issued_by(given[0] if index == 0 else chain[index - 1], issuer, "server chain")
    if leaf.issuer == leaf.subject:
        raise PkiError(f"{what} is self-signed; stations cannot verify it against a root")
    root = chain[-1] if chain and chain[-1].issuer == chain[-1].subject else None
    intermediates = [c for c in chain if c is not root]

    layout = Layout(settings.effective_ca_dir)
    kind = "rsa" if isinstance(public_key, rsa.RSAPublicKey) else "ecdsa"
    issuer_name = IMPORTED_PREFIX + (_slug(_cn(root or leaf)) or "server")
    result = ImportResult()
    # Re-encrypted with the CA passphrase: the operator's key passphrase is not kept anywhere.
    write_private_key(layout.server_key(kind, imported=True), key, ca_passphrase)
    write_public(layout.server_chain(kind, imported=True), pem_of(leaf, *intermediates))
    result.written += [layout.server_chain(kind, imported=True),
                       layout.server_key(kind, imported=True)]
    result.records.append(_record(leaf, issuer_name, CertificateRole.SERVER))
    if root is not None:
        root_path = layout.server_roots_dir / f"{_slug(_cn(root)) or 'root'}.pem"
        write_public(root_path, pem_of(root))
        result.written.append(root_path)
        result.records.append(_record(root, issuer_name, CertificateRole.ROOT))
        result.notes.append(f"stations are offered {_subject(root)} as a CSMS root "
                            f"(GET /pki/csms-root.pem, and station provisioning)")
    else:
        result.notes.append("the chain does not end in a root: make sure stations trust the "
                            "root of this certificate, which ChargeWarden cannot offer them")
    result.notes.append(
        f"the imported {kind} server certificate replaces the generated ones and is NOT renewed "
        f"automatically: it expires on {leaf.not_valid_after_utc:%Y-%m-%d}; import its "
        "successor before then"
    )
    return result


def _read_crl(path: Path) -> x509.CertificateRevocationList:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"CRL {path} does not exist") from None
    except OSError as exc:
        raise PkiError(f"cannot read CRL {path}: {exc.strerror or exc}") from None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise PkiError(f"{path} is not a CRL (PEM or DER)") from None


def _check_crl(crl: x509.CertificateRevocationList, ca: x509.Certificate, path: Path,
               now: datetime) -> None:
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        raise PkiError(f"CRL {path} is not signed by {_subject(ca)}")
    next_update = crl.next_update_utc
    if next_update is not None and next_update < now:
        raise PkiError(
            f"CRL {path} expired on {next_update:%Y-%m-%d %H:%M} UTC (its nextUpdate); "
            "get a current one from the CA"
        )


def import_station_ca(
    settings: Settings,
    *,
    ca_path: Path,
    crl_path: Path | None = None,
    name: str | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Accept station certificates issued by another CA (SEC-09), optionally with its CRL."""
    now = now or datetime.now(UTC)
    certificates = read_certificates(ca_path, "station CA")
    if len(certificates) != 1:
        raise PkiError(
            f"station CA {ca_path} holds {len(certificates)} certificates; give exactly the one "
            "CA that issues the station certificates"
        )
    ca = certificates[0]
    what = f"station CA {ca_path}"
    if not is_ca(ca):
        raise PkiError(f"{what} is not a CA (BasicConstraints CA:FALSE or absent)")
    check_validity(ca, now, what)
    check_key_strength(ca.public_key(), what)
    layout = Layout(settings.effective_ca_dir)
    for existing in [layout.cert(STATION_CA), *layout.imported_station_cas()]:
        if existing.exists() and load_certificates(existing)[0] == ca:
            raise PkiError(f"{what} is already trusted ({existing})")
    label = _slug(name or _cn(ca)) or ca.fingerprint(hashes.SHA256()).hex()[:12]
    target = layout.station_cas_dir / f"{label}.pem"
    if target.exists():
        raise PkiError(f"an imported station CA named {label!r} exists; choose another --name")
    crl = _read_crl(crl_path) if crl_path is not None else None
    if crl is not None and crl_path is not None:
        _check_crl(crl, ca, crl_path, now)
    result = ImportResult()
    write_public(target, pem_of(ca), exclusive=True)
    result.written.append(target)
    if crl is not None:
        write_public(target.with_suffix(".crl"), crl.public_bytes(Encoding.DER))
        result.written.append(target.with_suffix(".crl"))
    result.records.append(_record(ca, IMPORTED_PREFIX + label, CertificateRole.CA))
    result.notes.append(f"station certificates issued by {_subject(ca)} are now accepted "
                        "(the gateway picks this up without a restart)")
    if crl is None:
        result.notes.append("no CRL given: revocations by this CA are not seen unless you "
                            "import its CRL with 'ca import --crl FILE' (or revoke here)")
    return result


def import_crl(settings: Settings, crl_path: Path, now: datetime | None = None) -> ImportResult:
    """Replace the CRL of the imported station CA that signed it."""
    now = now or datetime.now(UTC)
    crl = _read_crl(crl_path)
    layout = Layout(settings.effective_ca_dir)
    for path in layout.imported_station_cas():
        ca = load_certificates(path)[0]
        if ca.subject == crl.issuer:
            _check_crl(crl, ca, crl_path, now)
            write_public(path.with_suffix(".crl"), crl.public_bytes(Encoding.DER))
            return ImportResult(written=[path.with_suffix(".crl")],
                                notes=[f"CRL of {_subject(ca)} updated ({len(list(crl))} "
                                       "revoked certificates)"])
    raise PkiError(
        f"CRL {crl_path} is issued by {crl.issuer.rfc4514_string()}, which is not an imported "
        "station CA (CRLs of our own CAs are generated from the store)"
    )

