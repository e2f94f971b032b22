"""verl custom reward function over the reward services: `compute_score`, configured by `reward_kwargs`.

    reward:                               # verl 0.9's config (docs/integrations.md has the whole of it)
      num_workers: 8                      # reward loop worker processes, each calling per sample
      custom_reward_function:
        path: <site-packages>/integrations/verl.py    # or pkg://integrations.verl
        name: compute_score               # compute_score_sync for the `remote` reward manager
        reward_kwargs:
          gateway: http://gateway:8000    # one URL: the gateway batches the samples of all workers
          fallback: 0.0

verl 0.9's reward loop awaits `compute_score(data_source=, solution_str=, ground_truth=,
extra_info=)` once per sample, as each rollout finishes, in `reward.num_workers` processes. Through
the gateway, samples from all of them reach each service as batches; with `rewards:` (entries,
each service called from every worker) only the samples one process has in flight together share
a request. Every answer has the same keys: `score`, one per reward and `unscored` (1.0 when some
reward fell back to `fallback`); never None. `ground_truth` is a reference, a list of answers or a
label object `{reference, image, choices, meta}`; a blank one is no reference. The image may also
come from `extra_info[image_key]` (a path under the services' image root, or base64).

verl loads this file by its path as a module of its own, and its `remote` manager pickles the
function by value into worker processes: so everything here but the two functions lives in proto.
"""

from typing import Any

from proto.coalesce import run_sync
from proto.labels import item_from, plain
from proto.sample_rewards import sample_rewards

# verl adds these when it runs a reward model server; the services do not need them.
VERL_EXTRAS = frozenset({"reward_router_address", "reward_model_tokenizer"})


async def compute_score(data_source: Any = None, solution_str: str | None = None, ground_truth: Any = None,
                        extra_info: Any = None, **reward_kwargs: Any) -> dict[str, float]:
    """One sample -> `{score, <reward>..., unscored}`, for verl's reward loop (naive manager)."""
    if solution_str is None:
        raise TypeError("compute_score needs solution_str, the sample's decoded response")
    config = {k: plain(v) for k, v in reward_kwargs.items() if k not in VERL_EXTRAS}
    image_key = config.pop("image_key", "image")
    rewards = await sample_rewards(config)
    extra = extra_info or {}
    item, images = item_from(solution_str, plain(extra.get("question")), plain(ground_truth),
                             image=plain(extra.get(image_key)))
    return await rewards.score(item, images, group=str(data_source))


def compute_score_sync(data_source: Any = None, solution_str: str | None = None, ground_truth: Any = None,
                       extra_info: Any = None, **reward_kwargs: Any) -> dict[str, float]:
    """`compute_score` as a plain function, for verl's `remote` manager (which refuses a coroutine).

    Calls from every thread of a process run on one shared event loop, so they share connections
    and coalesce; across processes, configure `gateway`.
    """
    return run_sync(compute_score(data_source, solution_str, ground_truth, extra_info, **reward_kwargs))
