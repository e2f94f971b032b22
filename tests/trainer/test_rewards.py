"""Reward functions over HTTP: TRL's columns to items, async naming, failure policy, client lifecycle."""

from __future__ import annotations

import asyncio
import inspect
import threading

import pytest
from PIL import Image
from trl.trainer.utils import get_callable_name, is_async_callable

from proto.client import RewardServiceError
from services.common.settings import ServiceSettings
from tests.helpers import free_port, serve_app
from trainer.recipe import RewardEntry
from trainer.reward_items import build_items, flatten_completion, prompt_question
from trainer.rewards import RewardAbort, RewardEndpoint, RewardSet, make_reward_function

GOOD = "<think>two circles</think><answer>2</answer>"
HALF = "<answer>2</answer> trailing"


@pytest.fixture(scope="module")
def regex_url():
    from services.common.app import create_app
    from services.regex_format.scorer import RegexFormatScorer
    from services.regex_format.settings import RegexFormatSettings

    settings = RegexFormatSettings()
    with serve_app(create_app(RegexFormatScorer(settings), settings)) as url:
        yield url


def _entry(url: str, **kw) -> RewardEntry:
    return RewardEntry(name=kw.pop("name", "format"), url=url, **kw)


def _call(func, completions, **columns):
    metrics: list[tuple[str, float]] = []
    prompts = [[{"role": "user", "content": [{"type": "text", "text": "How many?"}]}]] * len(completions)
    out = asyncio.run(func(prompts=prompts, completions=completions,
                           log_metric=lambda k, v: metrics.append((k, v)), **columns))
    return out, dict(metrics)


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


def test_close_runs_on_the_loop_thread_that_owns_the_client(regex_url):
    # TRL runs async rewards on a loop in a daemon thread; the client must be closed there.
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        rewards = RewardSet([_entry(regex_url)])
        coro = rewards.functions[0](prompts=["q"], completions=[GOOD])
        assert asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30) == [1.0]
        client = rewards.endpoints[0].remote._clients[loop]
        rewards.close()
        assert all(ep.http.is_closed for ep in client._endpoints)
        assert rewards.endpoints[0].loops() == []
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)


def test_preflight_fails_fast_naming_the_reward_and_url():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RewardAbort, match=rf"reward 'format' at {url}: not reachable"):
        asyncio.run(RewardSet([_entry(url, timeout_s=0.5)]).preflight())


def test_missing_token_env_is_named(monkeypatch):
    monkeypatch.delenv("RS_TEST_TOKEN", raising=False)
    with pytest.raises(ValueError, match="token_env RS_TEST_TOKEN is not set"):
        RewardSet([_entry("http://a", token_env="RS_TEST_TOKEN")])


def test_token_is_sent(monkeypatch):
    from services.common.app import create_app
    from services.regex_format.scorer import RegexFormatScorer
    from services.regex_format.settings import RegexFormatSettings

    settings = RegexFormatSettings(auth_token="s3cret-token-value")
    assert isinstance(settings, ServiceSettings)
    with serve_app(create_app(RegexFormatScorer(settings), settings)) as url:
        monkeypatch.setenv("RS_TEST_TOKEN", "s3cret-token-value")
        ok = RewardSet([_entry(url, token_env="RS_TEST_TOKEN")])
        assert _call(ok.functions[0], [GOOD])[0] == [1.0]
        monkeypatch.setenv("RS_TEST_TOKEN", "wrong-token-value")
        bad = RewardSet([_entry(url, token_env="RS_TEST_TOKEN")])
        assert _call(bad.functions[0], [GOOD])[0] == [None]
        assert bad.endpoints[0].abort is not None  # 401 can never succeed: stop, whatever the policy


def test_start_on_opens_clients_on_the_reward_loop_one_by_one():
    # Two trainer lifetimes in one process, each with its own loop thread (as GRPOTrainer makes),
    # both with in-process services whose rewards then run concurrently under gather.
    entries = [_entry("inproc://regex_format", name="format"),
               _entry("inproc://vqa_accuracy", name="answer", params={"mode": "exact"})]
    for _ in range(2):
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            rewards = RewardSet(entries)
            rewards.start_on(loop)
            assert all(ep.loops() == [loop] for ep in rewards.endpoints)

            async def both(rewards=rewards):
                calls = (f(prompts=["q"], completions=[GOOD], answers=[["2"]]) for f in rewards.functions)
                return await asyncio.gather(*calls)

            assert asyncio.run_coroutine_threadsafe(both(), loop).result(timeout=60) == [[1.0], [1.0]]
            rewards.close()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)


def test_start_on_an_unreachable_service_names_it():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{free_port()}"
    try:
        with pytest.raises(RewardAbort, match=rf"'format' at {url}"):
            RewardSet([_entry(url, timeout_s=0.5)]).start_on(loop)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)


def test_an_answer_that_breaks_the_contract_counts_as_a_failed_call():
    from fastapi import FastAPI

    from proto.models import ServiceInfo, ServiceLimits

    app = FastAPI()
    info = ServiceInfo(name="broken", version="0", score_range=(0.0, 1.0), params_schema={},
                       limits=ServiceLimits(max_batch=8, max_body_bytes=1 << 20, max_concurrency=1,
                                            max_queue=1), fingerprint="x")

    @app.get("/v1/info")
    def _info():
        return info.model_dump(mode="json")

    @app.post("/v1/score")
    def _score():
        return {"rewards": "not a list"}

    with serve_app(app) as url:
        endpoint = RewardEndpoint(_entry(url))
        out, metrics = _call(make_reward_function(endpoint), [GOOD, GOOD])
    assert out == [None, None]
    assert metrics == {"rewards/format/failed": 1.0}
    assert endpoint.failed_calls == 1 and "validation error" in endpoint.last_error.lower()


class TestDeadService:
    """A dead service costs one short wait, not a deadline per step, and the abort says how to resume."""

    def test_refused_connections_fail_at_unreachable_s_then_at_once(self):
        # timeout_s is far longer than the test: reaching it would mean the old 30 s-per-step cost
        endpoint = RewardEndpoint(_entry(f"http://127.0.0.1:{free_port()}", timeout_s=600, unreachable_s=0.2))
        func = make_reward_function(endpoint)
        assert _call(func, [GOOD])[0] == [None]
        assert "unreachable for 0.2s" in endpoint.last_error
        assert _call(func, [GOOD])[0] == [None]
        assert endpoint.failed_calls == 2

    def test_the_client_remembers_a_down_service_and_probes_before_the_next_call(self):
        from proto.client import RewardClient

        async def twice():
            async with RewardClient(f"http://127.0.0.1:{free_port()}", deadline_s=600,
                                    unreachable_s=0.2) as client:
                errors = []
                for _ in range(2):
                    try:
                        await client.score([{"completion": "x"}])
                    except RewardServiceError as exc:
                        errors.append(exc)
                return errors

        first, second = asyncio.run(twice())
        assert first.unreachable and "unreachable for 0.2s" in first.cause
        assert second.unreachable and "still unreachable" in second.cause

    def test_abort_message_says_how_to_resume(self):
        ep = RewardEndpoint(_entry("http://a", on_error="abort"))
        ep.record(RewardServiceError("format", "http://a", "down"), 1.0)
        assert "rewardstack train RECIPE --set resume=auto" in str(ep.abort) and ep.abort.resumable
        assert ep.abort.resume_command("r.yaml", ["grpo.max_steps=5", "resume=false"]) == (
            "rewardstack train r.yaml --set grpo.max_steps=5 --set resume=auto")

    def test_a_preflight_failure_has_nothing_to_resume(self):
        url = f"http://127.0.0.1:{free_port()}"
        with pytest.raises(RewardAbort) as err:
            asyncio.run(RewardSet([_entry(url, unreachable_s=0.2)]).preflight())
        assert not err.value.resumable and "resume" not in str(err.value)

    def test_train_cli_prints_the_exact_resume_command(self, monkeypatch, capsys):
        import trainer.recipe
        import trainer.train
        from trainer import cli

        def abort(_recipe):
            raise RewardAbort("format", "http://svc", "failed with on_error=abort: down")

        monkeypatch.setattr(trainer.recipe, "load_recipe", lambda path, sets: object())
        monkeypatch.setattr(trainer.train, "run_training", abort)
        assert cli.main(["train", "my.yaml", "--set", "grpo.max_steps=9"]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "rewardstack train my.yaml --set grpo.max_steps=9 --set resume=auto" in err


def test_the_trainer_builds_its_functions_with_the_public_helper():
    from integrations.trl import RemoteReward

    rewards = RewardSet([_entry("http://a")])
    assert isinstance(rewards.functions[0].remote, RemoteReward)
    assert rewards.functions[0].remote is rewards.endpoints[0].remote
