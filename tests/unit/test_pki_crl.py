"""CRLs of our CAs: the revoked serials, signed by the CA, valid for a week."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from chargewarden.config import load_settings
from chargewarden.pki import PkiError
from chargewarden.pki.crl import build_crl, normalize_reason
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.issue import issue_station_certificate
from chargewarden.pki.keys import generate_ec
from chargewarden.pki.recording import record_for
from chargewarden.store.records import CertificateRecord, CertificateRole

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    settings = load_settings(None, data_dir=tmp_path_factory.mktemp("crl"))
    return Pki.init(settings, b"test passphrase for the CA", now=NOW)


def station_record(pki: Pki, cn: str, *, revoked: str | None) -> CertificateRecord:
    certificate = issue_station_certificate(
        pki, generate_ec(ec.SECP256R1()).public_key(), serial_number_cn=cn,
        cpo_name="ChargeWarden CPO", lifetime_days=30, now=NOW,
    )
    record = record_for(certificate, issuer_ca="cpo-station-ca", role=CertificateRole.STATION,
                        station_identity=cn)
    if revoked is None:
        return record
    return replace(record, revoked_at=NOW + timedelta(hours=1), revocation_reason=revoked)


def test_crl_lists_the_revoked_serials_and_verifies_against_the_ca(pki: Pki) -> None:
    compromised = station_record(pki, "SN-1", revoked="key-compromise")
    retired = station_record(pki, "SN-2", revoked="unspecified")
    valid = station_record(pki, "SN-3", revoked=None)
    der = build_crl(pki, "cpo-station-ca", [compromised, retired, valid], NOW + timedelta(hours=2))
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(pki.station_ca.certificate.public_key())  # type: ignore[arg-type]
    assert crl.issuer == pki.station_ca.certificate.subject
    assert crl.next_update_utc == NOW + timedelta(hours=2) + timedelta(days=7)
    entries = {format(e.serial_number, "X"): e for e in crl}
    assert set(entries) == {compromised.serial, retired.serial}
    reason = entries[compromised.serial].extensions.get_extension_for_class(x509.CRLReason)
    assert reason.value.reason is x509.ReasonFlags.key_compromise
    # RFC 5280: "unspecified" is expressed by leaving the reason code out.
    assert len(entries[retired.serial].extensions) == 0
    assert entries[compromised.serial].revocation_date_utc == NOW + timedelta(hours=1)


def test_crl_leaves_out_certificates_of_other_issuers(pki: Pki) -> None:
    foreign = replace(station_record(pki, "SN-4", revoked="superseded"), issuer_ca="cpo-root")
    crl = x509.load_der_x509_crl(build_crl(pki, "cpo-station-ca", [foreign], NOW))
    assert list(crl) == []


def test_empty_crl_of_the_root_verifies(pki: Pki) -> None:
    crl = x509.load_der_x509_crl(build_crl(pki, "cpo-root", [], NOW))
    assert crl.is_signature_valid(pki.root.certificate.public_key())  # type: ignore[arg-type]


def test_the_firmware_signer_publishes_no_crl(pki: Pki) -> None:
    with pytest.raises(PkiError, match="does not publish a CRL"):
        build_crl(pki, "firmware-signer", [], NOW)


@pytest.mark.parametrize(
    ("text", "code"),
    [("key-compromise", "key-compromise"), ("keyCompromise", "key-compromise"),
     ("KEY_COMPROMISE", "key-compromise"), ("cACompromise", "ca-compromise"),
     ("superseded", "superseded")],
)
def test_reasons_are_accepted_in_common_spellings(text: str, code: str) -> None:
    assert normalize_reason(text) == code


def test_certificate_hold_is_not_a_reason_here() -> None:
    with pytest.raises(PkiError, match="unknown revocation reason"):
        normalize_reason("certificateHold")
