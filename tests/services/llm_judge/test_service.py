"""The llm_judge service end to end over real HTTP: client, probes, errors, metrics, and the key."""

import asyncio
import contextlib
import logging
import runpy
import sys

import httpx
import pytest

from proto.client import RewardClient
from proto.models import ErrorResponse, ServiceInfo
from services.common.app import create_app
from services.llm_judge.scorer import LlmJudgeScorer
from services.llm_judge.settings import MissingApiKeyError
from tests.helpers import serve_app, service_process
from tests.services.llm_judge.fake_openai import chat, error_in_200, fair_judge, http_error
from tests.services.llm_judge.support import GOOD, KEY, settings_for


@contextlib.contextmanager
def judge_service(fake, **overrides):
    settings = settings_for(fake, **overrides)
    scorer = LlmJudgeScorer(settings)
    with serve_app(create_app(scorer, settings)) as url:
        yield url


def client_score(url, items, params=None):
    async def go():
        async with RewardClient(url, deadline_s=30) as client:
            return await client.score(items, params=params)

    return asyncio.run(go())


GROUP = [
    {"completion": GOOD, "reference": "yes", "prompt": "Granulomas?"},
    {"completion": GOOD, "reference": "yes", "prompt": "Granulomas?"},
    {"completion": GOOD, "reference": "yes", "prompt": "Granulomas?"},
    {"completion": "<think>hmm</think><answer>no</answer>", "reference": "yes", "prompt": "Granulomas?"},
    {"completion": "<think>hmm</think><answer>no</answer>", "reference": "yes", "prompt": "Granulomas?"},
    {"completion": "", "reference": "yes", "prompt": "Granulomas?"},
    {"completion": "Thought process:", "reference": "yes", "prompt": "Granulomas?"},
    {"completion": "<think>yes</think>", "reference": "yes", "prompt": "Granulomas?"},
]


def test_grpo_group_through_the_client(fake):
    fake.default = fair_judge
    with judge_service(fake) as url:
        resp = client_score(url, GROUP)
    assert resp.rewards == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert resp.service == "llm_judge"
    assert [d.status for d in resp.details] == ["ok"] * 8
    assert resp.details[5].reason == "empty completion"
    assert fake.calls == 2  # three identical right answers, two identical wrong ones, three free zeros


def test_inproc_transport_serves_the_same_contract(fake, monkeypatch):
    fake.default = fair_judge
    monkeypatch.setenv("LLM_JUDGE_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.delitem(sys.modules, "services.llm_judge.main", raising=False)
    resp = client_score("inproc://llm_judge", GROUP[:4])
    assert resp.rewards == [1.0, 1.0, 1.0, 0.0] and fake.calls == 2
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"
    sys.modules.pop("services.llm_judge.main", None)


def test_info_and_params(fake):
    with judge_service(fake, rubric="correctness") as url:
        info = ServiceInfo.model_validate_json(httpx.get(f"{url}/v1/info").content)
        bad = httpx.post(f"{url}/v1/score", json={"items": GROUP[:1], "params": {"rubric": "nope"}})
        good = httpx.post(f"{url}/v1/score",
                          json={"items": [GROUP[7]], "params": {"rubric": "default"}})
    assert info.name == "llm_judge" and info.score_range == (0.0, 1.0)
    assert info.config["model"] == "fake/judge" and info.config["rubric"] == "correctness"
    assert info.config["base_url"] == fake.base_url
    assert "rubric" in info.params_schema["properties"]
    assert bad.status_code == 422 and "unknown rubric" in bad.text
    # the default rubric needs an answer block, so this one is a free zero
    assert good.json()["rewards"] == [0.0] and fake.calls == 0


def test_refused_key_turns_readiness_off(fake):
    fake.default = http_error(401, "No auth credentials found")
    with judge_service(fake) as url:
        assert httpx.get(f"{url}/readyz").status_code == 200
        resp = httpx.post(f"{url}/v1/score", json={"items": GROUP[:2]})
        ready = httpx.get(f"{url}/readyz")
        again = httpx.post(f"{url}/v1/score", json={"items": GROUP[:2]})
        health = httpx.get(f"{url}/healthz")
    assert resp.status_code == 503 and ready.status_code == 503 and again.status_code == 503
    err = ErrorResponse.model_validate_json(resp.content).error
    assert err.type == "not_ready" and "LLM_JUDGE_API_KEY" in err.message
    assert "LLM_JUDGE_API_KEY" in ready.json()["error"]["message"]
    assert health.status_code == 200 and fake.calls == 1


def test_no_credit_is_a_502(fake):
    fake.default = http_error(402, "Insufficient credits")
    with judge_service(fake) as url:
        resp = httpx.post(f"{url}/v1/score", json={"items": GROUP[:1]})
    assert resp.status_code == 502
    assert "out of credits" in ErrorResponse.model_validate_json(resp.content).error.message


def test_metrics_show_calls_tokens_cost_and_cache(fake):
    fake.default = chat("0.9", cost=0.0005, prompt_tokens=300, completion_tokens=2)
    with judge_service(fake) as url:
        client_score(url, GROUP[:3])
        text = httpx.get(f"{url}/metrics").text
    assert 'llm_judge_upstream_calls_total{status="200"} 1.0' in text
    assert 'llm_judge_tokens_total{kind="prompt"} 300.0' in text
    assert "llm_judge_cost_usd_total 0.0005" in text
    assert 'llm_judge_cache_hits_total{kind="inflight"} 2.0' in text


def test_the_key_is_never_logged_or_returned(fake, caplog):
    one = [{"completion": GOOD, "reference": "yes"}]
    texts = []
    with judge_service(fake, log_level="DEBUG", max_retries=1) as url:
        for name in ("", "httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access",
                     "rewardstack"):
            caplog.set_level(logging.DEBUG, logger=name)
        fake.script(
            chat("0.7", cost=0.001),
            http_error(500, echo_auth=True), http_error(500, echo_auth=True),
            chat(f"I was called with {KEY}"),
            error_in_200(f"bad key {KEY}", code=400),
            http_error(401, echo_auth=True),
        )
        for completion in (GOOD, GOOD + " ", GOOD + "  ", GOOD + "   ", GOOD + "    "):
            one[0]["completion"] = completion
            texts.append(httpx.post(f"{url}/v1/score", json={"items": one}).text)
        texts += [httpx.get(f"{url}/{path}").text for path in ("v1/info", "metrics", "readyz")]
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert fake.calls == 6
    assert "[redacted]" in texts[1] and "[redacted]" in texts[2] and "[redacted]" in texts[3]
    assert "[redacted]" in texts[4] and "[redacted]" in texts[-1]
    assert caplog.records, "nothing was captured, so the check below would prove nothing"
    for text in [*texts, caplog.text]:
        assert KEY not in text and KEY[-16:] not in text


# runpy re-executes main.py on purpose (it reads the environment at import); its warning about
# the module already being imported is expected.
@pytest.mark.filterwarnings("ignore:'services.llm_judge.main' found in sys.modules:RuntimeWarning")
def test_main_refuses_to_start_without_a_key(monkeypatch):
    for var in ("LLM_JUDGE_API_KEY", "OPENROUTER_API_KEY", "LLM_JUDGE_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(MissingApiKeyError, match="set LLM_JUDGE_API_KEY"):
        runpy.run_module("services.llm_judge.main")
    monkeypatch.setenv("LLM_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    assert runpy.run_module("services.llm_judge.main")["app"].title == "rewardstack llm_judge"


def test_real_process_reads_openrouter_api_key(fake):
    fake.default = fair_judge
    env = {"LLM_JUDGE_BASE_URL": fake.base_url, "OPENROUTER_API_KEY": KEY,
           "LLM_JUDGE_MODEL": "fake/judge"}
    with service_process("services.llm_judge.main:app", env=env) as (url, _proc):
        resp = client_score(url, GROUP[:4])
    assert resp.rewards == [1.0, 1.0, 1.0, 0.0]
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert fake.requests[0].body["model"] == "fake/judge"
