"""verl 0.9.1's reward managers that run their workers as ray processes, on a local ray (2 CPUs).

- RewardLoopManager (verl/experimental/reward_loop/reward_loop.py, `compute_rm_score`) starts
  `reward.num_workers` RewardLoopWorker processes, splits the batch over them (each awaits
  `compute_score` per sample), and assembles `rm_scores` and one column per reward_extra_info
  key, the keys taken from the first sample: every answer must carry the same keys.
- the `remote` manager (reward_manager/remote.py) asserts a plain function and calls it in its own
  RewardComputeWorker processes, one sample at a time each.
Both go through one gateway URL, as docs/integrations.md recommends: the samples of every worker
process reach each service as batches.
"""

from __future__ import annotations

import pytest
import ray
from verl.experimental.reward_loop.reward_loop import RewardLoopManager

from tests.integrations.verl_support import calls, reward_loop, rollout_batch, verl_config
from tests.services.gateway.support import gateway, rewards

GOOD = "<think>two</think><answer>2</answer>"
WRONG = "<think>three</think><answer>3</answer>"


@pytest.fixture(scope="module")
def cluster():
    # Workers inherit this process's sys.path, so they import this checkout's proto and integrations.
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20, log_to_driver=False)
    yield
    ray.shutdown()


def test_the_reward_loop_manager_assembles_the_batch_and_the_gateway_batches_across_workers(
        cluster, svc, tokenizer, tokenizer_dir):
    samples = [{"response": r, "ground_truth": "2"} for r in [GOOD, WRONG] * 7]
    samples += [{"response": GOOD, "ground_truth": ""}, {"response": GOOD, "ground_truth": None}]
    # The gateway sends a batch when 16 items wait (max_batch) or after 1 s: one batch of all 16 means
    # the two worker processes' samples met there.
    with gateway(rewards(svc), coalesce_ms=1000, max_batch=16, fallback=-1.0) as (url, _):
        before = calls(svc)
        kwargs = {"gateway": url, "fallback": -1.0}
        manager = RewardLoopManager(verl_config(tokenizer_dir, kwargs, num_workers=2))
        out = manager.compute_rm_score(rollout_batch(tokenizer, samples))
    assert {n: c - before[n] for n, c in calls(svc).items()} == {"format": 1, "answer": 1}
    assert out.batch["rm_scores"].sum(-1).tolist() == [1.5, 0.5] * 7 + [-0.5, -0.5]
    assert out.meta_info["reward_extra_keys"] == ["score", "format", "answer", "unscored"]
    assert out.non_tensor_batch["unscored"].tolist() == [0.0] * 14 + [1.0, 1.0]
    assert out.non_tensor_batch["answer"].tolist() == [1.0, 0.0] * 7 + [-1.0, -1.0]


def test_the_remote_manager_runs_the_sync_function_in_its_worker_processes(cluster, svc, tokenizer,
                                                                              tokenizer_dir):
    data = rollout_batch(tokenizer, [{"response": r, "ground_truth": "2"} for r in [GOOD, WRONG]])
    with gateway(rewards(svc)) as (url, _):
        refused = verl_config(tokenizer_dir, {"gateway": url}, manager="remote", num_workers=1)
        with pytest.raises(AssertionError, match="Async reward score is not supported"):
            reward_loop(refused, data)
        config = verl_config(tokenizer_dir, {"gateway": url}, manager="remote", name="compute_score_sync",
                             num_workers=1)
        out = reward_loop(config, data)
    assert [o["reward_extra_info"] for o in out] == [
        {"score": 1.5, "format": 1.0, "answer": 1.0, "unscored": 0.0},
        {"score": 0.5, "format": 1.0, "answer": 0.0, "unscored": 0.0}]
