"""Running our simulated station against a test CSMS, and waiting for what it should cause."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from chargewarden.simulator.config import StationConfig
from chargewarden.simulator.runner import StationRunner


async def until(predicate: Callable[[], object], timeout: float = 15.0) -> None:
    """Poll ``predicate`` (plain or async) until it is truthy; AssertionError after timeout."""
    for _ in range(int(timeout / 0.05)):
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


class Running:
    """``async with Running(config) as runner``: the station runs, booted, until the block ends."""

    def __init__(self, config: StationConfig) -> None:
        self.runner = StationRunner(config)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StationRunner:
        self.task = asyncio.create_task(self.runner.run(self.stop))
        await asyncio.wait_for(self.runner.state.booted.wait(), 15)
        return self.runner

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 15)
