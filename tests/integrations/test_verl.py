"""The verl adapter called as verl calls it, against real services over HTTP.

verl's reward loop (verl/experimental/reward_loop/reward_manager/naive.py, `run_single`, read at
volcengine/verl@b178a3cd) awaits `compute_score(data_source=, solution_str=, ground_truth=,
extra_info=)` once per sample and gathers a whole batch on one event loop; reward_kwargs are
merged into each call (verl/trainer/ppo/reward.py, `get_custom_reward_fn`). The legacy batch
manager (verl/workers/reward_manager/batch.py, `verify`) calls the function synchronously with
`data_sources=, solution_strs=, ground_truths=, extra_infos=` and indexes the list it returns.
"""

from __future__ import annotations

import asyncio

import pytest

from integrations.verl import compute_score, compute_score_batch
from tests.helpers import free_port
from tests.services.gateway import payloads as p
from tests.services.gateway.support import gateway, rewards, services

GOOD = "<think>two</think><answer>2</answer>"


@pytest.fixture(scope="module")
def svc():
    with services() as s:
        yield s


def _kwargs(svc, **extra) -> dict:
    return {"rewards": rewards(svc), "coalesce_ms": 200, **extra}


def _gather(n: int, kwargs: dict, **sample) -> list:
    async def run():
        return await asyncio.gather(*(
            compute_score(data_source=sample.get("data_source", "geo3k"),
                          solution_str=GOOD if i % 2 else "<answer>3</answer>",
                          ground_truth="2", extra_info={"index": i, **sample.get("extra", {})}, **kwargs)
            for i in range(n)))
    return asyncio.run(run())


def test_256_concurrent_single_samples_make_one_request_per_service(svc):
    before = {name: rec.calls for name, (_, rec) in svc.items()}
    out = _gather(256, _kwargs(svc))
    assert {name: rec.calls - before[name] for name, (_, rec) in svc.items()} == {"format": 1, "answer": 1}
    assert all(set(o) == {"score", "format", "answer", "unscored"} for o in out)
    assert all(v is not None for o in out for v in o.values())
    assert out[1] == {"score": 1.5, "format": 1.0, "answer": 1.0, "unscored": 0.0}
    assert out[0] == {"score": 0.0, "format": 0.0, "answer": 0.0, "unscored": 0.0}


def test_routes_pick_rewards_per_data_source_and_keep_every_key(svc):
    out = _gather(4, _kwargs(svc, routes={"ocr": ["answer"]}), data_source="ocr")
    assert out[1] == {"score": 1.0, "format": 0.0, "answer": 1.0, "unscored": 0.0}  # format not asked


def test_a_dead_service_gives_the_fallback_flagged_never_none(svc):
    dead = f"http://127.0.0.1:{free_port()}"
    kwargs = {"rewards": rewards(svc, answer={"url": dead, "unreachable_s": 0.3}), "fallback": -1.0}
    out = _gather(8, kwargs)
    assert all(o["answer"] == -1.0 and o["unscored"] == 1.0 for o in out)
    assert out[1]["score"] == 0.5 * 1.0 - 1.0


def test_image_from_extra_info_reaches_the_service(svc):
    image = p.png_b64()
    _gather(2, _kwargs(svc), extra={"image": image})
    sent = svc["answer"][1].bodies[-1]
    assert list(sent["images"].values()) == [{"b64": image}]  # two samples, one image entry
    assert all(it["image_id"] in sent["images"] for it in sent["items"])


def test_label_object_ground_truth(svc):
    async def one():
        return await compute_score("geo3k", "<answer>two</answer>", {"reference": ["2", "two"]}, {},
                                   **_kwargs(svc))
    assert asyncio.run(one())["answer"] == 1.0


def test_batch_form_sync_as_the_legacy_manager_calls_it(svc):
    out = compute_score_batch(data_sources=["a", "b"], solution_strs=[GOOD, "x"], ground_truths=["2", "2"],
                              extra_infos=[{}, {}], **_kwargs(svc))
    assert [o["score"] for o in out] == [1.5, 0.0]


def test_through_the_gateway_the_keys_come_from_its_rewards(svc):
    with gateway(rewards(svc)) as (url, _):
        out = _gather(4, {"gateway": url})
    assert out[1] == {"score": 1.5, "format": 1.0, "answer": 1.0, "unscored": 0.0}
    assert {tuple(o) for o in out} == {("score", "format", "answer", "unscored")}


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="exactly one of 'rewards'"):
        asyncio.run(compute_score("d", "s", "g", {}))
    with pytest.raises(ValueError, match="not configured"):
        asyncio.run(compute_score("d", "s", "g", {}, rewards=[{"name": "a", "url": "http://x"}],
                                  routes={"d": ["b"]}))
