"""The gauges read from the store at scrape time (certificate expiry, jobs), on SQLite and
PostgreSQL, through the same refresh and render the /metrics route uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from prometheus_client.parser import text_string_to_metric_families

from chargewarden.gateway.registry import InMemoryRegistry
from chargewarden.metrics import CsmsMetrics
from chargewarden.store import Store
from chargewarden.store.job_records import JobKind, JobRecord, JobState
from chargewarden.store.records import CertificateRecord, CertificateRole

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
_serials = count(1)


async def add_certificate(
    store: Store,
    station: str | None,
    days_left: float,
    *,
    issuer: str = "cpo-station-ca",
    role: CertificateRole = CertificateRole.STATION,
    revoked: bool = False,
) -> None:
    n = next(_serials)
    await store.certificates.add(
        CertificateRecord(
            serial=f"{n:X}",
            issuer_ca=issuer,
            role=role,
            subject_cn=station,
            subject_o="CPO",
            fingerprint_sha256=f"{n:064x}",
            not_before=NOW - timedelta(days=400),
            not_after=NOW + timedelta(days=days_left),
            pem="-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
            key_type="EC P-256",
            station_identity=station,
            revoked_at=NOW - timedelta(days=1) if revoked else None,
            revocation_reason="superseded" if revoked else None,
        )
    )


async def gauges(store: Store, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    metrics = CsmsMetrics(InMemoryRegistry())
    await metrics.refresh(store, NOW)
    text, _ = metrics.render()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text.decode())
        if family.name == name
        for sample in family.samples
    }


async def test_station_certificates_by_days_to_expiry_count_each_stations_newest(
    store: Store,
) -> None:
    await add_certificate(store, "CP-EXPIRED", -3)
    await add_certificate(store, "CP-RENEWED", 2)  # superseded by the next one, not revoked
    await add_certificate(store, "CP-RENEWED", 5)
    await add_certificate(store, "CP-SOON", 20)
    await add_certificate(store, "CP-REVOKED", 40, revoked=True)  # revoked: not counted
    await add_certificate(store, "CP-REVOKED", 60)
    await add_certificate(store, "CP-LATER", 200)
    await add_certificate(store, "CP-LATER", 10, issuer="cpo-v2g-ca")  # another CA: counts
    await add_certificate(store, None, 1, role=CertificateRole.SERVER)  # not a station's

    by_bucket = {labels[0][1]: value for labels, value in (
        await gauges(store, "chargewarden_station_certificates")
    ).items()}
    assert by_bucket == {"expired": 1, "lt7d": 1, "lt30d": 2, "lt90d": 1, "ge90d": 1}


async def test_station_certificates_gauge_is_zero_without_certificates(store: Store) -> None:
    values = await gauges(store, "chargewarden_station_certificates")
    assert len(values) == 5 and not any(values.values())


async def test_jobs_by_kind_and_state(store: Store) -> None:
    def job(kind: JobKind, state: JobState) -> JobRecord:
        return JobRecord(kind=kind, state=state, step="prepare", actor="t", station_identity="CP")

    await store.jobs.add_many(
        [
            job(JobKind.ROTATE_CREDENTIALS, JobState.PENDING),
            job(JobKind.ROTATE_CREDENTIALS, JobState.PENDING),
            job(JobKind.ROTATE_CREDENTIALS, JobState.FAILED),
            job(JobKind.UPGRADE_PROFILE, JobState.WAITING),
        ]
    )
    values = await gauges(store, "chargewarden_jobs")
    assert values[(("kind", "rotate-password"), ("state", "pending"))] == 2
    assert values[(("kind", "rotate-password"), ("state", "failed"))] == 1
    assert values[(("kind", "upgrade-profile"), ("state", "waiting-for-station"))] == 1
    # Every kind and state is present, the rest at zero.
    assert len(values) == len(JobKind) * len(JobState)
    assert sum(values.values()) == 4
