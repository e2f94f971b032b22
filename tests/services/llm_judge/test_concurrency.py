"""The judge's concurrency parts on their own: the merging cache, the rate and spend limits, the pool."""

import asyncio
from collections import Counter

import pytest

from proto.models import ItemStatus
from services.common.scoring import Scored
from services.llm_judge.cache import JudgeCache
from services.llm_judge.limits import Budget, RateLimiter, Usage
from services.llm_judge.pool import ClientPool, hedge
from tests.helpers import hang


class TestCache:
    def test_identical_calls_in_flight_share_one(self):
        cache, calls = JudgeCache(16), []

        async def call():
            calls.append(1)
            await asyncio.sleep(0.05)
            return Scored.ok(0.5)

        async def go():
            return await asyncio.gather(*(cache.get_or_call("k", call) for _ in range(8)))

        got = asyncio.run(go())
        assert len(calls) == 1
        assert [h for _, h in got].count("miss") == 1 and [h for _, h in got].count("inflight") == 7
        assert {r.reward for r, _ in got} == {0.5}
        assert asyncio.run(cache.get_or_call("k", call))[1] == "done" and len(calls) == 1

    def test_failures_are_shared_in_flight_but_not_kept(self):
        cache, calls = JudgeCache(16), []

        async def call():
            calls.append(1)
            await asyncio.sleep(0.01)
            return Scored.error("upstream: HTTP 500")

        async def go():
            return await asyncio.gather(*(cache.get_or_call("k", call) for _ in range(3)))

        assert all(r.status is ItemStatus.error for r, _ in asyncio.run(go()))
        asyncio.run(go())
        assert len(calls) == 2 and len(cache) == 0

    def test_exception_reaches_every_waiter(self):
        cache = JudgeCache(16)

        async def call():
            await asyncio.sleep(0.01)
            raise RuntimeError("refused")

        async def go():
            return await asyncio.gather(*(cache.get_or_call("k", call) for _ in range(3)),
                                        return_exceptions=True)

        assert all(isinstance(e, RuntimeError) for e in asyncio.run(go()))

    def test_call_runs_on_for_the_others_when_its_first_caller_leaves(self):
        cache, calls = JudgeCache(16), []

        async def go():
            release = asyncio.Event()

            async def call():
                calls.append(1)
                await release.wait()
                return Scored.ok(1.0)

            owner = asyncio.create_task(cache.get_or_call("k", call))
            while not calls:  # the owner's call is under way
                await asyncio.sleep(0)
            waiter = asyncio.create_task(cache.get_or_call("k", call))
            await asyncio.sleep(0)  # the waiter now waits on the owner's call
            owner.cancel()
            release.set()
            return await waiter

        assert asyncio.run(go()) == (Scored.ok(1.0), "inflight") and len(calls) == 1

    def test_bounded_lru(self):
        cache = JudgeCache(2)

        async def fill():
            for key in ("a", "b", "a", "c"):  # "a" used again, so "b" is the oldest
                await cache.get_or_call(key, lambda: _ok())

        asyncio.run(fill())
        assert len(cache) == 2
        assert asyncio.run(cache.get_or_call("a", _fail))[1] == "done"
        with pytest.raises(AssertionError):
            asyncio.run(cache.get_or_call("b", _fail))


class TestHedge:
    """hedge(first, second, after_s) with plain coroutines in place of judge calls."""

    @staticmethod
    def race(first, second, after_s=0.0):
        return asyncio.run(asyncio.wait_for(hedge(first, second, after_s), 10))

    def test_an_answer_in_time_starts_no_second_call(self):
        assert self.race(lambda: _value("a"), _fail, after_s=10) == ("a", 0, False)

    def test_a_failure_in_time_is_raised_without_a_second_call(self):
        with pytest.raises(ValueError):
            self.race(lambda: _raise(ValueError("early")), _fail, after_s=10)

    def test_the_second_wins_when_the_first_hangs_and_the_first_is_cancelled(self):
        cancelled = []

        async def go():
            got = await hedge(lambda: hang(cancelled), lambda: _value("b"), 0.0)
            await asyncio.sleep(0)
            return got, list(cancelled)

        assert asyncio.run(go()) == (("b", 1, True), [True])

    def test_after_the_hedge_a_failure_waits_for_the_other_call(self):
        async def late_failure():
            await asyncio.sleep(0.01)
            raise ValueError("first failed")

        async def later_answer():
            await asyncio.sleep(0.05)
            return "b"

        assert self.race(late_failure, later_answer) == ("b", 1, True)

    def test_both_failing_raises_the_first_failure(self):
        async def fails(message, delay):
            await asyncio.sleep(delay)
            raise ValueError(message)

        with pytest.raises(ValueError, match="first"):
            self.race(lambda: fails("first", 0.01), lambda: fails("second", 0.05))


async def _value(v):
    return v


async def _raise(exc):
    raise exc


async def _ok():
    return Scored.ok(1.0)


async def _fail():
    raise AssertionError("should have been cached")


class TestLimits:
    def test_rate_limiter_holds_calls_to_the_window(self):
        now, started = [0.0], []

        async def sleep(dt):
            now[0] += dt

        limiter = RateLimiter(2, window_s=60.0, clock=lambda: now[0], sleep=sleep)

        async def go():
            for _ in range(5):
                await limiter.acquire()
                started.append(now[0])

        asyncio.run(go())
        assert started == [0.0, 0.0, 60.0, 60.0, 120.0]

    def test_zero_turns_the_limiter_off(self):
        limiter = RateLimiter(0, clock=lambda: 0.0, sleep=_fail)

        async def go():
            await asyncio.gather(*(limiter.acquire() for _ in range(100)))

        asyncio.run(go())

    def test_budget_counts_reported_cost_then_prices(self):
        budget = Budget(0.01)
        assert budget.charge(Usage(100, 10, cost=0.004)) == 0.004 and not budget.exhausted
        assert budget.charge(Usage(100, 10)) is None and budget.unpriced_calls == 1
        budget.charge(Usage(cost=0.006))
        assert budget.exhausted

        priced = Budget(None, prompt_per_mtok=1.0, completion_per_mtok=4.0)
        assert priced.charge(Usage(1_000_000, 500_000)) == pytest.approx(3.0)
        assert not priced.exhausted


class TestClientPool:
    def test_calls_spread_over_small_shards_and_the_cap_holds(self):
        pool = ClientPool("http://127.0.0.1:9", {}, timeout_s=1.0, size=20)

        async def go():
            held, release = [], asyncio.Event()

            async def hold():
                async with pool.slot() as client:
                    held.append(client)
                    await release.wait()

            tasks = [asyncio.create_task(hold()) for _ in range(21)]
            for _ in range(100):  # no I/O: a few turns of the loop let every task that can enter do so
                await asyncio.sleep(0)
            admitted = len(held)
            release.set()
            await asyncio.gather(*tasks)
            await pool.aclose()
            return admitted, Counter(id(c) for c in held[:admitted])

        admitted, per_client = asyncio.run(go())
        assert admitted == 20  # the 21st waited for a slot
        assert len(per_client) == 3 and max(per_client.values()) <= 7
