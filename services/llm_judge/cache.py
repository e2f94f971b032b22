"""A bounded cache of judged items that also merges identical calls still in flight.

GRPO samples K completions per prompt and short answers repeat, often within one batch: the
duplicates arrive together, before any call has finished, so a cache of finished results alone
would still pay K times. Here the first caller owns the call and the others await its future.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Literal

from proto.models import ItemStatus
from services.common.scoring import Scored

Hit = Literal["miss", "done", "inflight"]


def cache_key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class JudgeCache:
    """LRU of finished scores (`size` entries; 0 keeps none) plus the calls now in flight.

    Only `ok` results are kept: an error or timeout may pass, and the next request should retry.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._done: OrderedDict[str, Scored] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[Scored]] = {}

    def __len__(self) -> int:
        return len(self._done)

    async def get_or_call(self, key: str, call: Callable[[], Awaitable[Scored]]) -> tuple[Scored, Hit]:
        while True:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key], "done"
            fut = self._inflight.get(key)
            if fut is None:
                return await self._own(key, call), "miss"
            try:
                return await asyncio.shield(fut), "inflight"
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not fut.cancelled() or (task is not None and task.cancelling()):
                    raise
                # The owner was cancelled (its request went away): this caller takes over.

    async def _own(self, key: str, call: Callable[[], Awaitable[Scored]]) -> Scored:
        fut: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await call()
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved here, so an unawaited future does not warn
            raise
        else:
            fut.set_result(result)
            self._store(key, result)
            return result
        finally:
            self._inflight.pop(key, None)

    def _store(self, key: str, result: Scored) -> None:
        if self.size <= 0 or result.status is not ItemStatus.ok:
            return
        self._done[key] = result
        self._done.move_to_end(key)
        while len(self._done) > self.size:
            self._done.popitem(last=False)
