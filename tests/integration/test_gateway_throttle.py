"""A flood of bad attempts is slowed, then refused, and the real station still gets in."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Register
from websockets.exceptions import InvalidStatus
from wsclient import basic, open_station

from chargewarden.app import RunningCsms
from chargewarden.security.events import CsmsEvent

ATTACKER = ("127.0.0.2", 0)
STATION = ("127.0.0.3", 0)


@pytest.fixture
def csms_settings(csms_settings: dict[str, Any]) -> dict[str, Any]:
    csms_settings["throttle"] = {
        "slowdown_after": 3,
        "base_delay": 0.01,
        "max_delay": 0.05,
        "block_after": 6,
        "block_seconds": 300,
        "identity_block_after": 8,
        "identity_block_seconds": 15,
    }
    return csms_settings


async def attempt(
    csms: RunningCsms, identity: str, header: str, local_addr: tuple[str, int]
) -> int:
    try:
        async with open_station(csms, identity, header, local_addr=local_addr):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_sec_03_flood_is_rate_limited_while_the_real_station_gets_in(
    csms: RunningCsms, register: Register
) -> None:
    key = bytes.fromhex(await register("CP-TARGET"))
    wrong = basic("CP-TARGET", b"\x01" * 20)
    statuses = [await attempt(csms, "CP-TARGET", wrong, ATTACKER) for _ in range(20)]
    assert statuses[:6] == [401] * 6
    assert set(statuses[6:]) == {429}

    # Even the right password does not help the blocked address ...
    assert await attempt(csms, "CP-TARGET", basic("CP-TARGET", key), ATTACKER) == 429
    # ... while the station itself, from its own address, is admitted at once.
    assert await attempt(csms, "CP-TARGET", basic("CP-TARGET", key), STATION) == 101

    events = [e.type for e in await csms.store.events.list(station="CP-TARGET", limit=500)]
    # One event per real refusal, and one (not one per attempt) for the block.
    assert events.count(CsmsEvent.INVALID_CREDENTIALS) == 6
    assert events.count(CsmsEvent.RATE_LIMITED) == 1


async def test_rate_limited_response_says_when_to_retry(
    csms: RunningCsms, register: Register
) -> None:
    await register("CP-R")
    wrong = basic("CP-R", b"\x02" * 20)
    for _ in range(6):
        await attempt(csms, "CP-R", wrong, ATTACKER)
    with pytest.raises(InvalidStatus) as refused:
        async with open_station(csms, "CP-R", wrong, local_addr=ATTACKER):
            pass
    assert refused.value.response.status_code == 429
    assert 1 <= int(refused.value.response.headers["Retry-After"]) <= 300
