"""Reward endpoints in training: the client's loop and lifecycle, tokens, the preflight, dead services, aborts."""

from __future__ import annotations

import asyncio
import threading

import pytest

from proto.client import RewardServiceError
from services.common.settings import ServiceSettings
from tests.helpers import free_port, serve_app
from tests.trainer.rewardsupport import GOOD, _call, _entry
from trainer.rewards import RewardAbort, RewardEndpoint, RewardSet, make_reward_function


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


def test_start_on_an_unreachable_service_names_it_once_with_nothing_to_resume():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{free_port()}"
    try:
        with pytest.raises(RewardAbort, match=rf"'format' at {url}") as err:
            RewardSet([_entry(url, timeout_s=0.5)]).start_on(loop)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
    assert str(err.value).count(url) == 1
    assert not err.value.resumable and "resume" not in str(err.value)


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
        endpoint.entry.on_error = "abort"
        _call(func, [GOOD])
        assert str(endpoint.abort).count(endpoint.url) == 1 and "'format'" in str(endpoint.abort)

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

    def test_train_cli_prints_the_exact_resume_command(self, monkeypatch, capsys):
        import trainer.recipe
        import trainer.train
        from rewardstack import cli

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
