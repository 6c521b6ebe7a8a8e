"""Reconnect storm: cached password verification against Argon2id on every connection.

200 known stations (100 OCPP 1.6 — half of them sending the 40-hex text form of their key —
and 100 OCPP 2.0.1) each connect once (cache miss: one Argon2id verification each), then
reconnect 10 times: 2,000 verifications answered by `CredentialVerifier` from its keyed cache.
The baseline is the same `CredentialVerifier` with a cache that never hits, i.e. a CSMS that
runs Argon2id (m=19 MiB, t=2, p=1) for each of the same 2,000 reconnects. Both run in this
process, in this run; each round of reconnects is one concurrent burst (asyncio.gather), as in
a real storm. CPU is `time.process_time()` (all threads of the process, so the Argon2 work in
worker threads counts), wall is `time.perf_counter()`.

Run: `.venv/bin/python bench/auth.py` (or `make bench`); `--baseline N` measures only N of
the 2,000 uncached verifications and extrapolates (the table says so). Rewrites the auth
section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chargewarden.rpc.versions import OcppVersion
from chargewarden.security.credentials import (
    ARGON2_MEMORY_KIB,
    ARGON2_PARALLELISM,
    ARGON2_TIME_COST,
    auth_key_to_hex,
    generate_auth_key,
    generate_password_201,
    hash_secret,
)
from chargewarden.security.verifier import CredentialMatch, CredentialVerifier, VerificationCache
from chargewarden.store.records import StationRecord

RESULTS = Path(__file__).with_name("RESULTS.md")
STATIONS = 200
RECONNECTS = 10
COMMAND = ".venv/bin/python bench/auth.py"


class NeverHitCache(VerificationCache):
    """The baseline: remembers nothing, so every verification runs Argon2id."""

    def hit(self, identity: str, phc: str, password: bytes) -> bool:
        return False

    def add(self, identity: str, phc: str, password: bytes) -> None:
        return None


@dataclass(frozen=True)
class Fleet:
    stations: list[StationRecord]
    passwords: list[bytes]  # what each station sends on the wire


@dataclass(frozen=True)
class Measurement:
    label: str
    operations: int
    cpu: float
    wall: float
    extrapolated_from: int | None = None

    @property
    def cpu_per_op(self) -> float:
        return self.cpu / self.operations

    @property
    def wall_per_op(self) -> float:
        return self.wall / self.operations


def build_fleet() -> Fleet:
    stations: list[StationRecord] = []
    passwords: list[bytes] = []
    for i in range(STATIONS):
        if i % 2 == 0:
            key = generate_auth_key()
            stations.append(
                StationRecord(
                    identity=f"CP16-{i:04d}",
                    ocpp_version=OcppVersion.V16,
                    security_profile=2,
                    credential_hash=hash_secret(key),
                )
            )
            # Half of the 1.6 stations send the hex text instead of the raw key (interop form).
            passwords.append(auth_key_to_hex(key).encode() if i % 4 == 0 else key)
        else:
            password = generate_password_201()
            stations.append(
                StationRecord(
                    identity=f"CS201-{i:04d}",
                    ocpp_version=OcppVersion.V201,
                    security_profile=2,
                    credential_hash=hash_secret(password.encode()),
                )
            )
            passwords.append(password.encode())
    return Fleet(stations, passwords)


async def burst(verifier: CredentialVerifier, fleet: Fleet, count: int) -> None:
    """One storm round: the first `count` stations reconnect at once."""
    results = await asyncio.gather(
        *(
            verifier.verify(s, p)
            for s, p in zip(fleet.stations[:count], fleet.passwords, strict=False)
        )
    )
    if any(r is not CredentialMatch.CURRENT for r in results):
        raise SystemExit("benchmark bug: a correct password was not accepted")


async def measure(label: str, ops: int, work: Callable[[], Awaitable[None]]) -> Measurement:
    cpu, wall = time.process_time(), time.perf_counter()
    await work()
    return Measurement(label, ops, time.process_time() - cpu, time.perf_counter() - wall)


async def run(baseline_ops: int) -> list[Measurement]:
    print(f"hashing {STATIONS} station secrets (setup, not measured) ...", flush=True)
    fleet = build_fleet()
    total = STATIONS * RECONNECTS

    ours = CredentialVerifier()
    first = await measure(
        "first connection of each station (cache miss → Argon2id)",
        STATIONS,
        lambda: burst(ours, fleet, STATIONS),
    )
    print(f"  cold: {first.cpu:.2f} s CPU", flush=True)

    async def warm_storm() -> None:
        for _ in range(RECONNECTS):
            await burst(ours, fleet, STATIONS)

    warm = await measure(
        f"reconnects, warm cache ({STATIONS} stations × {RECONNECTS})", total, warm_storm
    )
    print(f"  warm: {warm.cpu:.3f} s CPU for {total}", flush=True)

    cacheless = CredentialVerifier(NeverHitCache())

    async def baseline_storm() -> None:
        done = 0
        while done < baseline_ops:
            n = min(STATIONS, baseline_ops - done)
            await burst(cacheless, fleet, n)
            done += n

    print(f"  baseline: {baseline_ops} uncached verifications ...", flush=True)
    base = await measure(
        "same reconnects, Argon2id every time (no cache)", baseline_ops, baseline_storm
    )
    if baseline_ops != total:
        scale = total / baseline_ops
        base = Measurement(base.label, total, base.cpu * scale, base.wall * scale, baseline_ops)
    return [warm, base, first]


def _fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.1f}" if us < 1000 else f"{us:,.0f}"


def table(rows: list[Measurement]) -> str:
    lines = [
        "| scenario | verifications | CPU s | CPU µs/op | wall s | wall µs/op |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in rows:
        ops = f"{m.operations:,}"
        if m.extrapolated_from is not None:
            ops += f" (measured {m.extrapolated_from:,}, extrapolated)"
        lines.append(
            f"| {m.label} | {ops} | {m.cpu:.3f} | {_fmt_us(m.cpu_per_op)} | {m.wall:.3f} | "
            f"{_fmt_us(m.wall_per_op)} |"
        )
    return "\n".join(lines)


def write_results(rows: list[Measurement]) -> str:
    warm, base = rows[0], rows[1]
    cpu_ratio = base.cpu_per_op / warm.cpu_per_op
    wall_ratio = base.wall_per_op / warm.wall_per_op
    section = "\n".join(
        [
            "<!-- auth:start -->",
            "## Station authentication: reconnect storm",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}. "
            f"Command: `make bench` / `{COMMAND}`.",
            "",
            f"{STATIONS} known stations (100 OCPP 1.6, half sending the 40-hex key text; 100 "
            f"OCPP 2.0.1) connect once, then reconnect {RECONNECTS} times each in concurrent "
            "bursts. Ours: `CredentialVerifier` answering from its keyed in-memory cache "
            "(HMAC-SHA256 under a per-process key). Baseline, same run: the same verifier with "
            f"a cache that never hits, i.e. Argon2id (m={ARGON2_MEMORY_KIB} KiB, "
            f"t={ARGON2_TIME_COST}, p={ARGON2_PARALLELISM}) on every reconnect. CPU = "
            "`time.process_time()` of the whole process (Argon2 runs in worker threads); "
            "wall = `time.perf_counter()`.",
            "",
            table(rows),
            "",
            f"Warm-cache reconnects cost 1/{cpu_ratio:,.0f} of the CPU of Argon2id per "
            f"reconnect ({_fmt_us(warm.cpu_per_op)} µs vs {_fmt_us(base.cpu_per_op)} µs per "
            f"verification; wall-time ratio {wall_ratio:,.0f}x). Each station pays Argon2id once "
            "per process lifetime and credential.",
            "<!-- auth:end -->",
        ]
    )
    text = RESULTS.read_text(encoding="utf-8")
    pattern = re.compile(r"<!-- auth:start -->.*?<!-- auth:end -->", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{RESULTS} has no auth section markers")
    RESULTS.write_text(pattern.sub(lambda _: section, text, count=1), encoding="utf-8")
    return f"CPU ratio {cpu_ratio:,.0f}x, wall ratio {wall_ratio:,.0f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--baseline",
        type=int,
        default=STATIONS * RECONNECTS,
        help="uncached verifications to measure (default: all 2,000; fewer are extrapolated)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.baseline <= STATIONS * RECONNECTS:
        parser.error(f"--baseline must be 1..{STATIONS * RECONNECTS}")
    rows = asyncio.run(run(args.baseline))
    print()
    print(table(rows))
    summary = write_results(rows)
    print(f"\n{summary}; wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
