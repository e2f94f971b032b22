"""The verl adapter run by verl 0.9.1's own code, in this process: its loader takes the adapter by file
path (as docs/integrations.md says) or by module name, and its reward-loop worker
(verl/experimental/reward_loop/reward_loop.py, `RewardLoopWorker.compute_score_batch`) hands each
sample of a DataProto to the naive manager's `run_single`, which awaits `compute_score` (or runs a
plain function in a thread) per sample. tests/integrations/test_verl_ray.py runs the managers that
need ray's worker processes.
"""

from __future__ import annotations

import asyncio

import pytest
from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
from verl.trainer.ppo.reward import get_custom_reward_fn

from tests.helpers import free_port
from tests.integrations.verl_support import calls, reward_loop, rollout_batch, verl_config
from tests.services.gateway import payloads as p
from tests.services.gateway.support import rewards

GOOD = "<think>two</think><answer>2</answer>"
WRONG = "<think>three</think><answer>3</answer>"
HANG_GUARD_S = 10  # ten times one unreachable_s: reached only if samples pay for a dead service in turn


@pytest.mark.parametrize("name", ["compute_score", "compute_score_sync"])
def test_loaded_by_file_path_each_sample_is_scored_and_one_process_batches(svc, tokenizer, tokenizer_dir, name):
    config = verl_config(tokenizer_dir, {"rewards": rewards(svc), "coalesce_ms": 300}, name=name)
    before = calls(svc)
    out = reward_loop(config, rollout_batch(tokenizer, [{"response": r, "ground_truth": "2"}
                                                        for r in [GOOD, WRONG] * 2]))
    assert [o["reward_score"] for o in out] == [1.5, 0.5] * 2
    assert out[0]["reward_extra_info"] == {"score": 1.5, "format": 1.0, "answer": 1.0, "unscored": 0.0}
    # Four samples in flight together in one process: one request per service. The sync form's
    # calls come from verl's executor threads (at least 5 of them) and meet on one shared loop.
    assert {n: c - before[n] for n, c in calls(svc).items()} == {"format": 1, "answer": 1}


def test_loaded_by_module_name(svc, tokenizer_dir):
    config = verl_config(tokenizer_dir, {"rewards": rewards(svc)}, path="pkg://integrations.verl")
    score = get_custom_reward_fn(config)
    out = asyncio.run(score(data_source="geo3k", solution_str=GOOD, ground_truth="2", extra_info={}))
    assert out == {"score": 1.5, "format": 1.0, "answer": 1.0, "unscored": 0.0}


def test_a_blank_ground_truth_gives_the_fallback_flagged(svc, tokenizer, tokenizer_dir):
    blanks = ["", "  ", [], ["", " "], None]
    config = verl_config(tokenizer_dir, {"rewards": rewards(svc), "fallback": -1.0})
    out = reward_loop(config, rollout_batch(tokenizer, [{"response": GOOD, "ground_truth": b} for b in blanks]))
    assert all(o["reward_extra_info"] == {"score": 0.5 - 1.0, "format": 1.0, "answer": -1.0, "unscored": 1.0}
               for o in out)


def test_sixteen_samples_with_a_dead_service_all_get_the_fallback(svc, tokenizer, tokenizer_dir):
    dead = f"http://127.0.0.1:{free_port()}"
    kwargs = {"rewards": rewards(svc, answer={"url": dead, "unreachable_s": 1.0}), "fallback": -1.0}
    data = rollout_batch(tokenizer, [{"response": GOOD, "ground_truth": "2"}] * 16)
    out = reward_loop(verl_config(tokenizer_dir, kwargs), data, guard_s=HANG_GUARD_S)
    assert all(o["reward_extra_info"] == {"score": 0.5 - 1.0, "format": 1.0, "answer": -1.0, "unscored": 1.0}
               for o in out)


def test_routes_images_and_label_objects(svc, tokenizer, tokenizer_dir):
    image = p.png_b64()
    samples = [{"response": GOOD, "ground_truth": "2", "data_source": "ocr", "extra_info": {"image": image}},
               {"response": "<think>t</think><answer>two</answer>", "ground_truth": {"reference": ["2", "two"]}}]
    config = verl_config(tokenizer_dir, {"rewards": rewards(svc), "routes": {"ocr": ["answer"]}})
    ocr, label_object = reward_loop(config, rollout_batch(tokenizer, samples))
    # ocr asks only `answer`: format keeps its key (the fallback) but neither counts nor flags
    assert ocr["reward_extra_info"] == {"score": 1.0, "format": 0.0, "answer": 1.0, "unscored": 0.0}
    assert label_object["reward_extra_info"]["answer"] == 1.0
    sent = [b for b in svc["answer"][1].bodies if b.get("images")][-1]
    assert list(sent["images"].values()) == [{"b64": image}]


def test_a_bad_config_is_named(svc, tokenizer_dir):
    for kwargs, message in [({}, "exactly one of 'rewards'"),
                            ({"rewards": rewards(svc), "routes": {"d": ["nope"]}}, "not configured")]:
        score = get_custom_reward_fn(verl_config(tokenizer_dir, kwargs))
        with pytest.raises(ValueError, match=message):
            asyncio.run(score(data_source="d", solution_str="s", ground_truth="g", extra_info={}))


def test_verl_0_9_has_no_batch_reward_manager():
    # docs/integrations.md no longer offers the legacy `batch` manager: 0.9's reward loop lacks it.
    with pytest.raises(ValueError, match="Unknown reward manager: batch"):
        get_reward_manager_cls("batch")
