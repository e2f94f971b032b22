"""Pooled HTTP clients for the judge: bound to the running event loop, split into small shards;
and `hedge`, which races a second call against a slow first one.

httpcore's connection pool scans every connection and every queued request each time a request
starts or a response closes, so the CPU one call costs grows with the pool's size: with 32-64
connections the scan costs more than the call's own work. Shards of `SHARD_SIZE` connections keep
the scan short; each call takes the least busy shard, which always has a free connection because
the semaphore admits no more calls than there are connections in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

SHARD_SIZE = 8

T = TypeVar("T")


@dataclass
class _LoopState:
    loop: asyncio.AbstractEventLoop
    clients: list[httpx.AsyncClient]
    busy: list[int]
    slots: asyncio.Semaphore


class ClientPool:
    """At most `size` calls in flight over `ceil(size / SHARD_SIZE)` httpx clients."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout_s: float, size: int) -> None:
        self.base_url, self.headers, self.timeout_s, self.size = base_url, headers, timeout_s, size
        self._state: _LoopState | None = None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[httpx.AsyncClient]:
        """Wait for a free slot, then lend the least busy client for one call."""
        state = self._ensure()
        async with state.slots:
            i = min(range(len(state.busy)), key=state.busy.__getitem__)
            state.busy[i] += 1
            try:
                yield state.clients[i]
            finally:
                state.busy[i] -= 1

    def _ensure(self) -> _LoopState:
        # Clients and semaphores belong to the loop they were made on: the server's loop in
        # production, a fresh one per asyncio.run in tests and benchmarks.
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            shards = math.ceil(self.size / SHARD_SIZE)
            per = math.ceil(self.size / shards)
            clients = [
                httpx.AsyncClient(
                    base_url=self.base_url, headers=self.headers,
                    timeout=httpx.Timeout(self.timeout_s),
                    limits=httpx.Limits(max_connections=per, max_keepalive_connections=per),
                )
                for _ in range(shards)
            ]
            self._state = _LoopState(loop, clients, [0] * shards, asyncio.Semaphore(self.size))
        return self._state

    async def aclose(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            for client in state.clients:
                await client.aclose()

    def close(self) -> None:
        """Close from any thread: the framework calls it from a worker thread at shutdown."""
        state = self._state
        if state is None or state.loop.is_closed():
            self._state = None
            return  # clients whose loop is gone have no live sockets left to close politely
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is state.loop:
                state.loop.create_task(self.aclose())
                return
        if state.loop.is_running():
            done = asyncio.run_coroutine_threadsafe(self.aclose(), state.loop)
            with contextlib.suppress(Exception):
                done.result(timeout=5)


async def hedge(first: Callable[[], Awaitable[T]], second: Callable[[], Awaitable[T]],
                after_s: float) -> tuple[T, int, bool]:
    """`first()`; if it has no answer after `after_s`, `second()` as well, and the first success wins.

    The other call is cancelled. Returns (result, 0 or 1 for which call gave it, whether the second
    was started). A failure before `after_s` is raised at once (the call's own retries have run);
    after it, a failed call leaves the other to finish, and only when both fail is the first
    failure raised.
    """
    tasks = [asyncio.ensure_future(first())]
    try:
        done, _ = await asyncio.wait(tasks, timeout=after_s)
        if not done:
            tasks.append(asyncio.ensure_future(second()))
        pending, failure = set(tasks), None
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=tasks.index):
                if task.exception() is None:
                    return task.result(), tasks.index(task), len(tasks) == 2
                failure = failure or task.exception()
        raise failure
    finally:
        for task in tasks:
            task.cancel()
