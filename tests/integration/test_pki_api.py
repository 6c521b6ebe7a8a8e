"""The public PKI endpoints of the HTTP API: CRLs built fresh from the store, the CSMS root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from chargewarden.api.app import create_api
from chargewarden.api.context import ApiContext
from chargewarden.config import load_settings
from chargewarden.gateway.registry import InMemoryRegistry
from chargewarden.pki.crl import make_crl_provider, make_csms_root_provider
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.provision import provision_station
from chargewarden.store import Store

PASSPHRASE = b"test passphrase for the CA"
PROBLEM = "application/problem+json"


@dataclass
class Client:
    http: httpx.AsyncClient
    pki: Pki
    store: Store


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("api-ca")
    Pki.init(load_settings(None, data_dir=data_dir), PASSPHRASE)
    return data_dir


@pytest.fixture
async def client(store: Store, ca_dir: Path) -> AsyncIterator[Client]:
    settings = load_settings(None, data_dir=ca_dir)
    pki = Pki.load(settings, PASSPHRASE)
    context = ApiContext(
        store=store,
        registry=InMemoryRegistry(),
        crl_provider=make_crl_provider(pki, store),
        csms_root_provider=make_csms_root_provider(settings),
    )
    transport = httpx.ASGITransport(app=create_api(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://cw.test") as http:
        yield Client(http, pki, store)


async def test_crl_endpoint_serves_a_der_crl_without_authentication(client: Client) -> None:
    response = await client.http.get("/pki/crl/cpo-station-ca.crl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.content)
    assert crl.is_signature_valid(client.pki.station_ca.certificate.public_key())  # type: ignore[arg-type]
    assert list(crl) == []


async def test_SEC_14_a_revocation_is_in_the_next_crl_at_once(
    client: Client, tmp_path: Path
) -> None:
    await client.http.get("/pki/crl/cpo-station-ca.crl")  # warm the cache
    provisioned = await provision_station(
        client.pki,
        client.store,
        identity="CP-3",
        cn="SN-3",
        o="ChargeWarden CPO",
        out_dir=tmp_path / "station",
    )
    await client.store.certificates.revoke(
        provisioned.record.serial, "key-compromise", datetime.now(UTC)
    )
    response = await client.http.get("/pki/crl/cpo-station-ca.crl")
    crl = x509.load_der_x509_crl(response.content)
    assert [e.serial_number for e in crl] == [provisioned.certificate.serial_number]


@pytest.mark.parametrize("name", ["firmware-signer", "nope", "Cpo-Root", "..%2Fetc"])
async def test_unknown_ca_is_a_404_problem(client: Client, name: str) -> None:
    response = await client.http.get(f"/pki/crl/{name}.crl")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_csms_root_endpoint_serves_the_root(client: Client) -> None:
    response = await client.http.get("/pki/csms-root.pem")
    assert response.status_code == 200
    assert x509.load_pem_x509_certificates(response.content) == [client.pki.root.certificate]


async def test_without_a_ca_the_endpoints_are_404(store: Store) -> None:
    app = create_api(ApiContext(store=store, registry=InMemoryRegistry()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cw.test"
    ) as http:
        assert (await http.get("/pki/crl/cpo-root.crl")).status_code == 404
        assert (await http.get("/pki/csms-root.pem")).status_code == 404
