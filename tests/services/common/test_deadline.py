"""A request's deadline_ms: the framework answers by it, scorers' shared helpers stop at it."""

import asyncio
import threading
import time

import httpx
import pytest

from proto.deadline import MARGIN_S
from proto.models import ItemStatus, ScoreItem, ScoreResponse, ServiceInfo
from proto.rewards import RewardEntry
from services.common.scoring import (
    DeadlinePassed,
    Scored,
    check_deadline,
    deadline_scope,
    gather_until,
    score_each,
    score_until,
)
from tests.helpers import hang, serve_app
from tests.services.common import toy
from tests.services.common.toy import make_app

HANG_GUARD_S = 20  # far above any deadline here: only a service that ignores it gets near it


@pytest.fixture
def release():
    toy.RELEASE.clear()
    yield toy.RELEASE
    toy.RELEASE.set()


def post(url, body):
    return httpx.post(f"{url}/v1/score", json=body, timeout=HANG_GUARD_S)


class TestHelpers:
    def test_score_each_stops_at_the_deadline(self):
        def slow_first(item: ScoreItem) -> Scored:
            if item.completion == "slow":
                time.sleep(0.1)
            return Scored.ok(1.0)

        items = [ScoreItem(completion=c) for c in ("slow", "a", "b")]
        with deadline_scope(time.monotonic() + 0.05):
            got = score_each(items, slow_first)
        assert [r.status for r in got] == [ItemStatus.ok, ItemStatus.timeout, ItemStatus.timeout]
        assert got[1].reason.startswith("deadline:")

    def test_score_each_without_a_deadline_scores_everything(self):
        got = score_each([ScoreItem(completion="a")] * 3, lambda it: Scored.ok(1.0))
        assert [r.reward for r in got] == [1.0, 1.0, 1.0]

    def test_check_deadline_raises_only_past_it(self):
        check_deadline()  # no deadline in scope
        with deadline_scope(time.monotonic() + 60):
            check_deadline()
        with deadline_scope(time.monotonic() - 1), pytest.raises(DeadlinePassed):
            check_deadline()

    def test_gather_until_keeps_finished_items_and_cancels_the_rest(self):
        cancelled = []

        async def quick():
            await asyncio.sleep(0)
            return Scored.ok(0.5)

        async def scenario():
            got = await gather_until(time.monotonic() + 0.05, [quick(), hang(cancelled), quick()])
            await asyncio.sleep(0)  # let the cancellation land
            return got, list(cancelled)  # before asyncio.run cancels whatever is left

        got, cancelled_in_time = asyncio.run(asyncio.wait_for(scenario(), HANG_GUARD_S))
        assert [r.reward for r in got] == [0.5, None, 0.5]
        assert got[1].status == ItemStatus.timeout
        assert cancelled_in_time == [True]

    def test_gather_until_past_deadline_still_returns_what_needs_no_wait(self):
        async def ready():
            return Scored.ok(1.0)

        got = asyncio.run(gather_until(time.monotonic() - 1, [ready(), asyncio.sleep(5)]))
        assert [r.status for r in got] == [ItemStatus.ok, ItemStatus.timeout]

    def test_gather_until_raises_or_returns_exceptions_like_gather(self):
        async def boom():
            raise ValueError("x")

        with pytest.raises(ValueError):
            asyncio.run(gather_until(None, [boom()]))
        [got] = asyncio.run(gather_until(None, [boom()], return_exceptions=True))
        assert isinstance(got, ValueError)

    def test_score_until_answers_timeouts_when_a_helper_stops_the_work(self):
        async def stopped():
            raise DeadlinePassed("an image decoder found the deadline passed")

        got = asyncio.run(score_until(time.monotonic() + 60, 2, stopped))
        assert [r.status for r in got] == [ItemStatus.timeout] * 2

    def test_score_until_leaves_an_overrunning_scorer_behind(self):
        got = asyncio.run(asyncio.wait_for(
            score_until(time.monotonic() + 0.01, 3, lambda: asyncio.Event().wait()), HANG_GUARD_S))
        assert [r.status for r in got] == [ItemStatus.timeout] * 3

    def test_score_until_lets_a_scorers_own_timeout_error_through(self):
        async def failing():
            raise TimeoutError("the scorer's own")

        with pytest.raises(TimeoutError, match="own"):
            asyncio.run(score_until(time.monotonic() + 60, 1, failing))


@pytest.fixture(scope="module")
def url():
    with serve_app(make_app(max_concurrency=1)) as base:
        yield base


class TestService:
    def test_info_says_deadlines_are_honoured(self, url):
        info = ServiceInfo.model_validate_json(httpx.get(f"{url}/v1/info").content)
        assert info.limits.deadline_grace_ms is not None and info.limits.deadline_grace_ms > 0

    @pytest.mark.parametrize("bad", [0, -5, 1.5, "soon", True, "3000"])
    def test_bad_deadline_is_a_validation_error(self, url, bad):
        resp = post(url, {"items": [{"completion": "len:a"}], "deadline_ms": bad})
        assert resp.status_code == 422
        assert "deadline_ms" in resp.json()["error"]["message"]

    def test_deadline_not_reached_changes_nothing(self, url):
        resp = post(url, {"items": [{"completion": "len:ab"}], "deadline_ms": 60_000})
        assert resp.json()["rewards"] == [2.0]

    def test_a_stuck_scorer_is_answered_at_the_deadline(self, url, release):
        resp = post(url, {"items": [{"completion": "len:ab"}, {"completion": "hold"}],
                          "deadline_ms": 200})
        body = ScoreResponse.model_validate_json(resp.content)
        assert body.rewards == [None, None]
        assert {d.status for d in body.details} == {ItemStatus.timeout}
        assert body.details[0].reason.startswith("deadline:")
        release.set()
        # The abandoned thread finishes and the next request is scored as usual.
        assert post(url, {"items": [{"completion": "len:abc"}]}).json()["rewards"] == [3.0]

    def test_deadline_passed_in_the_queue_is_answered_unscored(self, url, release):
        with httpx.Client(timeout=HANG_GUARD_S) as http:
            holder = threading.Thread(
                target=http.post, args=(f"{url}/v1/score",), kwargs={"json": {"items": [{"completion": "hold"}]}}
            )
            holder.start()  # takes the only scoring slot until released
            time.sleep(0.2)
            answer = {}
            queued = threading.Thread(target=lambda: answer.setdefault("r", post(
                url, {"items": [{"completion": "len:a"}], "deadline_ms": 100})))
            queued.start()
            time.sleep(0.3)  # its 100 ms pass while it waits behind the holder
            release.set()
            holder.join(HANG_GUARD_S)
            queued.join(HANG_GUARD_S)
        [detail] = answer["r"].json()["details"]
        assert detail["status"] == "timeout" and "queued" in detail["reason"]

    def test_a_reward_entrys_client_sends_what_is_left_of_its_timeout(self, url):
        async def left(timeout_s):
            # The client the TRL helper, the verl adapter and the gateway build from an entry.
            async with RewardEntry(name="toy", url=url, timeout_s=timeout_s).client() as client:
                return (await client.score([{"completion": "left"}])).rewards[0]

        sent = asyncio.run(left(10.0))
        assert 0 < sent <= (10.0 - MARGIN_S) * 1000
        assert sent > (10.0 - MARGIN_S) * 1000 - 5_000  # the budget, not some other number
