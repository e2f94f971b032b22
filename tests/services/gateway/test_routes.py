"""The gateway over real HTTP with real services behind it, fed the exact payloads other trainers send."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from tests.helpers import free_port
from tests.services.gateway import payloads as p
from tests.services.gateway.support import gateway, rewards, services


@pytest.fixture(scope="module")
def svc():
    with services() as s:
        yield s


@pytest.fixture(scope="module")
def gw(svc):
    with gateway(rewards(svc), log_parts={"format": ["think", "answer"]}) as (url, _):
        yield url


def post(url: str, path: str, body: dict, **kw) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=30, **kw)


def _last_item(rec) -> dict:
    return rec.bodies[-1]["items"][-1]


class TestOpenRLHF:
    def test_text_sample_is_scored_with_the_prompt_stripped(self, gw, svc):
        resp = post(gw, "/openrlhf/get_reward", p.openrlhf_single())
        assert resp.status_code == 200
        body = resp.json()
        # format 1 × 0.5 + exact answer 1 × 1.0; scores are clipped into [0, 1]
        assert body["rewards"] == [1.5] and body["scores"] == [1.0]
        assert body["extra_logs"] == {"format": [1.0], "format/think": [1.0], "format/answer": [1.0],
                                      "answer": [1.0], "unscored": [0.0]}
        assert _last_item(svc["format"][1])["completion"] == p.RESPONSE  # <|im_end|> removed

    def test_vlm_query_with_expanded_image_tokens_is_cut_at_the_assistant_marker(self, gw, svc):
        body = p.openrlhf_single(prompt=p.VLM_PROMPT, query_prompt=p.VLM_QUERY_PROMPT)
        assert not body["query"][0].startswith(body["prompts"][0])  # what makes this case hard
        resp = post(gw, "/openrlhf/get_reward", body)
        assert resp.json()["rewards"] == [1.5]
        assert _last_item(svc["answer"][1])["completion"] == p.RESPONSE

    def test_a_wrong_answer_scores_less_and_is_not_flagged(self, gw):
        body = p.openrlhf_single(response="<think>hm</think><answer>3</answer>")
        out = post(gw, "/openrlhf/get_reward", body).json()
        assert out["rewards"] == [0.5] and out["extra_logs"]["unscored"] == [0.0]

    def test_empty_shard_gets_empty_lists_with_the_same_keys(self, gw):
        full = post(gw, "/openrlhf/get_reward", p.openrlhf_single()).json()
        resp = post(gw, "/openrlhf/get_reward", p.OPENRLHF_EMPTY_SHARD)
        assert resp.status_code == 200
        out = resp.json()
        assert out["rewards"] == [] and out["scores"] == []
        assert set(out["extra_logs"]) == set(full["extra_logs"])
        assert all(v == [] for v in out["extra_logs"].values())

    def test_json_object_label_with_an_image_reaches_the_services(self, gw, svc):
        image = p.png_b64()
        body = p.openrlhf_single(response="<think>x</think><answer>two</answer>", label=p.json_label(image))
        out = post(gw, "/openrlhf/get_reward", body).json()
        assert out["rewards"] == [1.5]  # "two" is one of the label's accepted references
        sent = svc["answer"][1].bodies[-1]
        item = sent["items"][-1]
        assert item["reference"] == ["2", "two"] and item["meta"] == {"answer_type": "integer"}
        assert sent["images"][item["image_id"]] == {"b64": image}

    def test_a_label_object_with_an_unknown_key_is_a_422_naming_it(self, gw):
        body = p.openrlhf_single(label={"refrence": "2"})
        resp = post(gw, "/openrlhf/get_reward", body)
        assert resp.status_code == 422
        assert "refrence" in resp.json()["error"]["message"]

    def test_misaligned_lists_are_a_422(self, gw):
        resp = post(gw, "/openrlhf/get_reward", {"query": ["a", "b"], "prompts": ["a"], "labels": ["1", "2"]})
        assert resp.status_code == 422 and "prompts has 1 entries" in resp.json()["error"]["message"]

    def test_a_query_without_prompt_or_marker_is_unscored_with_the_fallback(self, gw, svc):
        calls = svc["format"][1].calls
        out = post(gw, "/openrlhf/get_reward", {"query": ["no template here"], "prompts": ["other"],
                                                "labels": ["2"]}).json()
        assert out["rewards"] == [0.0] and out["extra_logs"]["unscored"] == [1.0]
        assert svc["format"][1].calls == calls  # nothing was sent for it


class TestSlime:
    def test_answer_is_an_object_with_score_and_one_key_per_reward(self, gw):
        resp = post(gw, "/slime/reward", p.slime_single())
        assert resp.status_code == 200
        assert resp.json() == {"score": 1.5, "format": 1.0, "answer": 1.0, "unscored": 0}

    def test_chat_message_prompt_and_trailing_end_token(self, gw, svc):
        prompt = [{"role": "user", "content": p.QUESTION}]
        out = post(gw, "/slime/reward", p.slime_single(response=p.RESPONSE + "<|im_end|>", prompt=prompt))
        assert out.json()["score"] == 1.5
        assert _last_item(svc["answer"][1])["prompt"] == p.QUESTION


def test_v1_score_gives_the_combined_reward_and_per_service_parts(gw):
    body = {"items": [{"completion": p.RESPONSE, "reference": "2"}, {"completion": "x", "reference": "2"}]}
    out = post(gw, "/v1/score", body).json()
    assert out["rewards"] == [1.5, 0.0]
    assert out["details"][0]["parts"]["format"] == 1.0 and out["details"][0]["parts"]["answer"] == 1.0
    assert out["service"] == "gateway"


def test_concurrent_single_sample_requests_are_coalesced(svc):
    with gateway(rewards(svc), coalesce_ms=300) as (url, _):
        before = svc["format"][1].calls

        async def burst():
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(*(client.post(url + "/openrlhf/get_reward", json=p.openrlhf_single())
                                              for _ in range(32)))

        answers = asyncio.run(burst())
    assert all(r.json()["rewards"] == [1.5] for r in answers)
    sent = svc["format"][1].calls - before
    assert sent < 8  # 32 requests, gathered into a few batched calls
    assert sum(len(b["items"]) for b in svc["format"][1].bodies[-sent:]) == 32


def test_a_service_down_gets_the_fallback_flagged_and_counted(svc):
    dead = f"http://127.0.0.1:{free_port()}"
    entries = rewards(svc, answer={"url": dead, "unreachable_s": 0.3, "timeout_s": 5})
    with gateway(entries, fallback=-1.0) as (url, _):
        out = post(url, "/openrlhf/get_reward", p.openrlhf_single()).json()
        slime = post(url, "/slime/reward", p.slime_single()).json()
        ready = httpx.get(url + "/readyz")
        metrics = httpx.get(url + "/metrics").text
    assert out["rewards"] == [0.5 * 1.0 + 1.0 * -1.0] and out["scores"] == [0.0]
    assert out["extra_logs"]["answer"] == [-1.0] and out["extra_logs"]["unscored"] == [1.0]
    assert slime == {"score": -0.5, "format": 1.0, "answer": -1.0, "unscored": 1}
    assert ready.status_code == 503 and "answer" in ready.json()["error"]["message"]
    assert re.search(r'rewardstack_gateway_fallbacks_total\{route="openrlhf",service="answer"\} 1\.0', metrics)
    assert re.search(r'rewardstack_gateway_fallbacks_total\{route="slime",service="answer"\} 1\.0', metrics)


def test_a_422_from_a_service_is_a_clear_error_not_a_fallback(svc):
    entries = rewards(svc, format={"params": {"mode": "no_such_mode"}})
    with gateway(entries) as (url, _):
        resp = post(url, "/openrlhf/get_reward", p.openrlhf_single())
        metrics = httpx.get(url + "/metrics").text
    assert resp.status_code == 422
    message = resp.json()["error"]["message"]
    assert "reward service 'format' refused" in message and "mode" in message
    assert "rewardstack_gateway_fallbacks_total{" not in metrics


def test_bearer_auth_guards_every_route_but_the_probes(svc):
    with gateway(rewards(svc), settings={"auth_token": "gw-secret-token"}) as (url, _):
        assert post(url, "/openrlhf/get_reward", p.openrlhf_single()).status_code == 401
        assert post(url, "/slime/reward", p.slime_single()).status_code == 401
        ok = post(url, "/slime/reward", p.slime_single(), headers={"authorization": "Bearer gw-secret-token"})
        assert ok.status_code == 200
        assert httpx.get(url + "/healthz").status_code == 200


def test_info_names_the_rewards_it_combines(gw):
    info = httpx.get(gw + "/v1/info").json()
    assert info["name"] == "gateway"
    assert [r["name"] for r in info["config"]["rewards"]] == ["format", "answer"]
    assert info["score_range"] == [0.0, 1.5]


def test_on_error_abort_turns_a_dead_service_into_a_502_not_a_fallback(svc):
    dead = f"http://127.0.0.1:{free_port()}"
    entries = rewards(svc, answer={"url": dead, "unreachable_s": 0.3, "on_error": "abort"})
    with gateway(entries) as (url, _):
        resp = post(url, "/openrlhf/get_reward", p.openrlhf_single())
    assert resp.status_code == 502
    assert "reward 'answer' (on_error: abort)" in resp.json()["error"]["message"]
