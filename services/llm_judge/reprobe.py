"""Recovery from a refused key: re-probe the upstream with bounded back-off until the key works again.

A 401/403 turns the judge not-ready at once (every call would fail the same way). Rotating the key
at the provider, or a provider's auth outage ending, must not need a restart: a background task
sends one minimal call after `reprobe_min_s`, doubling the wait up to `reprobe_max_s`, and clears
the refusal as soon as the upstream stops answering 401/403.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("rewardstack.llm_judge")

# (accepted, what happened): accepted is False only for a refusal of the key.
Probe = Callable[[], Awaitable[tuple[bool, str]]]


class KeyProber:
    """Owns the refusal state: `refused` is the reason, None when the key is accepted."""

    def __init__(self, probe: Probe, min_s: float, max_s: float) -> None:
        self._probe, self.min_s, self.max_s = probe, min_s, max_s
        self.refused: str | None = None
        self.attempts = 0
        self.last: str | None = None
        self._next_at: float | None = None
        self._task: asyncio.Task | None = None

    def refuse(self, reason: str) -> None:
        """Record a refusal and make sure a re-probe is scheduled on the running loop."""
        if self.refused is None:
            self.attempts, self.last = 0, None
        self.refused = reason
        self.ensure_probing()

    def ensure_probing(self) -> None:
        if self.refused is None or (self._task is not None and not self._task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a sync caller): the next async caller starts it
        self._task = loop.create_task(self._run(), name="llm-judge-reprobe")

    def not_ready_reason(self) -> str | None:
        if self.refused is None:
            return None
        when = ""
        if self._next_at is not None:
            when = f"; next re-probe in {max(self._next_at - time.monotonic(), 0):.0f} s"
        last = f"; last probe: {self.last}" if self.last else ""
        return f"{self.refused} (re-probed {self.attempts} time(s){last}{when})"

    async def _run(self) -> None:
        delay = self.min_s
        try:
            while self.refused is not None:
                self._next_at = time.monotonic() + delay
                await asyncio.sleep(delay)
                self.attempts += 1
                try:
                    accepted, self.last = await self._probe()
                except Exception as exc:  # a probe that cannot reach the upstream proves nothing
                    accepted, self.last = False, f"{type(exc).__name__}"
                if accepted:
                    log.warning("the judge API accepts the key again (%s); ready", self.last)
                    self.refused = None
                    return
                delay = min(delay * 2, self.max_s)
        finally:
            self._next_at = None

    def cancel_threadsafe(self) -> None:
        """Stop probing from any thread (the framework closes scorers from a worker thread)."""
        task = self._task
        if task is not None and not task.done():
            loop = task.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._task = None
