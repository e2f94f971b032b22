"""A request's deadline stops its math: finished items scored, the rest timeouts, workers freed."""

import asyncio
import time

import httpx
import pytest

from proto.models import ItemStatus, ScoreItem, ScoreResponse
from services.common.app import create_app
from services.common.scoring import Batch
from services.math_equiv.pool import DEADLINE, WorkerPool
from services.math_equiv.scorer import MathEquivParams, MathEquivScorer
from services.math_equiv.settings import MathEquivSettings
from tests.helpers import serve_app, wait_until
from tests.services.math_equiv.test_timeouts import PATHOLOGICAL, wait_until_full

# Far above every deadline below: the deadline, not the time limit, is what stops the workers.
LIMIT_S = 60.0
HANG = PATHOLOGICAL["huge_exponent"]


@pytest.fixture(scope="module")
def scorer():
    s = MathEquivScorer(MathEquivSettings(workers=2, time_limit_s=LIMIT_S))
    s.load()
    yield s
    s.close()


def items(*pairs):
    return [ScoreItem(completion=f"<answer>{a}</answer>", reference=r) for a, r in pairs]


def score_by(scorer, deadline_s, *pairs):
    batch = Batch(items(*pairs), {}, MathEquivParams(), time.monotonic() + deadline_s)
    return asyncio.run(asyncio.wait_for(scorer.score(batch), 10 * deadline_s))


def test_finished_items_are_scored_and_the_stuck_one_is_a_timeout(scorer):
    wait_until_full(scorer.pool)
    killed = scorer.pool.events["deadline_kills"]
    got = score_by(scorer, 1.5, (HANG, "1"), ("\\frac{1}{2}", "0.5"), ("2", "3"))
    assert [r.reward for r in got] == [None, 1.0, 0.0]
    assert got[0].status == ItemStatus.timeout and got[0].reason.startswith("deadline:")
    # The worker is killed as the answer leaves, not before it.
    wait_until(lambda: scorer.pool.events["deadline_kills"] == killed + 1, "the stuck worker killed")


def test_items_still_waiting_for_a_worker_are_never_sent(scorer):
    wait_until_full(scorer.pool)
    killed = scorer.pool.events["deadline_kills"]
    got = score_by(scorer, 1.0, *[(HANG, "1")] * 3)
    assert [r.status for r in got] == [ItemStatus.timeout] * 3
    # Two workers were busy and are killed; the third item never reached one.
    wait_until(lambda: scorer.pool.events["deadline_kills"] >= killed + 2, "both stuck workers killed")
    wait_until_full(scorer.pool)
    assert scorer.pool.events["deadline_kills"] == killed + 2


def test_workers_are_replaced_and_the_next_request_scores(scorer):
    wait_until_full(scorer.pool)
    before = set(scorer.pool.pids())
    score_by(scorer, 0.5, (HANG, "1"), (HANG, "1"))
    wait_until_full(scorer.pool)
    assert not before & set(scorer.pool.pids())
    again = score_by(scorer, 30, *[(str(i), str(i)) for i in range(6)])
    assert [r.reward for r in again] == [1.0] * 6


def test_pool_run_returns_deadline_and_replaces_the_worker():
    pool = WorkerPool(1, time_limit_s=LIMIT_S)
    pool.start()
    try:
        [pid] = pool.pids()
        assert pool.run(("equiv", ("1",), f"${HANG}$"), time.monotonic() + 0.3) == DEADLINE
        assert pool.run(("equiv", ("2",), "$\\sqrt{4}$")) == ("ok", 1.0, None)
        assert pool.pids() != [pid]
        replacement = pool.pids()
        assert pool.run(("equiv", ("2",), "2"), time.monotonic() - 1) == DEADLINE
        assert pool.pids() == replacement  # not sent, so nothing to kill
        assert pool.events["deadline_kills"] == 1
    finally:
        pool.close()


def test_over_http_the_answer_carries_finished_items_and_timeouts():
    settings = MathEquivSettings(workers=2, time_limit_s=LIMIT_S)
    with serve_app(create_app(MathEquivScorer(settings), settings)) as url:
        resp = httpx.post(f"{url}/v1/score", timeout=30, json={
            "deadline_ms": 1500,
            "items": [{"completion": f"<answer>{HANG}</answer>", "reference": "1"},
                      {"completion": "<answer>4</answer>", "reference": "4"}]})
    body = ScoreResponse.model_validate_json(resp.content)
    assert body.rewards == [None, 1.0]
    assert [d.status for d in body.details] == [ItemStatus.timeout, ItemStatus.ok]
