"""proto.coalesce.Coalescer on a scripted client: order, image tables, max_batch, and shared failures;
and what lets per-sample callers coalesce: one object per event loop, one loop for sync callers."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from proto.client import RewardServiceError
from proto.coalesce import Coalescer, run_sync, shared
from proto.models import ImageData, ItemDetail, ScoreItem, ScoreResponse


class ScriptedClient:
    """Answers each item with float(completion); records each batch it was sent."""

    def __init__(self, fail: bool = False):
        self.batches: list[tuple[list[ScoreItem], dict]] = []
        self.fail = fail

    async def score(self, items, images=None, params=None):
        self.batches.append((list(items), dict(images or {})))
        await asyncio.sleep(0)
        if self.fail:
            raise RewardServiceError("svc", "http://svc", "down")
        return ScoreResponse(rewards=[float(it.completion) for it in items],
                             details=[ItemDetail() for _ in items], service="svc", version="1", elapsed_ms=0)


def _run(coalescer: Coalescer, n: int):
    async def go():
        img = {"k": ImageData(b64="AAAA")}
        return await asyncio.gather(*(coalescer.score([ScoreItem(completion=str(i))], img if i == 3 else None)
                                      for i in range(n)), return_exceptions=True)
    return asyncio.run(go())


def test_concurrent_calls_share_one_batch_and_get_their_own_answers_back():
    client = ScriptedClient()
    out = _run(Coalescer(client, window_s=0.05, max_batch=100), 10)
    assert [r[0] for r in out] == [[float(i)] for i in range(10)]
    assert len(client.batches) == 1 and client.batches[0][1] == {"k": ImageData(b64="AAAA")}


def test_max_batch_flushes_without_waiting_for_the_window():
    client = ScriptedClient()
    _run(Coalescer(client, window_s=30.0, max_batch=4), 8)  # a 30 s window would hang the test
    assert [len(b[0]) for b in client.batches] == [4, 4]


def test_a_failed_batch_fails_every_caller_in_it():
    out = _run(Coalescer(ScriptedClient(fail=True), window_s=0.01, max_batch=100), 5)
    assert all(isinstance(r, RewardServiceError) for r in out)


def test_empty_call_sends_nothing():
    client = ScriptedClient()
    assert asyncio.run(Coalescer(client, max_batch=4).score([])) == ([], [])
    assert client.batches == []


@pytest.mark.parametrize("in_flight", [1, 2])
def test_callers_beyond_the_in_flight_limit_wait_and_still_all_get_answers(in_flight):
    client = ScriptedClient()
    out = _run(Coalescer(client, window_s=0.0, max_batch=3, max_in_flight=in_flight), 20)
    assert [r[0] for r in out] == [[float(i)] for i in range(20)]
    assert sum(len(b[0]) for b in client.batches) == 20


def test_submit_queues_without_a_task_and_fans_out_to_several_coalescers():
    a, b = ScriptedClient(), ScriptedClient()

    async def go():
        ca, cb = Coalescer(a, window_s=0.01, max_batch=100), Coalescer(b, window_s=0.01, max_batch=100)
        futures = [c.submit([ScoreItem(completion=str(i))]) for i in range(5) for c in (ca, cb)]
        assert all(isinstance(f, asyncio.Future) and not f.done() for f in futures)
        return await asyncio.gather(*futures)

    out = asyncio.run(go())
    assert [r[0] for r in out] == [[float(i)] for i in range(5) for _ in range(2)]
    assert [len(x[0]) for x in a.batches] == [5] and [len(x[0]) for x in b.batches] == [5]


def test_submit_of_nothing_is_answered_at_once_and_sends_nothing():
    client = ScriptedClient()

    async def go():
        return await Coalescer(client, max_batch=4).submit([])

    assert asyncio.run(go()) == ([], [])
    assert client.batches == []


def test_submit_needs_max_batch_known():
    async def go():
        Coalescer(ScriptedClient()).submit([ScoreItem(completion="1")])

    with pytest.raises(RuntimeError, match="max_batch"):
        asyncio.run(go())


def test_shared_builds_once_per_loop_for_concurrent_callers_and_forgets_a_failure():
    built = []

    async def build():
        built.append(asyncio.get_running_loop())
        await asyncio.sleep(0.01)
        if len(built) == 1:
            raise RuntimeError("first build fails")
        return object()

    async def go():
        first = await asyncio.gather(*(shared("thing", build) for _ in range(4)), return_exceptions=True)
        again = await asyncio.gather(*(shared("thing", build) for _ in range(4)))
        return first, again

    first, again = asyncio.run(go())
    assert all(isinstance(e, RuntimeError) for e in first)  # four callers, one failed build
    assert len({id(x) for x in again}) == 1 and len(built) == 2  # then built once more, and kept
    asyncio.run(go())
    assert len(built) == 3  # a new loop builds its own, once


def test_run_sync_callers_in_many_threads_meet_on_one_loop_and_coalesce():
    client = ScriptedClient()

    async def one(i: int):
        coalescer = await shared("coalescer", lambda: _coalescer(client))
        return await coalescer.score([ScoreItem(completion=str(i))])

    with ThreadPoolExecutor(8) as pool:
        out = list(pool.map(lambda i: run_sync(one(i)), range(8)))
    assert [r[0] for r in out] == [[float(i)] for i in range(8)]
    assert len(client.batches) == 1


async def _coalescer(client) -> Coalescer:
    return Coalescer(client, window_s=0.3, max_batch=8)


class SlowClient(ScriptedClient):
    """A service that takes 0.2 s per call."""

    async def score(self, items, images=None, params=None):
        await asyncio.sleep(0.2)
        return await super().score(items, images, params)


@pytest.mark.parametrize("in_flight", [1, 2])
def test_a_one_at_a_time_service_gets_a_burst_as_one_call(in_flight):
    client = SlowClient()

    async def go():
        coalescer = Coalescer(client, window_s=0.005, max_batch=100, max_in_flight=in_flight)
        await coalescer.score([ScoreItem(completion="0")])  # its call time is now known
        client.batches.clear()

        async def later(i: int):
            await asyncio.sleep(0.015 * i)  # four callers over 45 ms, each well past the 5 ms window
            return await coalescer.score([ScoreItem(completion=str(i))])

        return await asyncio.gather(*(later(i) for i in range(4)))

    out = asyncio.run(go())
    assert [r[0] for r in out] == [[float(i)] for i in range(4)]
    if in_flight == 1:  # the window stretched to half of 0.2 s: one call, not one then the rest
        assert len(client.batches) == 1
    else:  # a service that scores calls side by side gets them as they come
        assert len(client.batches) > 1
