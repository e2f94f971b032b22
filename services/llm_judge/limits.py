"""Spending limits of the judge: calls started per minute, and dollars spent."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class RateLimiter:
    """At most `per_window` calls start in any sliding `window_s` (0 turns it off).

    A sliding window rather than a smooth drip: providers count requests per minute, so a burst
    of a GRPO batch is fine as long as the minute's total stays under their limit.
    """

    def __init__(self, per_window: int, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()

    async def acquire(self) -> None:
        if self.per_window <= 0:
            return
        while True:
            now = self._clock()
            while self._starts and self._starts[0] <= now - self.window_s:
                self._starts.popleft()
            if len(self._starts) < self.per_window:
                # No await between the check and the append: no other task can slip in.
                self._starts.append(now)
                return
            await self._sleep(self._starts[0] + self.window_s - now)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None  # USD, when the upstream reports it (OpenRouter's usage.cost)

    @classmethod
    def from_reply(cls, raw: object) -> Usage:
        """A reply's `usage` object, each number checked (a bad one counts as absent)."""
        if not isinstance(raw, dict):
            return cls()
        cost = raw.get("cost")
        return cls(
            prompt_tokens=_count(raw.get("prompt_tokens")),
            completion_tokens=_count(raw.get("completion_tokens")),
            cost=float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
        )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class Budget:
    """Dollars spent on judge calls, against an optional limit.

    The cost of a call is the upstream's `usage.cost`, else tokens times the configured prices,
    else unknown (counted as 0 and remembered, so the service can warn). Calls already in flight
    when the limit is reached still finish, so the spend can pass the limit by at most one
    call per concurrent slot.
    """

    def __init__(self, limit_usd: float | None, prompt_per_mtok: float | None = None,
                 completion_per_mtok: float | None = None) -> None:
        self.limit_usd = limit_usd
        self.prompt_per_mtok = prompt_per_mtok
        self.completion_per_mtok = completion_per_mtok
        self.spent_usd = 0.0
        self.unpriced_calls = 0

    @property
    def exhausted(self) -> bool:
        return self.limit_usd is not None and self.spent_usd >= self.limit_usd

    def charge(self, usage: Usage) -> float | None:
        """Add one call's cost; returns it, or None when it is unknown."""
        cost = usage.cost
        if cost is None and self.prompt_per_mtok is not None and self.completion_per_mtok is not None:
            cost = (usage.prompt_tokens * self.prompt_per_mtok
                    + usage.completion_tokens * self.completion_per_mtok) / 1e6
        if cost is None:
            self.unpriced_calls += 1
            return None
        self.spent_usd += cost
        return cost
