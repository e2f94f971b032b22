"""The judge never holds a step: slow calls are timeouts at the deadline, cached when they answer,
and optionally hedged. Slow upstream calls block on an event the test sets: no wall-clock waits."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from proto.models import ItemStatus, ScoreResponse
from services.common.app import create_app
from services.common.scoring import Batch
from services.llm_judge.scorer import JudgeParams, LlmJudgeScorer
from tests.helpers import await_until, serve_app
from tests.services.llm_judge.fake_openai import FakeOpenAI, chat, graded, held
from tests.services.llm_judge.support import item, scorer_for, settings_for

HANG_GUARD_S = 30
COST = 0.001


@pytest.fixture
def slow():
    """The event that releases every held call; set at the end whatever happens."""
    event = threading.Event()
    yield event
    event.set()


def slow_when_marked(event: threading.Event):
    """Completions containing SLOW get a held answer; the others answer at once."""
    def reply(body: dict):
        completion, _ = graded(body)
        answer = chat("1", cost=COST)
        return held(answer, event) if "SLOW" in completion else answer
    return reply


def completions(n: int, slow_at: set[int]) -> list:
    return [item(f"<answer>yes</answer> {'SLOW' if i in slow_at else ''} #{i}") for i in range(n)]


def run(scenario):
    return asyncio.run(asyncio.wait_for(scenario(), HANG_GUARD_S))


def late(scorer: LlmJudgeScorer, outcome: str) -> float:
    return scorer.metrics.registry.get_sample_value("llm_judge_late_calls_total", {"outcome": outcome}) or 0


class TestDeadline:
    def test_slow_items_are_timeouts_and_their_late_answers_are_cached(self, fake, slow):
        fake.reset(default=slow_when_marked(slow))
        scorer = scorer_for(fake)
        items = completions(6, slow_at={2, 5})

        async def scenario():
            first = await scorer.score(Batch(items, {}, JudgeParams(), time.monotonic() + 1.0))
            calls = fake.calls
            slow.set()  # the upstream answers the two slow calls now, after the deadline
            await await_until(lambda: late(scorer, "cached") == 2, "both late answers cached")
            again = await scorer.score(Batch(items, {}, JudgeParams(), time.monotonic() + 1.0))
            await scorer.aclose()
            return first, calls, again

        first, calls, again = run(scenario)
        assert [r.reward for r in first] == [1.0, 1.0, None, 1.0, 1.0, None]
        assert {first[i].status for i in (2, 5)} == {ItemStatus.timeout}
        assert first[2].reason.startswith("deadline:")
        assert [r.reward for r in again] == [1.0] * 6
        assert fake.calls == calls == 6  # the retry cost no call at all

    def test_without_keep_late_calls_they_are_cancelled_at_the_deadline(self, fake, slow):
        fake.reset(default=slow_when_marked(slow))
        scorer = scorer_for(fake, keep_late_calls=0)
        items = completions(2, slow_at={1})

        async def scenario():
            first = await scorer.score(Batch(items, {}, JudgeParams(), time.monotonic() + 1.0))
            slow.set()
            again = await scorer.score(Batch(items, {}, JudgeParams(), time.monotonic() + 5.0))
            await scorer.aclose()
            return first, again

        first, again = run(scenario)
        assert [r.reward for r in first] == [1.0, None]
        assert late(scorer, "cancelled") == 1 and late(scorer, "cached") == 0
        assert [r.reward for r in again] == [1.0, 1.0]
        assert fake.calls == 3  # the slow item was asked again

    def test_too_many_late_calls_cancel_the_oldest(self, fake, slow):
        fake.reset(default=slow_when_marked(slow))
        scorer = scorer_for(fake, keep_late_calls=1)
        items = completions(3, slow_at={0, 1, 2})

        async def scenario():
            await scorer.score(Batch(items, {}, JudgeParams(), time.monotonic() + 0.5))
            kept = scorer.cache.late_calls
            slow.set()
            await await_until(lambda: late(scorer, "cached") == 1, "the late answer cached")
            await scorer.aclose()
            return kept

        assert run(scenario) == 1
        assert late(scorer, "cancelled") == 2


class TestHedging:
    def test_a_slow_call_is_hedged_and_the_first_answer_wins(self, fake, slow):
        fake.script(held(chat("0", cost=COST), slow), chat("1", cost=COST))
        scorer = scorer_for(fake, hedge_after_ms=50)

        async def scenario():
            got = await scorer.score(Batch([item()], {}, JudgeParams(), time.monotonic() + 10))
            await scorer.aclose()
            return got

        [got] = run(scenario)
        assert got.reward == 1.0  # the hedge's answer; the held first call was cancelled
        value = scorer.metrics.registry.get_sample_value
        assert value("llm_judge_hedges_total", {"outcome": "sent"}) == 1
        assert value("llm_judge_hedges_total", {"outcome": "won"}) == 1
        assert value("llm_judge_upstream_calls_total", {"status": "cancelled"}) == 1
        # Both calls are paid for: the cancelled one at the winner's price.
        assert value("llm_judge_cost_usd_total") == pytest.approx(2 * COST)
        assert scorer.budget.spent_usd == pytest.approx(2 * COST)

    def test_a_call_answered_in_time_is_not_hedged(self, fake):
        fake.reset(default=chat("1", cost=COST))
        scorer = scorer_for(fake, hedge_after_ms=10_000)

        async def scenario():
            got = await scorer.score(Batch([item()], {}, JudgeParams()))
            await scorer.aclose()
            return got

        assert [r.reward for r in run(scenario)] == [1.0]
        assert fake.calls == 1
        assert scorer.metrics.registry.get_sample_value("llm_judge_hedges_total", {"outcome": "sent"}) is None

    def test_the_hedge_goes_to_the_second_upstream(self, fake, slow):
        second = FakeOpenAI(default=chat("1", cost=COST))
        fake.reset(default=held(chat("0"), slow))
        with serve_app(second.app) as url:
            scorer = scorer_for(fake, hedge_after_ms=50, hedge_base_url=f"{url}/v1")

            async def scenario():
                got = await scorer.score(Batch([item()], {}, JudgeParams()))
                await scorer.aclose()
                return got

            [got] = run(scenario)
        assert got.reward == 1.0
        assert fake.calls == 1 and second.calls == 1
        assert second.requests[0].body == fake.requests[0].body


def test_service_answers_64_items_by_the_deadline_and_counts_the_slow_ones(fake, slow):
    """The heavy-tail batch over HTTP: three calls hang; the other 61 are scored."""
    fake.reset(default=slow_when_marked(slow))
    settings = settings_for(fake)
    items = [it.model_dump() for it in completions(64, slow_at={7, 30, 63})]
    with serve_app(create_app(LlmJudgeScorer(settings), settings)) as url:
        first = ScoreResponse.model_validate_json(httpx.post(
            f"{url}/v1/score", json={"items": items, "deadline_ms": 2000}, timeout=HANG_GUARD_S).content)
        slow.set()
        metrics = httpx.get(f"{url}/metrics").text
        calls = fake.calls
        late_seen = time.monotonic() + HANG_GUARD_S
        while "llm_judge_late_calls_total{outcome=\"cached\"} 3.0" not in httpx.get(f"{url}/metrics").text:
            assert time.monotonic() < late_seen
            time.sleep(0.01)
        again = httpx.post(f"{url}/v1/score", json={"items": items, "deadline_ms": 2000}, timeout=HANG_GUARD_S)
    assert [i for i, r in enumerate(first.rewards) if r is None] == [7, 30, 63]
    assert {first.details[i].status for i in (7, 30, 63)} == {ItemStatus.timeout}
    assert 'rewardstack_item_errors_total{reason="deadline",status="timeout"} 3.0' in metrics
    assert again.json()["rewards"] == [1.0] * 64
    assert fake.calls == calls == 64
