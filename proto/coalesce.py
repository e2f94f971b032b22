"""Coalescer: concurrent small score calls to one service, gathered into batched calls.

Callers that score one sample at a time (OpenRLHF and slime send one HTTP request per sample,
verl's reward loop awaits one `compute_score` per sample) would otherwise cost one request each.
The first call opens a window of `window_s`; every call that arrives before it closes, or until
`max_batch` items are waiting, rides in the same `RewardClient.score` call. While `max_in_flight`
batches are already out, the next one keeps filling until one comes back: under load the batches
grow with the service's latency instead of the service drowning in small calls; `max_in_flight`
is capped at the service's own max_concurrency (from /v1/info), since a batch beyond what it scores
at once only waits there, where later callers can no longer join it. For a service that scores one
request at a time, a batch that leaves early holds up everyone queued behind it for a whole call:
its window stretches to half its recent call time (at most LINGER_MAX_S), so a burst goes out as one
call and a lone caller waits at most that much longer. A caller waits at most the window plus two
batch round trips. Image ids are content hashes, so merging is safe.

Coalescing needs the callers on one event loop: `shared` keeps one object (a client, its
coalescers) per loop and key, and `run_sync` gives synchronous callers, from any thread, one
loop of the process to share.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from proto.client import RewardClient
from proto.models import ImageData, ItemDetail, ScoreItem, ServiceLimits

Result = tuple[list[float | None], list[ItemDetail]]
T = TypeVar("T")
LINGER_MAX_S = 0.1


class Coalescer:
    """Batch concurrent `score` calls to `client` (one event loop; create one per loop).

    Args:
        client: the service's client; it splits over the service's max_batch by itself.
        params: sent with every batch (callers that need other params need another Coalescer).
        window_s: how long the first waiting call holds the batch open.
        max_batch: flush as soon as this many items wait (default: the service's max_batch).
        max_in_flight: batched calls out at once; more callers wait for one to come back.
        on_batch: called with the item count of each batched call (metrics).
    """

    def __init__(self, client: RewardClient, params: Mapping[str, Any] | None = None, *,
                 window_s: float = 0.005, max_batch: int | None = None,
                 max_in_flight: int = 4, on_batch: Callable[[int], None] | None = None):
        self.client = client
        self.params = dict(params or {})
        self.window_s = window_s
        self._max_batch = max_batch
        self._pending: list[tuple[list[ScoreItem], Mapping[str, ImageData], asyncio.Future]] = []
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self.batches = 0  # batched calls sent
        self._on_batch = on_batch
        self.max_in_flight = max_in_flight
        self._in_flight = 0
        self._call_s: float | None = None  # recent batched-call time (moving average), for _window

    async def score(self, items: Sequence[ScoreItem],
                    images: Mapping[str, ImageData] | None = None) -> Result:
        """Rewards and details for `items`, in order, scored together with whoever else is waiting."""
        if not items:
            return [], []
        if self._max_batch is None:  # a crowd of first callers shares one /v1/info (the client's)
            self.adopt((await self.client.info()).limits)
        return await self.submit(items, images)

    def adopt(self, limits: ServiceLimits) -> None:
        """Fit the service's limits: its max_batch unless one was given, and its concurrency."""
        if self._max_batch is None:
            self._max_batch = limits.max_batch
        self.max_in_flight = min(self.max_in_flight, limits.max_concurrency)

    def submit(self, items: Sequence[ScoreItem],
               images: Mapping[str, ImageData] | None = None) -> asyncio.Future:
        """`score` without a coroutine: queue `items` now, get the future of their Result.

        For callers that fan one request out to several coalescers: awaiting the futures (one
        `asyncio.gather`) costs no task per coalescer, which is a visible share of a gateway
        request's CPU. Needs `max_batch` known (given, or read by an earlier `score`).
        """
        if self._max_batch is None:
            raise RuntimeError("Coalescer.submit needs max_batch: pass it, or call score() first")
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        if not items:
            future.set_result(([], []))
            return future
        self._pending.append((list(items), images or {}, future))
        self._count += len(items)
        if self._count >= self._max_batch:
            self._flush()
        elif self._timer is None:  # the window runs from the first item of the batch
            self._timer = loop.call_later(self._window(), self._flush)
        return future

    def _window(self) -> float:
        if self.max_in_flight > 1 or self._call_s is None:
            return self.window_s
        return max(self.window_s, min(self._call_s / 2, LINGER_MAX_S))

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending or (self._in_flight >= self.max_in_flight and self._count < self._max_batch):
            return  # the next batch leaves when one in flight comes back (see _sent)
        batch, self._pending, self._count = self._pending, [], 0
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._in_flight -= 1
        if self._pending and self._timer is None:
            self._flush()

    async def _send(self, batch) -> None:
        self.batches += 1
        items = [it for its, _, _ in batch for it in its]
        if self._on_batch is not None:
            self._on_batch(len(items))
        images: dict[str, ImageData] = {}
        for _, table, _ in batch:
            images.update(table)
        started = time.monotonic()
        try:
            response = await self.client.score(items, images=images, params=self.params)
            took = time.monotonic() - started
            self._call_s = took if self._call_s is None else 0.8 * self._call_s + 0.2 * took
        except Exception as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for its, _, future in batch:
            end = start + len(its)
            if not future.done():
                future.set_result((response.rewards[start:end], response.details[start:end]))
            start = end


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future]] = (
    weakref.WeakKeyDictionary()
)


async def shared(key: str, build: Callable[[], Awaitable[T]]) -> T:
    """What `build()` makes for `key` on the running loop, built once and kept with the loop.

    Concurrent first callers wait for the same build; a failed build is not kept, so the next
    call builds again.
    """
    built = _SHARED.setdefault(asyncio.get_running_loop(), {})
    future = built.get(key)
    if future is None:
        future = built[key] = asyncio.ensure_future(build())
    try:
        return await asyncio.shield(future)
    except Exception:
        if built.get(key) is future:
            del built[key]
        raise


_LOOP: dict[int, asyncio.AbstractEventLoop] = {}  # by process id: a forked child starts its own
_LOOP_LOCK = threading.Lock()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on the process's shared loop (a daemon thread) and return its result.

    Synchronous callers in any thread then share that loop's clients and coalescers, so their
    concurrent calls still go out as batches, and connections live across calls.
    """
    with _LOOP_LOCK:
        loop = _LOOP.get(os.getpid())
        if loop is None:
            loop = _LOOP[os.getpid()] = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rewardstack-sync", daemon=True).start()
    if threading.current_thread().name == "rewardstack-sync":
        coro.close()
        raise RuntimeError("run_sync called from its own loop's thread: await the coroutine instead")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()
