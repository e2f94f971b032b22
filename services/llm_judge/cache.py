"""A bounded cache of judged items that also merges identical calls still in flight.

GRPO samples K completions per prompt and short answers repeat, often within one batch: the
duplicates arrive together, before any call has finished, so a cache of finished results alone
would still pay K times. Each call runs as a task of its own, which every caller of the same key
awaits; a caller that stops waiting (its request's deadline passed) leaves the call running. Its
answer, already paid for, is then cached when it comes, so a retry of that completion is instant.
At most `keep_late` such abandoned calls run at once (the oldest is cancelled beyond that), so
late calls never take the upstream slots that new requests need.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from proto.models import ItemStatus
from services.common.scoring import Scored

Hit = Literal["miss", "done", "inflight"]
Late = Literal["cached", "failed", "cancelled"]


def cache_key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(eq=False)
class _Flight:
    task: asyncio.Task[Scored]
    waiters: int = 0


class JudgeCache:
    """LRU of finished scores (`size` entries; 0 keeps none) plus the calls now in flight.

    Only `ok` results are kept: an error or timeout may pass, and the next request should retry.
    `on_late(outcome)` hears what became of each call nobody waited for any more.
    """

    def __init__(self, size: int, keep_late: int = 0,
                 on_late: Callable[[Late], None] | None = None) -> None:
        self.size = size
        # Without a cache a late answer is worth nothing: such calls are cancelled at once.
        self.keep_late = keep_late if size > 0 else 0
        self._on_late = on_late or (lambda outcome: None)
        self._done: OrderedDict[str, Scored] = OrderedDict()
        self._inflight: dict[str, _Flight] = {}
        self._abandoned: OrderedDict[str, _Flight] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._done)

    @property
    def late_calls(self) -> int:
        """Calls still running that no caller waits for."""
        return len(self._abandoned)

    async def get_or_call(self, key: str, call: Callable[[], Awaitable[Scored]]) -> tuple[Scored, Hit]:
        if key in self._done:
            self._done.move_to_end(key)
            return self._done[key], "done"
        flight = self._inflight.get(key)
        hit: Hit = "inflight"
        if flight is None:
            flight, hit = self._start(key, call), "miss"
        if self._abandoned.get(key) is flight:
            del self._abandoned[key]  # wanted again
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task), hit
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                self._abandon(key, flight)

    async def aclose(self) -> None:
        """Cancel every call in flight (at shutdown)."""
        tasks = [f.task for f in self._inflight.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, key: str, call: Callable[[], Awaitable[Scored]]) -> _Flight:
        flight = _Flight(asyncio.ensure_future(call()))
        self._inflight[key] = flight
        flight.task.add_done_callback(lambda task: self._finished(key, flight))
        return flight

    def _finished(self, key: str, flight: _Flight) -> None:
        if self._inflight.get(key) is flight:
            del self._inflight[key]
        late = self._abandoned.get(key) is flight
        if late:
            del self._abandoned[key]
        task = flight.task
        if task.cancelled():
            return
        if task.exception() is not None:  # retrieved here, so an unawaited call does not warn
            if late:
                self._on_late("failed")
            return
        result = task.result()
        self._store(key, result)
        if late:
            self._on_late("cached" if self.size > 0 and result.status is ItemStatus.ok else "failed")

    def _abandon(self, key: str, flight: _Flight) -> None:
        self._abandoned[key] = flight
        while len(self._abandoned) > self.keep_late:
            old_key, old = self._abandoned.popitem(last=False)
            if self._inflight.get(old_key) is old:
                del self._inflight[old_key]  # a new caller of this key starts a fresh call
            old.task.cancel()
            self._on_late("cancelled")

    def _store(self, key: str, result: Scored) -> None:
        if self.size <= 0 or result.status is not ItemStatus.ok:
            return
        self._done[key] = result
        self._done.move_to_end(key)
        while len(self._done) > self.size:
            self._done.popitem(last=False)
