"""Reward functions over HTTP: TRL's columns to items, async naming, failure policy, client lifecycle."""

from __future__ import annotations

import inspect

from PIL import Image
from trl.trainer.utils import get_callable_name, is_async_callable

from integrations.trl_items import build_items, flatten_completion, prompt_question
from proto.client import RewardServiceError
from tests.helpers import free_port
from tests.trainer.rewardsupport import GOOD, HALF, _call, _entry
from trainer.rewards import RewardAbort, RewardEndpoint, RewardSet, make_reward_function


class TestItems:
    def test_conversational_completion_is_flattened(self):
        msg = [{"role": "assistant", "content": [{"type": "text", "text": "<answer>"},
                                                 {"type": "text", "text": "2</answer>"}]}]
        assert flatten_completion(msg) == "<answer>2</answer>"
        assert flatten_completion([{"role": "assistant", "content": "plain"}]) == "plain"
        assert flatten_completion("raw") == "raw"

    def test_prompt_question_is_the_last_user_turn_without_system(self):
        prompt = [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                  {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]}]
        assert prompt_question(prompt) == "Colour?"

    def test_one_image_per_group_and_columns_mapped(self):
        img, other = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
        columns = {
            "image": [img, img, img, other],
            "answers": [["2", "two"]] * 3 + [[]],
            "solution": ["2", "2", "2", "blue"],
            "question": ["How many?"] * 4,
            "choices": [None, None, None, ["red", "blue"]],
            "meta": [{"answer_type": "integer", "precision": None}] * 4,
            "trainer_state": object(),
        }
        items, images = build_items(["p"] * 4, ["a", "b", "c", "d"], columns)
        assert len(images) == 2
        assert items[0].image_id == items[2].image_id != items[3].image_id
        assert items[0].reference == ["2", "two"]
        assert items[3].reference == "blue"  # empty answers fall back to the solution
        assert items[3].choices == ["red", "blue"] and items[0].choices is None
        assert items[0].meta == {"answer_type": "integer"}
        assert items[0].prompt == "How many?"

    def test_named_reference_column_and_no_images(self):
        columns = {"image": [Image.new("RGB", (8, 8))], "answers": [["x"]], "explanation": ["because"]}
        items, images = build_items(["p"], ["a"], columns, reference="explanation", send_images=False)
        assert images == {} and items[0].image_id is None
        assert items[0].reference == "because"


class TestFunction:
    def test_is_a_named_coroutine_function_trl_detects(self):
        funcs = RewardSet([_entry("http://a", name="format"), _entry("http://b", name="answer")]).functions
        assert all(inspect.iscoroutinefunction(f) and is_async_callable(f) for f in funcs)
        assert [get_callable_name(f) for f in funcs] == ["format", "answer"]

    def test_scores_over_http_in_order_with_metrics(self, regex_url):
        func = make_reward_function(RewardEndpoint(_entry(regex_url, params={"partial": True})))
        out, metrics = _call(func, [GOOD, HALF, "nothing"], image=[None] * 3)
        assert out == [1.0, 0.25, 0.0]
        assert metrics["rewards/format/failed"] == 0.0
        assert metrics["rewards/format/latency_ms"] > 0

    def test_an_unreachable_service_gives_nulls_and_the_failed_metric(self):
        endpoint = RewardEndpoint(_entry(f"http://127.0.0.1:{free_port()}", timeout_s=0.5))
        out, metrics = _call(make_reward_function(endpoint), [GOOD, GOOD])
        assert out == [None, None]
        assert metrics == {"rewards/format/failed": 1.0}
        assert endpoint.abort is None  # skip: one failure in a window of 20 is tolerated
        assert endpoint.failed_calls == 1

    def test_abort_policy_names_reward_and_url_on_first_failure(self):
        url = f"http://127.0.0.1:{free_port()}"
        endpoint = RewardEndpoint(_entry(url, timeout_s=0.5, on_error="abort"))
        _call(make_reward_function(endpoint), [GOOD])
        assert isinstance(endpoint.abort, RewardAbort)
        assert "'format'" in str(endpoint.abort) and url in str(endpoint.abort)

    def test_refused_request_aborts_even_under_skip(self, regex_url):
        endpoint = RewardEndpoint(_entry(regex_url, params={"mode": "no_such_mode"}))
        out, _ = _call(make_reward_function(endpoint), [GOOD])
        assert out == [None]
        assert endpoint.abort is not None and "refused" in str(endpoint.abort)

    def test_a_client_per_event_loop(self, regex_url):
        endpoint = RewardEndpoint(_entry(regex_url))
        func = make_reward_function(endpoint)
        # asyncio.run makes a new loop each time; a client bound to the first would fail on the second
        assert _call(func, [GOOD])[0] == [1.0]
        assert _call(func, [GOOD])[0] == [1.0]
        assert len(endpoint.loops()) == 2


class TestWindow:
    def _endpoint(self, **kw) -> RewardEndpoint:
        return RewardEndpoint(_entry("http://a", **kw))

    def test_skip_stops_once_failures_exceed_the_fraction_of_the_window(self):
        ep = self._endpoint(max_failed_fraction=0.25, window=8)
        err = RewardServiceError("format", "http://a", "down")
        for failed in (False, True, False, True, False, False, False, False):
            ep.record(err if failed else None, 1.0)
        assert ep.abort is None  # 2 of 8 is not over 0.25 × 8
        ep.record(err, 1.0)
        assert ep.abort is not None and "3 of the last 8 calls failed" in str(ep.abort)

    def test_old_failures_slide_out_of_the_window(self):
        ep = self._endpoint(max_failed_fraction=0.25, window=4)
        err = RewardServiceError("format", "http://a", "down")
        for failed in (True, False, False, False, False, True):
            ep.record(err if failed else None, 1.0)
        assert ep.abort is None  # the first failure left the window before the second came
        ep.record(err, 1.0)
        assert ep.abort is not None

    def test_max_failed_fraction_one_never_stops(self):
        ep = self._endpoint(max_failed_fraction=1.0, window=3)
        for _ in range(10):
            ep.record(RewardServiceError("format", "http://a", "down"), 1.0)
        assert ep.abort is None and ep.failed_calls == 10
