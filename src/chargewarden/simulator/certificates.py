"""The simulated station's keys and certificates (SIM-02, SIM-03), sans I/O.

`StationCertificates` holds what a station keeps in its secure storage: the key and certificate
chain it authenticates with (ChargingStationCertificate), a separate V2G key and chain (2.0.1),
the key of a CSR still waiting for its certificate, and (`rootstore`) the installed roots.
It builds CSRs with keys it generates itself (the private key never leaves it: no message, log
line or repr shows it), checks a CertificateSigned chain before using it, and installs, lists
and deletes roots by certificateHashData. It sends nothing; `certhandlers` turns OCPP calls into
these methods. With `StationConfig.state_dir` everything is also kept in files (`statedir`), so
a restarted station keeps its keys and certificates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from chargewarden.pki.hashdata import CertificateHashData, HashAlgorithm, certificate_hash_data
from chargewarden.pki.keys import PrivateKey, key_matches
from chargewarden.rpc.versions import OcppVersion
from chargewarden.simulator.config import StationConfig, TlsMaterialError
from chargewarden.simulator.csr import build_csr, generate_key, private_key_pem, public_key_der
from chargewarden.simulator.rootstore import (
    BAD_CERTIFICATE,
    ROOT_TYPES,
    RootStore,
    RootType,
    load_certificates,
    pem,
)
from chargewarden.simulator.statedir import StateDir

V2G_CHAIN = "V2GCertificateChain"  # GetInstalledCertificateIds (2.0.1): the station's V2G chain


class LeafType(StrEnum):
    """Certificates the station has signed for its own keys (CertificateSigningUseEnumType)."""

    CHARGING_STATION = "ChargingStationCertificate"
    V2G = "V2GCertificate"


class ChainCheck(NamedTuple):
    ok: bool
    reason: str = ""  # why a chain was refused (safe for techInfo: no secret in it)


@dataclass(frozen=True)
class TlsMaterial:
    """What the station's TLS context is built from. `csms_roots_pem` None: the system store;
    b"": no root at all (every CSMS certificate fails)."""

    csms_roots_pem: bytes | None
    client_cert_pem: bytes | None
    client_key_pem: bytes | None = field(repr=False)


@dataclass(frozen=True)
class _Credential:
    chain_pem: bytes
    key_pem: bytes = field(repr=False)


_LEAF_FILES = {LeafType.CHARGING_STATION: "charging-station", LeafType.V2G: "v2g"}

# Web PKI rules, except that OCPP station certificates name the station in the subject CN and
# need no subjectAltName (whitepaper ed.3 §3), as the CSMS checks them. A V2G certificate serves
# ISO 15118 TLS towards the vehicle, so its extended key usage need not be clientAuth.
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()
_STATION_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)
_V2G_POLICY = _STATION_POLICY.may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)


def _name(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = certificate.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if len(values) == 1 else None


class StationCertificates:
    def __init__(self, config: StationConfig) -> None:
        self.config = config
        self.version = config.ocpp_version
        # CpoName / OrganizationName as currently set (the CSMS may change it).
        self.cpo_name = config.cpo_name
        # Bumped whenever what the TLS context is built from changes (client certificate,
        # CSMS roots), so the runner knows to build a new one.
        self.generation = 0
        self._state = StateDir(config.state_dir) if config.state_dir is not None else None
        self.root_store = RootStore(config.root_store_limit, self._state)
        self._pending: dict[LeafType, PrivateKey] = {}
        self._credentials: dict[LeafType, _Credential] = {}
        self._load()

    def __repr__(self) -> str:
        leaves = ", ".join(t.value for t in self._credentials) or "none"
        return f"StationCertificates({self.root_store!r}, certificates: {leaves})"

    # ---- what the station holds ---------------------------------------------------------------

    def roots(self, root_type: RootType | str) -> list[x509.Certificate]:
        """Installed roots of a type (either version's name), oldest first."""
        return self.root_store.of(RootType.parse(str(root_type)))

    def chain(
        self, leaf_type: LeafType | str = LeafType.CHARGING_STATION
    ) -> list[x509.Certificate]:
        """The current certificate of that type followed by its chain; [] if there is none."""
        credential = self._credentials.get(LeafType(leaf_type))
        if credential is None:
            return []
        try:
            return x509.load_pem_x509_certificates(credential.chain_pem)
        except ValueError:
            return []  # bad provisioned material: the TLS context reports it

    @property
    def client_certificate(self) -> x509.Certificate | None:
        """The ChargingStationCertificate the station authenticates with (profile 3)."""
        chain = self.chain(LeafType.CHARGING_STATION)
        return chain[0] if chain else None

    def has_pending(self, leaf_type: LeafType | str = LeafType.CHARGING_STATION) -> bool:
        return LeafType(leaf_type) in self._pending

    def has_csms_root(self) -> bool:
        return bool(self.root_store.of(RootType.CSMS))

    def has_tls_material(self) -> bool:
        return self.has_csms_root() or LeafType.CHARGING_STATION in self._credentials

    def tls_material(self) -> TlsMaterial:
        """For the station's own TLS context only: the one place its private key is read."""
        roots = self.root_store.of(RootType.CSMS)
        if roots:
            roots_pem: bytes | None = pem(roots)
        else:  # none configured: the system store; configured but all deleted: nothing
            roots_pem = None if self.config.csms_root_pem is None else b""
        credential = self._credentials.get(LeafType.CHARGING_STATION)
        if credential is None:
            return TlsMaterial(roots_pem, None, None)
        return TlsMaterial(roots_pem, credential.chain_pem, credential.key_pem)

    # ---- certificate signing (A02) ------------------------------------------------------------

    def build_csr(self, certificate_type: LeafType | str = LeafType.CHARGING_STATION) -> str:
        """A new key pair, kept as the pending key of `certificate_type`; its CSR (PEM) with
        CN = serial number and O = CPO name (or the configured `csr_fault`)."""
        leaf_type = LeafType(certificate_type)
        key = generate_key(self.config.key_type, self.config.csr_fault)
        self._pending[leaf_type] = key
        if self._state is not None:
            self._state.write(f"{_LEAF_FILES[leaf_type]}.pending-key.pem", private_key_pem(key))
        return build_csr(
            key, cn=self.config.serial_number, o=self.cpo_name, fault=self.config.csr_fault
        )

    def discard_pending(self, certificate_type: LeafType | str) -> None:
        leaf_type = LeafType(certificate_type)
        self._pending.pop(leaf_type, None)
        if self._state is not None:
            self._state.remove(f"{_LEAF_FILES[leaf_type]}.pending-key.pem")

    def accept_signed_chain(
        self, chain_pem: str | bytes, certificate_type: LeafType | str, now: datetime
    ) -> ChainCheck:
        """Check a CertificateSigned chain (A02.FR.06) and, if it passes, make it and the
        pending key the station's certificate of that type. A refused chain changes nothing
        (the pending key stays, for a corrected chain)."""
        leaf_type = LeafType(certificate_type)
        now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        key = self._pending.get(leaf_type)
        if key is None:
            return ChainCheck(False, f"no {leaf_type.value} signing request is pending")
        data = chain_pem.encode("ascii", "replace") if isinstance(chain_pem, str) else chain_pem
        try:
            chain = x509.load_pem_x509_certificates(data)
        except ValueError:
            return ChainCheck(False, "certificateChain is not a PEM certificate chain")
        problem = self._check_chain(chain, key, leaf_type, now)
        if problem:
            return ChainCheck(False, problem)
        credential = _Credential(pem(chain), private_key_pem(key))
        self._credentials[leaf_type] = credential
        del self._pending[leaf_type]
        if self._state is not None:
            stem = _LEAF_FILES[leaf_type]
            self._state.write(f"{stem}.key.pem", credential.key_pem)
            self._state.write(f"{stem}.chain.pem", credential.chain_pem)
            self._state.remove(f"{stem}.pending-key.pem")
        if leaf_type is LeafType.CHARGING_STATION:
            self.generation += 1
        return ChainCheck(True)

    def _check_chain(
        self, chain: list[x509.Certificate], key: PrivateKey, leaf_type: LeafType, now: datetime
    ) -> str:
        leaf = chain[0]
        if public_key_der(leaf) != public_key_der(key):
            return "the certificate is not for the key of the station's signing request"
        if now < leaf.not_valid_before_utc:
            return f"the certificate is not valid yet (notBefore {leaf.not_valid_before_utc})"
        if now > leaf.not_valid_after_utc:
            return f"the certificate has expired (notAfter {leaf.not_valid_after_utc})"
        cn = _name(leaf, NameOID.COMMON_NAME)
        if cn != self.config.serial_number:
            return f"CN {cn!r} is not the station's serial number {self.config.serial_number!r}"
        o = _name(leaf, NameOID.ORGANIZATION_NAME)
        if o != (self.cpo_name or None):
            return f"O {o!r} is not the CPO name {self.cpo_name!r}"
        anchors = self.root_store.of(RootType.CSMS)
        if leaf_type is LeafType.V2G:
            anchors += self.root_store.of(RootType.V2G)
        if not anchors:
            return "no CSMS root certificate is installed to verify the chain against"
        verifier = (
            PolicyBuilder()
            .store(Store(anchors))
            .time(now)
            .extension_policies(
                ca_policy=_CA_POLICY,
                ee_policy=_V2G_POLICY if leaf_type is LeafType.V2G else _STATION_POLICY,
            )
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, chain[1:])
        except VerificationError as exc:
            return f"the chain does not verify against an installed root: {str(exc)[:150]}"
        return ""

    # ---- root store (M03, M04, M05) -----------------------------------------------------------

    def install(
        self, root_type: RootType | str, certificate: str | bytes, now: datetime | None = None
    ) -> str:
        """InstallCertificate: "Accepted" | "Rejected" | "Failed" (see `RootStore.install`)."""
        kind = RootType.parse(str(root_type))
        data = (
            certificate.encode("ascii", "replace") if isinstance(certificate, str) else certificate
        )
        status = self.root_store.install(kind, data, now)
        if status == "Accepted" and kind is RootType.CSMS:
            self.generation += 1
        return status

    def delete(self, hash_data: CertificateHashData) -> str:
        """DeleteCertificate: "Accepted", "NotFound", or "Failed" for the station's own
        ChargingStationCertificate (M04.FR.05). Matched in the request's hash algorithm."""
        own = self.client_certificate
        if own is not None and self._matches(own, hash_data):
            return "Failed"
        for kind, certificate in self.root_store:
            if self._matches(certificate, hash_data):
                self.root_store.remove(kind, certificate)
                if kind is RootType.CSMS:
                    self.generation += 1
                return "Accepted"
        v2g = self.chain(LeafType.V2G)
        if v2g and self._matches(v2g[0], hash_data):
            del self._credentials[LeafType.V2G]
            if self._state is not None:
                for suffix in ("key.pem", "chain.pem"):
                    self._state.remove(f"{_LEAF_FILES[LeafType.V2G]}.{suffix}")
            return "Accepted"
        return "NotFound"

    def installed(
        self, types: list[str] | None = None, algorithm: HashAlgorithm | str | None = None
    ) -> list[tuple[str, CertificateHashData]]:
        """(type, hash data) of every installed certificate of `types` (either version's names,
        plus V2GCertificateChain for the station's V2G certificate); None → every type of the
        version. Hash data in `algorithm`, by default the configured one; a root's is over
        itself (self-issued)."""
        chosen = self.config.hash_algorithm if algorithm is None else HashAlgorithm(algorithm)
        if types is None:
            types = [t.ocpp_name(self.version) for t in ROOT_TYPES[self.version]]
            if self.version is OcppVersion.V201:
                types.append(V2G_CHAIN)
        result: list[tuple[str, CertificateHashData]] = []
        for name in dict.fromkeys(types):
            if name == V2G_CHAIN:
                chain = self.chain(LeafType.V2G)
                data = self._hash(chain[0], chosen) if chain else None
                if data is not None:
                    result.append((V2G_CHAIN, data))
                continue
            kind = RootType.parse(name)
            for certificate in self.root_store.of(kind):
                data = self._hash(certificate, chosen)
                if data is not None:
                    result.append((kind.ocpp_name(self.version), data))
        return result

    def v2g_child_hash_data(
        self, algorithm: HashAlgorithm | None = None
    ) -> list[CertificateHashData]:
        """Hash data of the sub-CA certificates in the station's V2G chain (at most 4)."""
        chosen = self.config.hash_algorithm if algorithm is None else algorithm
        children = [c for c in self.chain(LeafType.V2G)[1:] if c.subject != c.issuer]
        found = [self._hash(c, chosen) for c in children]
        return [d for d in found if d is not None][:4]

    def _matches(self, certificate: x509.Certificate, wanted: CertificateHashData) -> bool:
        data = self._hash(certificate, wanted.hash_algorithm)
        return data is not None and data.same_certificate(wanted)

    def _hash(
        self, certificate: x509.Certificate, algorithm: HashAlgorithm
    ) -> CertificateHashData | None:
        """Hash data, or None when the issuer's certificate is not known to the station."""
        if certificate.subject == certificate.issuer:
            return certificate_hash_data(certificate, algorithm)
        issuer = self._issuer_of(certificate)
        return None if issuer is None else certificate_hash_data(certificate, algorithm, issuer)

    def _issuer_of(self, certificate: x509.Certificate) -> x509.Certificate | None:
        candidates = [c for _, c in self.root_store]
        for leaf_type in self._credentials:
            candidates += self.chain(leaf_type)
        for candidate in candidates:
            if candidate.subject != certificate.issuer:
                continue
            try:
                certificate.verify_directly_issued_by(candidate)
            except BAD_CERTIFICATE:
                continue
            return candidate
        return None

    # ---- loading --------------------------------------------------------------------------------

    def _load(self) -> None:
        """State directory first, then the provisioned material: a client certificate and key
        in the state directory take precedence over `client_cert_pem`/`client_key_pem`; the
        configured `csms_root_pem` is (re-)installed at every start, the factory root."""
        if self._state is not None:
            self._load_state(self._state)
        cfg = self.config
        if LeafType.CHARGING_STATION not in self._credentials and cfg.client_cert_pem is not None:
            assert cfg.client_key_pem is not None  # StationConfig checks they go together
            # Kept as given; the TLS context checks and reports it by its config field.
            self._credentials[LeafType.CHARGING_STATION] = _Credential(
                cfg.client_cert_pem, cfg.client_key_pem
            )
        if cfg.csms_root_pem is not None:
            try:
                factory = x509.load_pem_x509_certificates(cfg.csms_root_pem)
            except ValueError:
                raise TlsMaterialError("csms_root_pem", "no PEM certificate in it") from None
            self.root_store.provision(RootType.CSMS, factory)
        if cfg.manufacturer_root_pem is not None:  # the firmware signers' root (SIM-05)
            try:
                maker = x509.load_pem_x509_certificates(cfg.manufacturer_root_pem)
            except ValueError:
                raise TlsMaterialError("manufacturer_root_pem", "no PEM certificate") from None
            self.root_store.provision(RootType.MANUFACTURER, maker)

    def _load_state(self, state: StateDir) -> None:
        for leaf_type, stem in _LEAF_FILES.items():
            pending = state.read(f"{stem}.pending-key.pem")
            if pending is not None:
                self._pending[leaf_type] = _load_key(state, f"{stem}.pending-key.pem", pending)
            chain_pem, key_pem = state.read(f"{stem}.chain.pem"), state.read(f"{stem}.key.pem")
            if chain_pem is None or key_pem is None:
                continue
            chain = load_certificates(state, f"{stem}.chain.pem", chain_pem)
            if not key_matches(chain[0], _load_key(state, f"{stem}.key.pem", key_pem)):
                problem = f"{state.path / stem}.key.pem does not belong to its chain"
                raise TlsMaterialError("state_dir", problem)
            self._credentials[leaf_type] = _Credential(chain_pem, key_pem)


def _load_key(state: StateDir, name: str, data: bytes) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise TlsMaterialError("state_dir", f"{state.path / name}: no usable key") from None
    if not isinstance(key, PrivateKey):
        raise TlsMaterialError("state_dir", f"{state.path / name}: not an RSA or EC key")
    return key
