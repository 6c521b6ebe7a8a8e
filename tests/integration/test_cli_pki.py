"""`chargewarden ca`, `cert`, `station cert` and `station set-profile`, run as the console script.

Every mistake is one `error:` line on stderr, never a traceback, and never shows a passphrase.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import ssl
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder
from cryptography.x509.verification import Store as TrustStore

from chargewarden.config import load_settings
from chargewarden.pki.crl import REASONS
from chargewarden.pki.hierarchy import Pki, pem_of
from chargewarden.pki.issue import issue_ca, name
from chargewarden.pki.keys import generate_ec, write_private_key
from chargewarden.pki.provision import provision_station
from chargewarden.rpc.versions import OcppVersion
from chargewarden.stations import NewStation, register_station
from chargewarden.store import Store, sqlite_url
from chargewarden.store.records import AuditRecord, CertificateRecord

CLI = Path(sys.executable).parent / "chargewarden"
PASSPHRASE_ENV = "CHARGEWARDEN_CA_PASSPHRASE"
T = TypeVar("T")


def cli(
    command: str, *extra: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("CHARGEWARDEN_")}
    environment.update({"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"})
    environment.update(env or {})
    argv = [str(CLI), *shlex.split(command), *extra, "--data-dir", str(data_dir)]
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        argv, capture_output=True, text=True, env=environment, timeout=60, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode not in (0, 70), result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def with_store(data_dir: Path, action: Callable[[Store], Awaitable[T]]) -> T:
    async def _run() -> T:
        async with await Store.open(sqlite_url(data_dir / "chargewarden.db")) as store:
            return await action(store)

    return asyncio.run(_run())


def audit(data_dir: Path, target: str) -> list[AuditRecord]:
    return with_store(data_dir, lambda store: store.audit.list(target=target))


def certificates(data_dir: Path, station: str | None = None) -> list[CertificateRecord]:
    return with_store(data_dir, lambda store: store.certificates.list(station=station))


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`ca init` once (RSA keys take a moment); tests work on copies. Returns (dir, stdout)."""
    data_dir = tmp_path_factory.mktemp("ca")
    return data_dir, ok(cli("ca init", data_dir=data_dir))


@pytest.fixture
def data_dir(initialised: tuple[Path, str], tmp_path: Path) -> Path:
    shutil.copytree(initialised[0], tmp_path / "data")
    return tmp_path / "data"


def passphrase(data_dir: Path) -> bytes:
    return (data_dir / "pki" / "passphrase").read_bytes().strip()


def add_station(data_dir: Path, identity: str, profile: int, serial: str | None = None) -> None:
    """Setup through the library: the CLI's `station add` has tests of its own."""
    new = NewStation(
        identity=identity,
        ocpp_version=OcppVersion.V201,
        security_profile=profile,
        generate_secret=profile in (1, 2),
        serial_number=serial,
    )
    with_store(data_dir, lambda store: register_station(store, new, actor="test"))


def provision(data_dir: Path, identity: str, out: Path) -> CertificateRecord:
    pki = Pki.load(load_settings(None, data_dir=data_dir), passphrase(data_dir))

    async def action(store: Store) -> CertificateRecord:
        done = await provision_station(
            pki, store, identity=identity, cn=identity, o="ChargeWarden CPO", out_dir=out
        )
        return done.record

    return with_store(data_dir, action)


# --- ca init / show ------------------------------------------------------------------------


def test_ca_init_prints_the_hierarchy_and_the_passphrase_source(
    initialised: tuple[Path, str],
) -> None:
    data_dir, out = initialised
    for part in (
        "cpo-root",
        "cpo-server-ca",
        "cpo-station-ca",
        "manufacturer-root",
        "firmware-signer",
        "server/rsa",
        "server/ecdsa",
    ):
        assert part in out
    assert "passphrase from file" in out and "generated once" in out
    assert passphrase(data_dir).decode() not in out
    root = x509.load_pem_x509_certificate((data_dir / "pki" / "cpo-root" / "cert.pem").read_bytes())
    assert root.fingerprint(hashes.SHA256()).hex() in out
    recorded = sorted(r.role for r in certificates(data_dir))
    assert recorded == ["ca", "ca", "ca", "firmware", "root", "root", "server", "server"]
    assert audit(data_dir, str(data_dir / "pki"))[0].action == "ca.init"


def test_ca_init_refuses_to_overwrite_and_show_reports_a_healthy_ca(data_dir: Path) -> None:
    one_line_error(cli("ca init", data_dir=data_dir), "a CA already exists", "ca show")
    out = ok(cli("ca show", data_dir=data_dir))
    assert "check: OK" in out and "cpo-station-ca" in out and "days left" in out


def test_ca_show_without_a_ca(tmp_path: Path) -> None:
    one_line_error(cli("ca show", data_dir=tmp_path), "no CA in", "ca init")


def test_ca_show_lists_problems_and_fails(data_dir: Path) -> None:
    write_private_key(
        data_dir / "pki" / "cpo-server-ca" / "key.pem",
        generate_ec(ec.SECP384R1()),
        passphrase(data_dir),
    )
    result = cli("ca show", data_dir=data_dir)
    one_line_error(result, "1 problem(s)")
    assert "problem: cpo-server-ca:" in result.stdout and "does not match" in result.stdout


def test_wrong_passphrase_is_one_line_and_never_echoed(data_dir: Path) -> None:
    wrong = "this is not the passphrase"
    result = cli("ca show", data_dir=data_dir, env={PASSPHRASE_ENV: wrong})
    one_line_error(result, "wrong passphrase")
    assert wrong not in result.stdout + result.stderr


# --- ca import -----------------------------------------------------------------------------


def test_ca_import_refuses_broken_material_in_one_line(data_dir: Path, tmp_path: Path) -> None:
    station_ca = data_dir / "pki" / "cpo-station-ca" / "cert.pem"
    key = data_dir / "pki" / "cpo-station-ca" / "key.pem"
    one_line_error(cli("ca import", data_dir=data_dir), "nothing to import")
    one_line_error(
        cli("ca import --root", str(station_ca), data_dir=data_dir),
        "replacing the CPO root is not supported",
    )
    one_line_error(
        cli(
            "ca import --server-cert", str(station_ca), "--server-key", str(key), data_dir=data_dir
        ),
        "is a CA certificate",
    )
    one_line_error(
        cli("ca import --station-ca", str(key), data_dir=data_dir), "is not a certificate"
    )


def test_ca_import_of_a_station_ca_is_recorded_and_listed(data_dir: Path, tmp_path: Path) -> None:
    key = generate_ec(ec.SECP256R1())
    now = datetime.now(UTC)
    foreign = issue_ca(
        name("Foreign Station CA", "Other"),
        key.public_key(),
        key,
        issuer_cert=None,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
        path_length=0,
    )
    path = tmp_path / "foreign.pem"
    path.write_bytes(pem_of(foreign))
    out = ok(cli("ca import --station-ca", str(path), data_dir=data_dir))
    assert "now accepted" in out and "no CRL given" in out
    assert (data_dir / "pki" / "imported" / "station-cas" / "foreign-station-ca.pem").exists()
    listed = ok(cli("cert list --role ca", data_dir=data_dir))
    assert "imported:foreign-station-ca" in listed
    assert audit(data_dir, "station-ca")[0].action == "ca.import"


# --- station cert ----------------------------------------------------------------------------


def test_station_cert_provisions_a_profile_3_station(data_dir: Path, tmp_path: Path) -> None:
    add_station(data_dir, "CP-3", 3, serial="SN-0003")
    out_dir = tmp_path / "factory"
    out = ok(cli("station cert CP-3 --out", str(out_dir), data_dir=data_dir))
    assert "CN=SN-0003" in out and "O=ChargeWarden CPO" in out
    key_file = out_dir / "station-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    chain = x509.load_pem_x509_certificates((out_dir / "station-chain.pem").read_bytes())
    roots = x509.load_pem_x509_certificates((out_dir / "csms-root.pem").read_bytes())
    # The chain verifies to the CSMS root as a TLS client certificate (EKU clientAuth). Station
    # certificates name the station in the CN, not in a SAN, which the Web PKI defaults demand.
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    verifier = (
        PolicyBuilder()
        .store(TrustStore(roots))
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        .build_client_verifier()
    )
    assert verifier.verify(chain[0], chain[1:]).chain[-1] == roots[0]
    # ... and the files load into a TLS client as they are (the key is plain PKCS#8).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_cert_chain(out_dir / "station-chain.pem", key_file)
    context.load_verify_locations(out_dir / "csms-root.pem")
    (record,) = certificates(data_dir, station="CP-3")
    assert record.serial == format(chain[0].serial_number, "X")
    assert audit(data_dir, "CP-3")[0].action == "station.cert.provision"
    one_line_error(
        cli("station cert CP-3 --out", str(out_dir), data_dir=data_dir), "already exists"
    )


def test_station_cert_refuses_unknown_and_non_profile_3_stations(
    data_dir: Path, tmp_path: Path
) -> None:
    one_line_error(
        cli("station cert NOPE --out", str(tmp_path / "o"), data_dir=data_dir), "no station 'NOPE'"
    )
    add_station(data_dir, "CP-1", 1)
    one_line_error(
        cli("station cert CP-1 --out", str(tmp_path / "o"), data_dir=data_dir),
        "security profile 1",
        "--force",
    )
    ok(cli("station cert CP-1 --force --days 7 --out", str(tmp_path / "o"), data_dir=data_dir))


# --- cert list / revoke -------------------------------------------------------------------


def test_cert_list_and_revoke_by_serial_and_by_station(data_dir: Path, tmp_path: Path) -> None:
    add_station(data_dir, "CP-3", 3)
    first = provision(data_dir, "CP-3", tmp_path / "a")
    second = provision(data_dir, "CP-3", tmp_path / "b")
    listed = ok(cli("cert list --station CP-3 --expiring 800", data_dir=data_dir))
    assert first.serial in listed and second.serial in listed

    revoked = ok(
        cli(f"cert revoke {first.serial.lower()} --reason key-compromise", data_dir=data_dir)
    )
    assert f"revoked {first.serial}" in revoked
    again = ok(cli(f"cert revoke {first.serial} --reason superseded", data_dir=data_dir))
    assert "already revoked" in again
    by_station = ok(
        cli("cert revoke --station CP-3 --reason cessation-of-operation", data_dir=data_dir)
    )
    assert f"revoked {second.serial}" in by_station and first.serial not in by_station
    assert [a.action for a in audit(data_dir, "CP-3")].count("cert.revoke") == 2
    crl = x509.load_der_x509_crl((data_dir / "pki" / "crl" / "cpo-station-ca.crl").read_bytes())
    assert {format(e.serial_number, "X") for e in crl} == {first.serial, second.serial}
    listed = ok(cli("cert list --station CP-3", data_dir=data_dir))
    assert "key-compromise" in listed and "cessation-of-operation" in listed


def test_cert_revoke_mistakes_are_one_line(data_dir: Path) -> None:
    one_line_error(cli("cert revoke --reason superseded", data_dir=data_dir), "either a SERIAL")
    one_line_error(
        cli("cert revoke ABCDEF --reason superseded", data_dir=data_dir),
        "no certificate with serial ABCDEF",
    )
    root = with_store(data_dir, lambda s: s.certificates.list(role="root"))[0]
    one_line_error(
        cli(f"cert revoke {root.serial} --reason superseded", data_dir=data_dir),
        "root certificate cannot be revoked",
    )
    assert set(REASONS) >= {"key-compromise", "superseded"}


def test_revoking_our_server_certificate_replaces_it(data_dir: Path) -> None:
    settings = load_settings(None, data_dir=data_dir)
    before = Pki.load(settings, passphrase(data_dir)).servers["ecdsa"].certificate
    out = ok(
        cli(f"cert revoke {before.serial_number:X} --reason key-compromise", data_dir=data_dir)
    )
    assert "issued a new ecdsa server certificate" in out
    after = Pki.load(settings, passphrase(data_dir)).servers["ecdsa"].certificate
    assert after != before
    fingerprint = after.fingerprint(hashes.SHA256()).hex()
    assert with_store(data_dir, lambda s: s.certificates.find_by_fingerprint(fingerprint))


# --- station set-profile (UPG-03) ----------------------------------------------------------


def test_UPG_03_set_profile_raises_and_refuses_to_lower(data_dir: Path) -> None:
    add_station(data_dir, "CP-2", 1)
    assert "1 -> 2" in ok(cli("station set-profile CP-2 2", data_dir=data_dir))
    one_line_error(cli("station set-profile CP-2 1", data_dir=data_dir), "--downgrade --reason")
    one_line_error(
        cli("station set-profile CP-2 1 --downgrade --reason test", data_dir=data_dir),
        "only a downgrade from profile 3 to 2",
    )
    one_line_error(
        cli("station set-profile CP-2 3 --downgrade", data_dir=data_dir), "raises the profile"
    )
    assert "station cert CP-2" in ok(cli("station set-profile CP-2 3", data_dir=data_dir))
    one_line_error(
        cli("station set-profile CP-2 2 --downgrade", data_dir=data_dir), "needs --reason"
    )
    actions = [a.action for a in audit(data_dir, "CP-2")]
    assert actions.count("station.profile.raise") == 2
    assert "station.profile.downgrade" not in actions


def test_UPG_03_downgrade_3_to_2_is_audited_with_its_reason(data_dir: Path) -> None:
    add_station(data_dir, "CP-3", 3)
    out = ok(
        cli(
            "station set-profile CP-3 2 --downgrade --reason",
            "charger firmware bug #12",
            data_dir=data_dir,
        )
    )
    assert "3 -> 2" in out and "no Basic-auth credential" in out
    entry = audit(data_dir, "CP-3")[0]
    assert entry.action == "station.profile.downgrade"
    assert entry.details == {"from": 3, "to": 2, "reason": "charger firmware bug #12"}
    station = with_store(data_dir, lambda s: s.stations.get("CP-3"))
    assert station is not None and station.security_profile == 2
