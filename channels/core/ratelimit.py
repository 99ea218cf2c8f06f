"""Per-sender message rate limit: Redis when configured (shared by every app worker), memory otherwise."""
from __future__ import annotations

import time
from collections import defaultdict, deque

import redis.asyncio as aioredis


class MemoryRateLimiter:
    """Sliding window in process memory — right for the single-process embedded setup."""

    PRUNE_EVERY = 10_000  # calls: forget keys with no hit in the window (senders rotate, memory must not grow)

    def __init__(self, limit: int, window_s: float):
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._calls = 0

    async def allow(self, key: str) -> bool:
        now = time.monotonic()
        self._calls += 1
        if self._calls % self.PRUNE_EVERY == 0:
            self._hits = defaultdict(deque, {k: h for k, h in self._hits.items() if h and now - h[-1] <= self.window_s})
        hits = self._hits[key]
        while hits and now - hits[0] > self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True

    async def aclose(self) -> None:
        self._hits.clear()


class RedisRateLimiter:
    """Fixed window counter per sender (INCR + EXPIRE in one round trip)."""

    def __init__(self, url: str, limit: int, window_s: int, prefix: str = "crossdesk:rl"):
        self.limit, self.window_s, self.prefix = limit, int(window_s), prefix
        self._redis = aioredis.from_url(url)

    async def allow(self, key: str) -> bool:
        bucket = int(time.time() // self.window_s)
        name = f"{self.prefix}:{key}:{bucket}"
        async with self._redis.pipeline(transaction=True) as pipe:
            count, _ = await pipe.incr(name).expire(name, self.window_s * 2).execute()
        return int(count) <= self.limit

    async def aclose(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(redis_url: str | None, limit: int, window_s: int, prefix: str = "crossdesk:rl"):
    return RedisRateLimiter(redis_url, limit, window_s, prefix) if redis_url else MemoryRateLimiter(limit, window_s)
