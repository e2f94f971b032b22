"""The reward phase's wall time per GRPO step, logged as `timing/rewards_ms` beside TRL's `step_time`.

TRL 1.16 calls every reward function of a step from `_calculate_rewards`: the plain ones one after
the other, then the `async def` ones together on its event loop. Wrapping the functions (rather
than patching TRL) measures that phase from the first function's start to the last one's end, so
concurrent rewards count once, as the step waits for them, and the metric goes out through the
`log_metric` hook TRL hands every reward function.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

METRIC = "timing/rewards_ms"


class RewardPhaseTimer:
    """Wraps a step's reward functions; each time all of them have run, one phase is measured.

    `last_ms` is the latest phase and `phases_ms` every one so far (benchmarks read them); with
    TRL, each phase is also logged as `timing/rewards_ms`.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.last_ms: float | None = None
        self.phases_ms: list[float] = []
        self._count = 0
        self._lock = threading.Lock()
        self._started = self._finished = 0
        self._first = self._last = 0.0

    def wrap(self, functions: Sequence[Callable[..., Any]]) -> list[Callable[..., Any]]:
        """The functions, timed; the same names, and async stays async (TRL checks both)."""
        self._count = len(functions)
        return [self._timed(f) for f in functions]

    def _timed(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                self._begin()
                try:
                    return await func(*args, **kwargs)
                finally:
                    self._end(kwargs.get("log_metric"))

            return timed_async

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._begin()
            try:
                return func(*args, **kwargs)
            finally:
                self._end(kwargs.get("log_metric"))

        return timed

    def _begin(self) -> None:
        now = self.clock()
        with self._lock:
            if self._started == 0:
                self._first = now
            self._started += 1

    def _end(self, log_metric: Callable[[str, float], None] | None) -> None:
        now = self.clock()
        with self._lock:
            self._finished += 1
            self._last = max(self._last, now)
            if self._finished < self._count:
                return
            elapsed_ms = (self._last - self._first) * 1000
            self._started = self._finished = 0
            self._last = 0.0
            self.last_ms = elapsed_ms
            self.phases_ms.append(elapsed_ms)
        # Sent by the last function to finish, so TRL has it before it gathers the step's metrics.
        if log_metric is not None:
            log_metric(METRIC, elapsed_ms)
