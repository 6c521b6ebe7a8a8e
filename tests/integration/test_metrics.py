"""/metrics, /healthz and /readyz on a real CSMS: stations connect over real sockets and the
scrape, read with Prometheus's own text parser, shows what happened."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Register
from prometheus_client.parser import text_string_to_metric_families
from tlskit import client_context, foreign_ca, station_certificate, tls_settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from wsclient import BOOT_16, BOOT_201, basic, call, open_station

from chargewarden.api.operators import create_operator
from chargewarden.app import RunningCsms, start_csms
from chargewarden.config import load_settings
from chargewarden.pki.material import csms_root_pem
from chargewarden.rpc.versions import OcppVersion
from chargewarden.stations import NewStation, register_station
from chargewarden.store.records import OperatorRole

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TLS_AUTH_KEY = "9F3A61C2D4E5F60718293A4B5C6D7E8F90A1B2C3"


@dataclass
class Scraper:
    csms: RunningCsms
    client: httpx.AsyncClient
    token: str

    async def text(self) -> str:
        response = await self.client.get(
            "/metrics", headers={"Authorization": f"Bearer {self.token}"}
        )
        assert response.status_code == 200, response.text
        return response.text

    async def samples(self) -> Samples:
        return parse(await self.text())

    async def value(self, name: str, **labels: str) -> float:
        return (await self.samples()).get(key(name, labels), 0.0)

    async def until(self, name: str, expected: float, **labels: str) -> None:
        """Wait for a value that the CSMS reaches after the client has moved on (a closed
        connection leaves the registry when its handler ends)."""
        for _ in range(250):
            if await self.value(name, **labels) == expected:
                return
            await asyncio.sleep(0.02)
        assert await self.value(name, **labels) == expected


def key(name: str, labels: dict[str, str]) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def parse(text: str) -> Samples:
    return {
        key(sample.name, sample.labels): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scraper_for(running: RunningCsms) -> AsyncIterator[Scraper]:
    _, token = await create_operator(running.store, "prometheus", OperatorRole.VIEWER, actor="t")
    assert running.api_url is not None
    async with httpx.AsyncClient(base_url=running.api_url, timeout=10) as client:
        yield Scraper(running, client, token)


@pytest.fixture
async def api_csms(csms_settings: dict[str, Any]) -> AsyncIterator[RunningCsms]:
    """The conftest CSMS (plain ws, profiles 0 and 1), with its HTTP API."""
    settings = load_settings(None, **csms_settings).model_copy(update={"wss_port": None})
    running = await start_csms(settings, with_api=True)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def scraper(api_csms: RunningCsms) -> AsyncIterator[Scraper]:
    async for value in scraper_for(api_csms):
        yield value


@pytest.fixture
def register(api_csms: RunningCsms) -> Register:
    async def _register(
        identity: str,
        version: OcppVersion = OcppVersion.V16,
        profile: int = 1,
        *,
        password: str | None = None,
    ) -> str | None:
        _, secret = await register_station(
            api_csms.store,
            NewStation(
                identity=identity,
                ocpp_version=version,
                security_profile=profile,
                auth_key_hex=None,
                password=password,
                generate_secret=profile == 1 and password is None,
                serial_number=None,
                cpo_name=None,
                strict_password=False,
            ),
            actor="test",
        )
        return secret or password

    return _register


async def refused_status(csms: RunningCsms, identity: str, authorization: str | None) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with open_station(csms, identity, authorization):
            pass
    return info.value.response.status_code


ADMISSIONS = "chargewarden_admissions_total"


# ---- authentication and probes --------------------------------------------------------------


async def test_metrics_require_an_operator_token(scraper: Scraper) -> None:
    assert (await scraper.client.get("/metrics")).status_code == 401
    wrong = {"Authorization": "Bearer cw_nope.not-a-token"}
    assert (await scraper.client.get("/metrics", headers=wrong)).status_code == 401
    response = await scraper.client.get(
        "/metrics", headers={"Authorization": f"Bearer {scraper.token}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE chargewarden_admissions_total counter" in response.text


async def test_metrics_speak_openmetrics_when_asked(scraper: Scraper) -> None:
    response = await scraper.client.get(
        "/metrics",
        headers={
            "Authorization": f"Bearer {scraper.token}",
            "Accept": "application/openmetrics-text; version=1.0.0",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


async def test_healthz_and_readyz_need_no_token(scraper: Scraper) -> None:
    health = await scraper.client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await scraper.client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_readyz_is_503_when_the_store_is_closed(scraper: Scraper) -> None:
    await scraper.csms.store.close()
    response = await scraper.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body == {"status": "unavailable", "reason": "the store does not answer"}
    # A short reason for the probe; no path, URL or driver text.
    assert str(scraper.csms.settings.data_dir) not in response.text
    assert "sqlite" not in response.text.lower()
    # Liveness is not readiness: the process itself still answers.
    assert (await scraper.client.get("/healthz")).status_code == 200


async def test_readyz_is_503_when_the_station_listeners_are_gone(scraper: Scraper) -> None:
    await scraper.csms.gateway.stop()
    response = await scraper.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "station listeners are not bound"


# ---- admissions, connections, messages -------------------------------------------------------


async def test_metrics_count_admissions_and_refusals(scraper: Scraper, register: Register) -> None:
    csms = scraper.csms
    key_hex = await register("CP-ADMIT")
    assert key_hex is not None
    before = await scraper.samples()

    async with open_station(csms, "CP-ADMIT", basic("CP-ADMIT", bytes.fromhex(key_hex))):
        pass
    assert await refused_status(csms, "CP-ADMIT", basic("CP-ADMIT", b"wrong-password-bytes")) == 401
    assert await refused_status(csms, "CP-NOBODY", basic("CP-NOBODY", b"x" * 20)) == 404

    after = await scraper.samples()

    def delta(**labels: str) -> float:
        k = key(ADMISSIONS, labels)
        return after.get(k, 0.0) - before.get(k, 0.0)

    assert delta(outcome="admitted", reason="profile1") == 1
    assert delta(outcome="refused", reason="InvalidCredentials") == 1
    assert delta(outcome="refused", reason="UnknownStation") == 1
    # Nothing else moved.
    moved = {k for k in after if k[0] == ADMISSIONS and after[k] != before.get(k, 0.0)}
    assert len(moved) == 3


async def test_connections_gauge_by_profile_and_version(
    scraper: Scraper, register: Register
) -> None:
    csms = scraper.csms
    key_16 = await register("CP-16")
    await register("CS-0", OcppVersion.V201, profile=0)
    assert key_16 is not None
    gauge = "chargewarden_connections"
    assert await scraper.value(gauge, security_profile="1", ocpp_version="1.6") == 0

    async with (
        open_station(csms, "CP-16", basic("CP-16", bytes.fromhex(key_16))),
        open_station(csms, "CS-0", None, ("ocpp2.0.1",)),
    ):
        samples = await scraper.samples()
        assert samples[key(gauge, {"security_profile": "1", "ocpp_version": "1.6"})] == 1
        assert samples[key(gauge, {"security_profile": "0", "ocpp_version": "2.0.1"})] == 1
        others = [
            v for (name, labels), v in samples.items()
            if name == gauge
            and labels not in (
                frozenset({("security_profile", "1"), ("ocpp_version", "1.6")}),
                frozenset({("security_profile", "0"), ("ocpp_version", "2.0.1")}),
            )
        ]
        assert others and not any(others)  # every other combination is there, at zero

    await scraper.until(gauge, 0, security_profile="1", ocpp_version="1.6")
    await scraper.until(gauge, 0, security_profile="0", ocpp_version="2.0.1")


async def test_heartbeat_is_counted_by_action_and_outcome(
    scraper: Scraper, register: Register
) -> None:
    csms = scraper.csms
    key_hex = await register("CP-HB")
    assert key_hex is not None
    async with open_station(csms, "CP-HB", basic("CP-HB", bytes.fromhex(key_hex))) as ws:
        assert (await call(ws, "BootNotification", BOOT_16))[2]["status"] == "Accepted"
        assert (await call(ws, "Heartbeat", {}, uid="2"))[0] == 3
        assert (await call(ws, "MadeUpAction", {}, uid="3"))[2] == "NotImplemented"
        assert (await call(ws, "Heartbeat", {"extra": 1}, uid="4"))[0] == 4
        samples = await scraper.samples()

    def calls(action: str, outcome: str) -> float:
        labels = {"ocpp_version": "1.6", "action": action, "outcome": outcome}
        return samples.get(key("chargewarden_station_calls_total", labels), 0.0)

    assert calls("BootNotification", "ok") == 1
    assert calls("Heartbeat", "ok") == 1
    # A name the station made up is not a label value: it is counted as "unknown".
    assert calls("unknown", "NotImplemented") == 1
    assert not any("MadeUpAction" in labels_text for labels_text in map(str, samples))
    # Heartbeat with a property 1.6 does not define: the 1.6 spelling of the error code.
    assert calls("Heartbeat", "FormationViolation") == 1
    latency = key("chargewarden_station_call_seconds_count", {"ocpp_version": "1.6",
                                                               "action": "Heartbeat"})
    assert samples[latency] == 2


async def test_a_201_station_call_is_labelled_with_its_version(
    scraper: Scraper, register: Register
) -> None:
    password = "Metrics-Station-Pass-42"
    await register("CS-201", OcppVersion.V201, password=password)
    async with open_station(
        scraper.csms, "CS-201", basic("CS-201", password.encode()), ("ocpp2.0.1",)
    ) as ws:
        assert (await call(ws, "BootNotification", BOOT_201))[2]["status"] == "Accepted"
    labels = {"ocpp_version": "2.0.1", "action": "BootNotification", "outcome": "ok"}
    assert await scraper.value("chargewarden_station_calls_total", **labels) == 1


async def test_no_station_identity_or_secret_appears_in_the_metrics(
    scraper: Scraper, register: Register
) -> None:
    csms = scraper.csms
    key_hex = await register("CP-PRIVATE-7731")
    assert key_hex is not None
    async with open_station(
        csms, "CP-PRIVATE-7731", basic("CP-PRIVATE-7731", bytes.fromhex(key_hex))
    ) as ws:
        await call(ws, "BootNotification", BOOT_16)
        await refused_status(csms, "CP-PROBE-9942", basic("CP-PROBE-9942", b"guess" * 4))
        text = await scraper.text()
    for secret in ("CP-PRIVATE-7731", "CP-PROBE-9942", key_hex, key_hex.lower(), "127.0.0.1"):
        assert secret not in text
    assert scraper.token not in text


# ---- TLS --------------------------------------------------------------------------------------


@pytest.fixture
async def tls_scraper(tmp_path: Path, pki_template: Path) -> AsyncIterator[Scraper]:
    running = await start_csms(tls_settings(tmp_path, pki_template), with_api=True)
    try:
        async for value in scraper_for(running):
            yield value
    finally:
        await running.stop()


def open_tls(csms: RunningCsms, identity: str, context: ssl.SSLContext, **headers: str) -> Any:
    assert csms.wss_address is not None
    return connect(
        f"wss://127.0.0.1:{csms.wss_address[1]}/ocpp/{identity}",
        ssl=context,
        server_hostname="localhost",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=headers,
        open_timeout=5,
    )


async def test_tls_handshakes_are_timed_and_refused_handshakes_counted(
    tls_scraper: Scraper,
) -> None:
    csms = tls_scraper.csms
    assert csms.pki is not None
    root = csms_root_pem(csms.settings)
    await register_station(
        csms.store,
        NewStation(
            identity="CP-P2",
            ocpp_version=OcppVersion.V16,
            security_profile=2,
            auth_key_hex=TLS_AUTH_KEY,
            password=None,
            generate_secret=False,
            serial_number=None,
            cpo_name=None,
            strict_password=False,
        ),
        actor="test",
    )
    authorization = basic("CP-P2", bytes.fromhex(TLS_AUTH_KEY))
    async with open_tls(csms, "CP-P2", client_context(root), Authorization=authorization) as ws:
        assert (await call(ws, "Heartbeat", {}))[0] == 3
        samples = await tls_scraper.samples()
    assert samples[key(ADMISSIONS, {"outcome": "admitted", "reason": "profile2"})] == 1
    ok = key("chargewarden_tls_handshake_seconds_count", {"outcome": "ok"})
    assert samples[ok] == 1
    assert samples[key("chargewarden_connections", {"security_profile": "2",
                                                   "ocpp_version": "1.6"})] == 1

    leaf, private_key, chain = station_certificate(
        csms.pki, cn="CP-T", o="Example CPO", issuer=foreign_ca()
    )
    with pytest.raises((OSError, InvalidHandshake, ConnectionClosed, ssl.SSLError)):
        async with open_tls(csms, "CP-T", client_context(root, leaf, private_key, chain)) as ws:
            await asyncio.wait_for(ws.recv(), 5)
    samples = await tls_scraper.samples()
    refused = key(ADMISSIONS, {"outcome": "refused", "reason": "InvalidClientCertificate"})
    assert samples[refused] == 1
    assert samples[key("chargewarden_tls_handshake_seconds_count", {"outcome": "refused"})] == 1
    assert "CP-T" not in await tls_scraper.text()
