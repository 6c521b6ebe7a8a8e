"""Per-message cost of ChargeWarden's RPC layer against the `ocpp` package, in one run.

Both sides do the same work for each message: parse the frame, validate the request against
the official schema, call a handler that returns a fixed answer, validate the answer, serialise
it and hand it to an in-memory connection. Ours is `RpcEndpoint.receive`; the baseline is
`ocpp.v16.ChargePoint.route_message` / `ocpp.v201.ChargePoint.route_message` with `@on`
handlers and validation on. The baseline is measured twice: with the library default
(validation in a thread pool, `ocpp.messages.ASYNC_VALIDATION = True`) and with validation in
the event loop, so the ratio is not only the cost of the thread hop.

Run: `.venv/bin/python bench/rpc.py` (or `make bench`). Rewrites the rpc section of
bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ocpp.messages
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import RegistrationStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from chargewarden.rpc.endpoint import RpcEndpoint
from chargewarden.rpc.frames import Call, encode_call
from chargewarden.rpc.versions import OcppVersion

RESULTS = Path(__file__).with_name("RESULTS.md")
BUDGET = 10.0  # ours must be at least this many times faster (DESIGN.md, Performance budgets)
ROUNDS = 5
ROUND_SECONDS = 0.25
NOW = "2024-05-01T12:00:00Z"

# --- the messages --------------------------------------------------------------------------

BOOT = {
    "chargePointVendor": "VendorX",
    "chargePointModel": "SingleSocketCharger",
    "chargePointSerialNumber": "SN-000123456",
    "chargeBoxSerialNumber": "CB-000123456",
    "firmwareVersion": "1.4.2-build.77",
    "iccid": "8931440400012345678",
    "imsi": "204043012345678",
    "meterType": "ABB B23",
    "meterSerialNumber": "MS-99887766",
}
SECURITY_EVENT = {
    "type": "InvalidMessages",
    "timestamp": NOW,
    "techInfo": "frame rejected: RpcFrameworkError",
}
_MEASURANDS = [
    ("Energy.Active.Import.Register", None, "Wh"),
    ("Power.Active.Import", None, "W"),
    ("Current.Import", "L1", "A"),
    ("Current.Import", "L2", "A"),
    ("Current.Import", "L3", "A"),
    ("Voltage", "L1-N", "V"),
    ("Voltage", "L2-N", "V"),
    ("Voltage", "L3-N", "V"),
    ("Frequency", None, "Hz"),
    ("Power.Factor", None, None),
    ("Power.Offered", None, "W"),
    ("SoC", None, "Percent"),
]


def _sampled_value(index: int, measurand: str, phase: str | None, unit: str | None) -> dict:
    value: dict[str, Any] = {
        "value": 1000.5 + index,
        "context": "Sample.Periodic",
        "measurand": measurand,
        "location": "EV" if measurand == "SoC" else "Outlet",
    }
    if phase is not None:
        value["phase"] = phase
    if unit is not None:
        value["unitOfMeasure"] = {"unit": unit, "multiplier": 0}
    return value


METER_VALUES = {
    "evseId": 1,
    "meterValue": [
        {
            "timestamp": NOW,
            "sampledValue": [_sampled_value(i, *m) for i, m in enumerate(_MEASURANDS)],
        }
    ],
}


@dataclass(frozen=True)
class Case:
    name: str
    version: OcppVersion
    action: str
    request: dict[str, Any]
    response: dict[str, Any]

    @property
    def text(self) -> str:
        return encode_call(Call("19223201", self.action, self.request))


CASES = [
    Case("1.6 Heartbeat", OcppVersion.V16, "Heartbeat", {}, {"currentTime": NOW}),
    Case(
        "1.6 BootNotification",
        OcppVersion.V16,
        "BootNotification",
        BOOT,
        {"status": "Accepted", "currentTime": NOW, "interval": 300},
    ),
    Case("1.6 SecurityEventNotification", OcppVersion.V16, "SecurityEventNotification",
         SECURITY_EVENT, {}),
    Case("2.0.1 MeterValues (12 sampledValue)", OcppVersion.V201, "MeterValues", METER_VALUES,
         {}),
]

# --- the two sides -------------------------------------------------------------------------


class Collector:
    """Stands in for the WebSocket: keeps the last frame so the run can check it."""

    def __init__(self) -> None:
        self.last = ""

    async def send(self, text: str) -> None:
        self.last = text


def ours(case: Case, sink: Collector) -> Callable[[str], Awaitable[None]]:
    response = case.response

    async def handler(payload: dict[str, Any]) -> dict[str, Any]:
        return response

    endpoint = RpcEndpoint(case.version, {case.action: handler}, sink.send)
    return endpoint.receive


class Baseline16(ChargePoint16):
    @on(Action16.heartbeat)
    async def on_heartbeat(self) -> result16.Heartbeat:
        return result16.Heartbeat(current_time=NOW)

    @on(Action16.boot_notification)
    async def on_boot(self, **_: Any) -> result16.BootNotification:
        return result16.BootNotification(
            current_time=NOW, interval=300, status=RegistrationStatus.accepted
        )

    @on(Action16.security_event_notification)
    async def on_security_event(self, **_: Any) -> result16.SecurityEventNotification:
        return result16.SecurityEventNotification()


class Baseline201(ChargePoint201):
    @on(Action201.meter_values)
    async def on_meter_values(self, **_: Any) -> result201.MeterValues:
        return result201.MeterValues()


def baseline(case: Case, sink: Collector) -> Callable[[str], Awaitable[None]]:
    cls = Baseline16 if case.version is OcppVersion.V16 else Baseline201
    return cls("CP-1", sink).route_message


# --- measurement ---------------------------------------------------------------------------


async def _time(receive: Callable[[str], Awaitable[None]], text: str, iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        await receive(text)
    return time.perf_counter() - start


async def per_message_us(
    make: Callable[[Case, Collector], Callable[[str], Awaitable[None]]], case: Case
) -> float:
    sink = Collector()
    receive = make(case, sink)
    text = case.text
    await _time(receive, text, 50)  # warm-up: lazy schema compilation, caches
    if not sink.last.startswith("[3,"):
        raise SystemExit(f"{case.name}: expected a CALLRESULT, got {sink.last[:200]}")
    # Calibrate so that each round lasts about ROUND_SECONDS whatever the side's speed.
    probe = 50
    iterations = max(probe, int(probe * ROUND_SECONDS / await _time(receive, text, probe)))
    rounds = [await _time(receive, text, iterations) / iterations for _ in range(ROUNDS)]
    return statistics.median(rounds) * 1e6


@dataclass(frozen=True)
class Row:
    case: str
    ours: float
    lib_default: float
    lib_sync: float


async def measure() -> list[Row]:
    rows = []
    for case in CASES:
        ours_us = await per_message_us(ours, case)
        ocpp.messages.ASYNC_VALIDATION = True
        default_us = await per_message_us(baseline, case)
        ocpp.messages.ASYNC_VALIDATION = False
        sync_us = await per_message_us(baseline, case)
        ocpp.messages.ASYNC_VALIDATION = True
        rows.append(Row(case.name, ours_us, default_us, sync_us))
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| message | ours µs/msg | ocpp default µs/msg | x faster | "
        "ocpp in-loop validation µs/msg | x faster |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.case} | {row.ours:.1f} | {row.lib_default:.1f} | "
            f"{row.lib_default / row.ours:.1f}x | {row.lib_sync:.1f} | "
            f"{row.lib_sync / row.ours:.1f}x |"
        )
    return "\n".join(lines)


def write_results(rows: list[Row]) -> None:
    worst = min(row.lib_default / row.ours for row in rows)
    verdict = "met" if worst >= BUDGET else "NOT met"
    section = "\n".join(
        [
            "<!-- rpc:start -->",
            "## RPC layer: per-message cost",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, ocpp "
            f"{_ocpp_version()}. Command: `make bench` / `.venv/bin/python bench/rpc.py`.",
            "",
            "Full path per message on both sides: parse, validate request, handler with a fixed "
            "answer, validate answer, serialise, send to an in-memory collector. Baseline: "
            "`ocpp` `ChargePoint.route_message` with `@on` handlers, validation on; "
            "\"default\" validates in a thread pool (the library default), \"in-loop\" sets "
            "`ocpp.messages.ASYNC_VALIDATION = False`. Median of "
            f"{ROUNDS} rounds of ~{ROUND_SECONDS} s each.",
            "",
            table(rows),
            "",
            f"Budget: ours ≤ 1/{BUDGET:g} of the baseline's per-message cost — {verdict} "
            f"(worst ratio against the default: {worst:.1f}x; against in-loop validation: "
            f"{min(row.lib_sync / row.ours for row in rows):.1f}x).",
            "<!-- rpc:end -->",
        ]
    )
    text = RESULTS.read_text(encoding="utf-8")
    pattern = re.compile(r"<!-- rpc:start -->.*?<!-- rpc:end -->", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{RESULTS} has no rpc section markers")
    RESULTS.write_text(pattern.sub(lambda _: section, text, count=1), encoding="utf-8")


def _ocpp_version() -> str:
    from importlib.metadata import version

    return version("ocpp")


def main() -> int:
    # The library logs every message and every traceback; that would time the log handler.
    logging.getLogger("ocpp").disabled = True
    logging.getLogger("chargewarden").setLevel(logging.ERROR)
    rows = asyncio.run(measure())
    print(table(rows))
    write_results(rows)
    worst = min(row.lib_default / row.ours for row in rows)
    print(f"\nworst ratio {worst:.1f}x (budget {BUDGET:g}x); wrote {RESULTS}")
    return 0 if worst >= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
