from __future__ import annotations

import asyncio
import heapq
import itertools

import pytest

from tests.whatsapp.fake_graph import FakeGraph


@pytest.fixture(scope="session")
def _graph_server():
    server = FakeGraph().start()
    yield server
    server.stop()


@pytest.fixture
def graph(_graph_server) -> FakeGraph:
    _graph_server.reset()
    yield _graph_server
    _graph_server.reset()


class FakeClock:
    """Virtual time for the pacer: `sleep` parks the caller until `run` advances the clock to its deadline."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self._waiters: list[tuple[float, int, asyncio.Future]] = []
        self._seq = itertools.count()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (self.now + seconds, next(self._seq), future))
        await future

    async def run(self, *aws, max_steps: int = 100_000):
        """Run the awaitables to completion, advancing virtual time whenever every task is parked."""
        tasks = [asyncio.ensure_future(a) for a in aws]
        for _ in range(max_steps):
            for _ in range(50 + 10 * len(tasks)):  # let every runnable task reach its next park (lock hand-offs)
                await asyncio.sleep(0)
            if all(t.done() for t in tasks):
                return [t.result() for t in tasks]
            if not self._waiters:
                raise AssertionError("tasks are blocked without a pending sleep")
            deadline = self._waiters[0][0]
            self.now = max(self.now, deadline)
            while self._waiters and self._waiters[0][0] <= self.now:
                _, _, future = heapq.heappop(self._waiters)
                if not future.done():
                    future.set_result(None)
        raise AssertionError("virtual time did not converge")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
