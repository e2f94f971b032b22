"""The hard per-item time limit: pathological answers time out, their workers are replaced, the
service keeps answering, and a crashed worker costs its item alone."""

import asyncio
import os
import signal
import threading
import time

import pytest

from proto.models import ItemStatus, ScoreItem
from services.common.scoring import Batch
from services.math_equiv.pool import CRASHED, WorkerPool
from services.math_equiv.scorer import MathEquivParams, MathEquivScorer
from services.math_equiv.settings import MathEquivSettings
from tests.helpers import await_until, wait_until

LIMIT_S = 1.0

PATHOLOGICAL = {
    "huge_exponent": "9^{9^{9^{9}}}",
    "enormous_factorial": "(10^{10})!",
    "huge_tower_of_twos": "2^{2^{40}}",
    "deeply_nested_fractions": "\\frac{1}{" * 3000 + "2" + "}" * 3000,
}


@pytest.fixture(scope="module")
def scorer():
    # The answer-length cap would turn the 27k-character nested fraction into a plain 0.0.
    settings = MathEquivSettings(workers=2, time_limit_s=LIMIT_S, max_answer_chars=100_000)
    s = MathEquivScorer(settings)
    s.load()
    yield s
    s.close()


def batch(*pairs):
    items = [ScoreItem(completion=f"<answer>{a}</answer>", reference=r) for a, r in pairs]
    return Batch(items, {}, MathEquivParams())


def wait_until_full(pool: WorkerPool) -> None:
    wait_until(lambda: pool.alive == pool.size, "every worker (re)started")


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_answer_is_null_timeout(scorer, name):
    wait_until_full(scorer.pool)
    before = scorer.pool.events["timeouts"]
    started = time.monotonic()
    [result] = asyncio.run(scorer.score(batch((PATHOLOGICAL[name], "1"))))
    elapsed = time.monotonic() - started
    assert (result.reward, result.status) == (None, ItemStatus.timeout)
    assert "time limit" in result.reason
    assert elapsed < 10 * LIMIT_S  # a hang guard: uncut, these items would run for hours
    assert scorer.pool.events["timeouts"] == before + 1


def test_other_requests_are_answered_while_one_hangs():
    # A limit far above what five quick items take, so "before the hanging one ends" is an order
    # of events on any machine; closing the pool ends the hanging item.
    s = MathEquivScorer(MathEquivSettings(workers=2, time_limit_s=300.0))
    s.load()

    async def scenario():
        hanging = asyncio.create_task(s.score(batch((PATHOLOGICAL["huge_exponent"], "1"))))
        await await_until(lambda: s.pool.idle == 1, "the hanging item holds one worker")
        answered = [(await s.score(batch((f"\\frac{{{2 * i}}}{{2}}", str(i)))))[0].reward for i in range(5)]
        done_before = hanging.done()
        s.close()
        return answered, done_before, await hanging

    try:
        answered, hanging_done_before, [hung] = asyncio.run(scenario())
    finally:
        s.close()
    assert answered == [1.0] * 5
    assert not hanging_done_before  # all five came back on the free worker while it hung
    assert hung.reward is None


def test_pool_is_healthy_after_a_batch_of_pathological_items(scorer):
    pairs = [(p, "1") for p in PATHOLOGICAL.values()] + [("\\sqrt{9}", "3"), ("2", "3")]
    results = asyncio.run(scorer.score(batch(*pairs)))
    assert [r.status for r in results[:4]] == [ItemStatus.timeout] * 4
    assert [r.reward for r in results[4:]] == [1.0, 0.0]
    wait_until_full(scorer.pool)
    assert scorer.not_ready_reason() is None
    assert all(os.path.exists(f"/proc/{pid}") for pid in scorer.pool.pids())
    again = asyncio.run(scorer.score(batch(*[(str(i), str(i)) for i in range(10)])))
    assert [r.reward for r in again] == [1.0] * 10


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_crashed_worker_is_an_error_for_its_item_and_is_replaced(start_method):
    pool = WorkerPool(1, time_limit_s=10.0, start_method=start_method)
    pool.start()
    try:
        [pid] = pool.pids()
        result = {}
        runner = threading.Thread(
            target=lambda: result.setdefault("r", pool.run(("equiv", ("1",), "$9^{9^{9^{9}}}$")))
        )
        runner.start()
        wait_until(lambda: pool.idle == 0, "the worker has taken the item")
        os.kill(pid, signal.SIGKILL)
        runner.join(timeout=60)
        assert result["r"] == CRASHED
        assert pool.run(("equiv", ("2",), "$\\sqrt{4}$")) == ("ok", 1.0, None)
        assert pool.events["crashes"] == 1
        assert pool.pids() != [pid]
    finally:
        pool.close()


def test_closed_pool_stops_its_workers():
    pool = WorkerPool(1, time_limit_s=LIMIT_S)
    pool.start()
    [pid] = pool.pids()
    pool.close()
    assert pool.alive == 0
    assert not os.path.exists(f"/proc/{pid}")
