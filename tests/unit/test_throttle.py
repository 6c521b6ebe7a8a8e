"""Admission throttle after failed Basic auth (SEC-03, SEC-13), driven by a fake clock."""

from __future__ import annotations

import pytest

from chargewarden.security.throttle import (
    AdmissionThrottle,
    ThrottleDecision,
    ThrottlePolicy,
    peer_key,
)

ATTACKER = "203.0.113.7"
STATION = "198.51.100.20"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def throttle(clock: FakeClock) -> AdmissionThrottle:
    return AdmissionThrottle(ThrottlePolicy(), clock=clock)


def _fail(throttle: AdmissionThrottle, n: int, identity: str = "CP1", peer: str = ATTACKER) -> int:
    """n failures; returns how many of them started a block."""
    return sum(throttle.record_failure(identity, peer) for _ in range(n))


def test_sec_03_clean_peer_is_admitted_without_delay(throttle: AdmissionThrottle) -> None:
    assert throttle.check("CP1", STATION) == ThrottleDecision(allowed=True)
    assert len(throttle) == 0  # checks alone create no state


def test_sec_03_slowdown_grows_exponentially_and_is_capped(throttle: AdmissionThrottle) -> None:
    # Different identities, so only the per-peer counter is at work.
    for i in range(4):
        throttle.record_failure(f"CP{i}", ATTACKER)
    assert throttle.check("CP1", ATTACKER).delay == 0
    delays = []
    for i in range(7):
        throttle.record_failure(f"CPX{i}", ATTACKER)
        decision = throttle.check("CP1", ATTACKER)
        assert decision.allowed
        delays.append(decision.delay)
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_sec_03_peer_blocked_after_threshold_one_block_signalled(
    throttle: AdmissionThrottle, clock: FakeClock
) -> None:
    # Spread over many identities: per-peer counting catches credential stuffing too.
    started = sum(throttle.record_failure(f"CP{i}", ATTACKER) for i in range(19))
    assert started == 0
    assert throttle.record_failure("CP99", ATTACKER) is True
    decision = throttle.check("CP1", ATTACKER)
    assert not decision.allowed
    assert decision.retry_after == pytest.approx(300)
    # Further failures during the block do not start another one (one security event per block).
    assert _fail(throttle, 50) == 0
    clock.advance(299)
    assert not throttle.check("CP1", ATTACKER).allowed
    assert throttle.check("CP1", ATTACKER).retry_after == pytest.approx(1)


def test_sec_03_block_expires_and_peer_starts_from_zero(
    throttle: AdmissionThrottle, clock: FakeClock
) -> None:
    _fail(throttle, 20, identity="CPX")
    clock.advance(300.5)
    assert throttle.check("CPX", ATTACKER) == ThrottleDecision(allowed=True)


def test_sec_03_failures_outside_window_are_forgotten(
    throttle: AdmissionThrottle, clock: FakeClock
) -> None:
    for _ in range(19):
        throttle.record_failure("CPX", ATTACKER)
        clock.advance(4)  # 19 failures over 76 s: never 20 within 60 s
    assert throttle.check("CPX", ATTACKER).allowed
    assert not any(throttle.record_failure("CPY", ATTACKER) for _ in range(4))


def test_sec_03_clean_peer_admitted_while_attacker_blocked(throttle: AdmissionThrottle) -> None:
    assert _fail(throttle, 20) >= 1
    assert not throttle.check("CP1", ATTACKER).allowed
    # The real station from its own address is neither blocked nor slowed.
    assert throttle.check("CP1", STATION) == ThrottleDecision(allowed=True)


def test_sec_03_identity_block_is_short_and_spares_clean_peers(
    throttle: AdmissionThrottle, clock: FakeClock
) -> None:
    # Ten addresses each fail once for CP1: per-identity threshold reached.
    attackers = [f"203.0.113.{i}" for i in range(10)]
    started = [throttle.record_failure("CP1", peer) for peer in attackers]
    assert started == [False] * 9 + [True]
    for peer in attackers:
        decision = throttle.check("CP1", peer)
        assert not decision.allowed
        assert decision.retry_after == pytest.approx(15)
    # The station itself, from a clean address, is admitted at once.
    assert throttle.check("CP1", STATION) == ThrottleDecision(allowed=True)
    # Other identities of the same attackers are unaffected by CP1's identity block.
    assert throttle.check("CP2", attackers[0]).allowed
    clock.advance(15.1)
    assert all(throttle.check("CP1", peer).allowed for peer in attackers)


def test_sec_03_station_that_failed_itself_waits_only_the_short_window(
    throttle: AdmissionThrottle, clock: FakeClock
) -> None:
    throttle.record_failure("CP1", STATION)  # e.g. one reconnect with the old password
    for i in range(9):
        throttle.record_failure("CP1", f"203.0.113.{i}")
    decision = throttle.check("CP1", STATION)
    assert not decision.allowed and decision.retry_after <= 15
    clock.advance(15.1)
    assert throttle.check("CP1", STATION).allowed


def test_sec_03_success_clears_the_peer_counters_for_that_identity(
    throttle: AdmissionThrottle,
) -> None:
    _fail(throttle, 8, identity="CP1", peer=STATION)
    _fail(throttle, 1, identity="CP2", peer=STATION)
    assert throttle.check("CP1", STATION).delay > 0
    throttle.record_success("CP1", STATION)
    # Only CP2's failure remains for this address: below the slowdown threshold.
    assert throttle.check("CP1", STATION) == ThrottleDecision(allowed=True)
    assert _fail(throttle, 4, identity="CP2", peer=STATION) == 0
    assert throttle.check("CP2", STATION).delay == 0.25


def test_sec_03_ipv6_counted_per_64_and_mapped_ipv4_normalised(
    throttle: AdmissionThrottle,
) -> None:
    for i in range(20):
        throttle.record_failure(f"CP{i}", f"2001:db8:1:2::{i + 1:x}")
    assert not throttle.check("CP1", "2001:db8:1:2:ffff::1").allowed
    assert throttle.check("CP1", "2001:db8:1:3::1").allowed
    assert peer_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert peer_key("[2001:db8::1]") == "2001:db8::/64"
    assert peer_key("unix-socket") == "unix-socket"


def test_sec_03_memory_is_bounded(clock: FakeClock) -> None:
    throttle = AdmissionThrottle(ThrottlePolicy(max_tracked=100), clock=clock)
    for i in range(1000):
        throttle.record_failure(f"CP{i}", f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) <= 200


def test_sec_03_old_entries_expire(throttle: AdmissionThrottle, clock: FakeClock) -> None:
    for i in range(50):
        throttle.record_failure(f"CP{i}", f"10.0.0.{i}")
    assert len(throttle) == 100
    clock.advance(61)
    throttle.check("CP1", STATION)  # any call sweeps expired entries
    assert len(throttle) == 0


def test_sec_03_active_block_survives_sweeps(throttle: AdmissionThrottle, clock: FakeClock) -> None:
    _fail(throttle, 20)
    clock.advance(200)
    throttle.record_failure("CP1", STATION)
    assert not throttle.check("CP1", ATTACKER).allowed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0},
        {"slowdown_after": 0},
        {"slowdown_after": 30, "block_after": 20},
        {"identity_block_seconds": 0},
        {"max_tracked": 0},
    ],
)
def test_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ThrottlePolicy(**kwargs)  # type: ignore[arg-type]
