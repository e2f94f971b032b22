"""LlmJudgeScorer against the fake OpenAI-compatible server over real HTTP: each upstream behaviour."""


import pytest
from prometheus_client import CollectorRegistry

from proto.models import ItemStatus
from services.common.scoring import NotReadyError, UpstreamError
from services.llm_judge.scorer import JudgeParams
from tests.services.llm_judge.fake_openai import Reply, chat, error_in_200, http_error, user_text
from tests.services.llm_judge.support import GOOD, KEY, item, score, scorer_for


def distinct(n: int) -> list:
    return [item(f"<think>look {i}</think><answer>yes</answer>") for i in range(n)]


class TestCalls:
    def test_request_carries_model_key_headers_and_prompt(self, fake):
        scorer = scorer_for(fake, http_referer="https://example.org/rs", x_title="rewardstack",
                            temperature=0.0, max_tokens=64)
        [got] = score(scorer, [item()])
        assert got.reward == pytest.approx(0.8) and got.status is ItemStatus.ok
        assert got.parts == {"judge": pytest.approx(0.8)}
        seen = fake.requests[0]
        assert seen.headers["authorization"] == f"Bearer {KEY}"
        assert seen.headers["http-referer"] == "https://example.org/rs"
        assert seen.headers["x-title"] == "rewardstack"
        assert seen.body["model"] == "fake/judge" and seen.body["max_tokens"] == 64
        assert "usage" not in seen.body and "response_format" not in seen.body
        assert GOOD in user_text(seen.body) and "Are there granulomas?" in user_text(seen.body)

    def test_usage_accounting_asks_for_cost(self, fake):
        score(scorer_for(fake, usage_accounting=True), [item()])
        assert fake.requests[0].body["usage"] == {"include": True}

    def test_concurrency_is_used_and_capped(self, fake):
        fake.latency_s = 0.15
        results = score(scorer_for(fake, max_upstream_concurrency=4), distinct(12))
        assert all(r.reward == pytest.approx(0.8) for r in results)
        assert fake.calls == 12 and 2 <= fake.max_in_flight <= 4

    def test_requests_per_minute_holds_back_the_rest(self, fake):
        # Two calls fit the minute; the third waits past its deadline instead of calling.
        results = score(scorer_for(fake, requests_per_minute=2, item_deadline_s=0.5), distinct(3))
        assert fake.calls == 2
        assert sorted(r.status.value for r in results) == ["ok", "ok", "timeout"]


class TestCache:
    def test_group_of_identical_completions_costs_one_call(self, fake):
        scorer = scorer_for(fake)
        registry = CollectorRegistry()
        scorer.register_metrics(registry)
        fake.latency_s = 0.05
        assert [r.reward for r in score(scorer, [item()] * 8)] == [pytest.approx(0.8)] * 8
        assert fake.calls == 1
        assert registry.get_sample_value("llm_judge_cache_hits_total", {"kind": "inflight"}) == 7
        score(scorer, [item()] * 3)
        assert fake.calls == 1
        assert registry.get_sample_value("llm_judge_cache_hits_total", {"kind": "done"}) == 3

    @pytest.mark.parametrize("change", [{"reference": "no"}, {"prompt": "Other question?"},
                                        {"completion": GOOD + " "}])
    def test_anything_the_judge_sees_is_part_of_the_key(self, fake, change):
        scorer = scorer_for(fake)
        score(scorer, [item(), item(**{**dict(completion=GOOD, reference="yes",
                                              prompt="Are there granulomas?"), **change})])
        assert fake.calls == 2

    def test_model_is_part_of_the_key(self, fake):
        score(scorer_for(fake), [item()])
        score(scorer_for(fake, model="other/judge"), [item()])
        assert fake.calls == 2


class TestRetries:
    def test_429_honours_retry_after(self, fake):
        fake.script(http_error(429, "slow down", retry_after="1"))
        [got] = score(scorer_for(fake), [item()])
        assert got.reward == pytest.approx(0.8) and fake.calls == 2
        assert fake.requests[1].at - fake.requests[0].at >= 0.9

    def test_retry_after_beyond_the_cap_fails_the_item_at_once(self, fake):
        fake.script(http_error(429, retry_after="120"))
        [got] = score(scorer_for(fake, max_retry_after_s=10), [item()])
        assert got.reward is None and got.status is ItemStatus.error
        assert got.reason.startswith("rate limited") and "120" in got.reason
        assert fake.calls == 1

    @pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
    def test_transient_statuses_are_retried(self, fake, status):
        fake.script(http_error(status), http_error(status))
        [got] = score(scorer_for(fake, max_retries=2), [item()])
        assert got.reward == pytest.approx(0.8) and fake.calls == 3

    def test_persistent_500_nulls_the_item_with_the_reason(self, fake):
        fake.default = http_error(500, "provider down")
        results = score(scorer_for(fake, max_retries=2), [item(), item(GOOD + ".")])
        assert [r.reward for r in results] == [None, None]
        assert all(r.status is ItemStatus.error for r in results)
        assert results[0].reason.startswith("upstream: HTTP 500: provider down")
        assert "3 attempts" in results[0].reason and fake.calls == 6

    def test_other_4xx_is_not_retried(self, fake):
        fake.script(http_error(400, "model not found"))
        [got] = score(scorer_for(fake), [item()])
        assert got.reward is None and "model not found" in got.reason and fake.calls == 1

    def test_error_inside_a_200_is_a_failure(self, fake):
        fake.default = error_in_200("provider returned error", code=502)
        [got] = score(scorer_for(fake, max_retries=1), [item()])
        assert got.reward is None and got.status is ItemStatus.error
        assert "error 502 in a 200 body: provider returned error" in got.reason
        assert fake.calls == 2

    def test_finish_reason_error_is_a_failure(self, fake):
        fake.script(chat("0.9", finish_reason="error"))
        [got] = score(scorer_for(fake, max_retries=0), [item()])
        assert got.reward is None and "finish_reason" in got.reason

    def test_body_that_is_not_json_is_retried(self, fake):
        fake.script(Reply(body="<html>gateway</html>"))
        [got] = score(scorer_for(fake), [item()])
        assert got.reward == pytest.approx(0.8) and fake.calls == 2

    def test_slow_upstream_hits_the_call_timeout(self, fake):
        fake.default = chat("0.9", delay_s=2.0)
        [got] = score(scorer_for(fake, timeout_s=0.2, max_retries=1), [item()])
        assert got.reward is None and got.status is ItemStatus.error
        assert "timeout" in got.reason and fake.calls == 2

    def test_item_deadline_covers_retries(self, fake):
        fake.default = chat("0.9", delay_s=2.0)
        [got] = score(scorer_for(fake, item_deadline_s=0.3), [item()])
        assert got.reward is None and got.status is ItemStatus.timeout


class TestRefusals:
    @pytest.mark.parametrize("status", [401, 403])
    def test_refused_key_makes_the_service_not_ready(self, fake, status):
        fake.default = http_error(status, "invalid key")
        scorer = scorer_for(fake, max_retries=3)
        assert scorer.not_ready_reason() is None
        with pytest.raises(NotReadyError, match="LLM_JUDGE_API_KEY"):
            score(scorer, [item()])
        assert fake.calls == 1
        assert "LLM_JUDGE_API_KEY" in scorer.not_ready_reason()
        with pytest.raises(NotReadyError):
            score(scorer, [item("<answer>other</answer>")])
        assert fake.calls == 1

    def test_no_credit_fails_the_request(self, fake):
        fake.default = http_error(402, "Insufficient credits")
        with pytest.raises(UpstreamError, match="out of credits"):
            score(scorer_for(fake), [item()])
        assert fake.calls == 1

    def test_auth_error_inside_a_200(self, fake):
        fake.default = error_in_200("User not found.", code=401)
        scorer = scorer_for(fake)
        with pytest.raises(NotReadyError):
            score(scorer, [item()])
        assert scorer.not_ready_reason() is not None


class TestReplies:
    @pytest.mark.parametrize("reply", ["I think it is good", "", "<think>0.9"])
    def test_unparseable_reply_is_null_with_its_start(self, fake, reply):
        fake.default = chat(reply)
        scorer = scorer_for(fake)
        [got] = score(scorer, [item()])
        assert got.reward is None and got.status is ItemStatus.error
        assert got.reason == f"unparseable judge reply: {reply!r}"
        score(scorer, [item()])  # an error is not cached: the next request asks again
        assert fake.calls == 2

    def test_out_of_range_reply_is_clamped_and_says_so(self, fake):
        fake.script(chat("7"), chat("-0.5"))
        high, low = score(scorer_for(fake, max_upstream_concurrency=1),
                          [item(), item(GOOD + " ")])
        assert high.reward == 1.0 and high.parts["judge"] == 7.0 and "clamped" in high.reason
        assert low.reward == 0.0 and low.parts["judge"] == -0.5

    def test_structured_output(self, fake):
        fake.script(chat('{"reason": "matches", "score": 0.6}'), chat("0.6"))
        scorer = scorer_for(fake, structured=True, max_upstream_concurrency=1)
        good, plain = score(scorer, [item(), item(GOOD + " ")])
        assert good.reward == pytest.approx(0.6)
        assert plain.reward is None and "unparseable" in plain.reason
        fmt = fake.requests[0].body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["required"] == [
            "reason", "score"]

    def test_likert_rubric_is_normalised(self, fake, tmp_path):
        path = tmp_path / "likert.yaml"
        path.write_text("scale: [1, 10]\nsystem: grade\nuser: '${completion} vs ${reference}'\n")
        fake.default = chat("8.2")
        [got] = score(scorer_for(fake, rubric=str(path)), [item()])
        assert got.reward == pytest.approx(0.8) and got.parts["judge"] == pytest.approx(8.2)


class TestBudget:
    def test_spent_budget_nulls_the_rest_without_calls(self, fake):
        fake.default = chat("0.5", cost=0.001)
        scorer = scorer_for(fake, budget_usd=0.0025, max_upstream_concurrency=1)
        registry = CollectorRegistry()
        scorer.register_metrics(registry)
        results = score(scorer, distinct(5))
        assert [r.reward for r in results] == [0.5, 0.5, 0.5, None, None]
        assert all(r.reason.startswith("budget_exhausted") for r in results[3:])
        assert fake.calls == 3
        assert registry.get_sample_value("llm_judge_cost_usd_total") == pytest.approx(0.003)
        assert any("budget exhausted" in w for w in scorer.warnings())

    def test_prices_stand_in_for_unreported_cost(self, fake):
        fake.default = chat("0.5", prompt_tokens=1000, completion_tokens=100)
        scorer = scorer_for(fake, budget_usd=0.002, price_prompt_per_mtok=0.5,
                            price_completion_per_mtok=5.0, max_upstream_concurrency=1)
        results = score(scorer, distinct(3))  # 0.001 + 0.001 reaches the budget
        assert [r.reward for r in results] == [0.5, 0.5, None] and fake.calls == 2

    def test_unpriced_calls_are_warned_about(self, fake):
        scorer = scorer_for(fake, budget_usd=1.0)
        score(scorer, [item()])
        assert any("does not count them" in w for w in scorer.warnings())


class TestPrechecks:
    def test_cheap_zeros_spend_no_call(self, fake):
        scorer = scorer_for(fake)
        registry = CollectorRegistry()
        scorer.register_metrics(registry)
        texts = ["", "Thought process:", ":", "Let's solve this problem step by step.",
                 "<think>long</think> yes", "<think>x</think><answer></answer>"]
        results = score(scorer, [item(t) for t in texts])
        assert [r.reward for r in results] == [0.0] * len(texts)
        assert all(r.reason for r in results) and fake.calls == 0
        assert registry.get_sample_value("llm_judge_prechecked_items_total") == len(texts)

    def test_master_keys_are_stopped_when_no_answer_is_required(self, fake):
        params = JudgeParams(rubric="correctness")
        results = score(scorer_for(fake), [item(":"), item("Thought process:"), item("yes")],
                        params=params)
        assert [r.reward for r in results] == [0.0, 0.0, pytest.approx(0.8)] and fake.calls == 1

    def test_missing_reference_is_unscorable_without_a_call(self, fake):
        [got] = score(scorer_for(fake), [item(reference=None)])
        assert got.reward is None and got.status is ItemStatus.unscorable and fake.calls == 0

    def test_unknown_rubric_param_is_refused(self):
        with pytest.raises(ValueError, match="default"):
            JudgeParams(rubric="nope")
