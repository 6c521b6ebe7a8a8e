"""A real CSMS on loopback for integration tests: real sockets, real store, no mocks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from chargewarden.app import RunningCsms, start_csms
from chargewarden.config import load_settings
from chargewarden.pki.hierarchy import Pki
from chargewarden.pki.passphrase import load_passphrase
from chargewarden.rpc.versions import OcppVersion
from chargewarden.stations import NewStation, register_station

# Generous limits so only the test that is about throttling ever meets them.
RELAXED_THROTTLE = {
    "slowdown_after": 1000,
    "block_after": 1000,
    "identity_block_after": 1000,
}


@pytest.fixture(scope="session")
def pki_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA for the whole session (key generation is the slow part), copied per test."""
    from tlskit import CPO

    data_dir = tmp_path_factory.mktemp("pki-template")
    settings = load_settings(None, data_dir=data_dir, public_hostname="localhost", cpo_name=CPO)
    Pki.init(settings, load_passphrase(settings))
    return data_dir / "pki"


@pytest.fixture
def csms_settings(tmp_path: Path) -> dict[str, Any]:
    return {
        "data_dir": tmp_path,
        "host": "127.0.0.1",
        "ws_port": 0,
        "wss_port": None,  # TLS suites turn it on (test_gateway_tls.py)
        "api_port": 0,
        "allow_profile_0": True,
        "call_timeout": 5.0,
        "max_message_bytes": 65536,
        "throttle": RELAXED_THROTTLE,
    }


@pytest.fixture
async def csms(csms_settings: dict[str, Any]) -> AsyncIterator[RunningCsms]:
    # load_settings drops None flags (they mean "not given"), so wss_port=None has to be
    # applied afterwards, or every test would create a CA and bind the default wss port.
    settings = load_settings(None, **csms_settings)
    if csms_settings.get("wss_port", 0) is None:
        settings = settings.model_copy(update={"wss_port": None})
    running = await start_csms(settings, with_api=False)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def ca_csms(tmp_path: Path, pki_template: Path) -> AsyncIterator[RunningCsms]:
    """A CSMS with its own CA (a copy of the session's), so it signs station certificates."""
    from tlskit import tls_settings

    running = await start_csms(
        tls_settings(tmp_path / "csms", pki_template, allow_profile_0=False), with_api=False
    )
    try:
        yield running
    finally:
        await running.stop()


Register = Callable[..., Awaitable[str | None]]


@pytest.fixture
def register(csms: RunningCsms) -> Register:
    async def _register(
        identity: str,
        version: OcppVersion = OcppVersion.V16,
        profile: int = 1,
        *,
        auth_key_hex: str | None = None,
        password: str | None = None,
        strict: bool = False,
    ) -> str | None:
        generate = profile in (1, 2) and auth_key_hex is None and password is None
        _, secret = await register_station(
            csms.store,
            NewStation(
                identity=identity,
                ocpp_version=version,
                security_profile=profile,
                auth_key_hex=auth_key_hex,
                password=password,
                generate_secret=generate,
                serial_number=None,
                cpo_name=None,
                strict_password=strict,
            ),
            actor="test",
        )
        return secret or auth_key_hex or password

    return _register
