"""verl 0.9's own config and batches for the tests: its generated trainer config with the reward
section set as docs/integrations.md tells users, and a DataProto of rollouts laid out as verl's
trainer hands them to the reward loop (left-padded prompts, right-padded responses, the dataset's
data_source / reward_model / extra_info columns)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import torch
import verl
from omegaconf import OmegaConf
from tensordict import TensorDict
from verl import DataProto
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

ADAPTER = Path(__file__).resolve().parents[2] / "integrations" / "verl.py"
TRAINER_CONFIG = Path(verl.__file__).parent / "trainer" / "config" / "_generated_ppo_trainer.yaml"


def verl_config(tokenizer_dir: Path, reward_kwargs: dict[str, Any], *, path: str = str(ADAPTER),
                name: str = "compute_score", manager: str = "naive", num_workers: int = 2):
    config = OmegaConf.load(TRAINER_CONFIG)
    OmegaConf.update(config, "actor_rollout_ref.model.path", str(tokenizer_dir))
    OmegaConf.update(config, "reward.num_workers", num_workers)
    OmegaConf.update(config, "reward.reward_manager.name", manager)
    OmegaConf.update(config, "reward.custom_reward_function.path", path)
    OmegaConf.update(config, "reward.custom_reward_function.name", name)
    OmegaConf.update(config, "reward.custom_reward_function.reward_kwargs", reward_kwargs, force_add=True)
    return config


def rollout_batch(tokenizer, samples: list[dict[str, Any]]) -> DataProto:
    """Samples `{response, ground_truth, data_source?, extra_info?}` as one batch."""
    prompts = [tokenizer(s.get("prompt", "How many circles?"), add_special_tokens=False)["input_ids"]
               for s in samples]
    responses = [tokenizer(s["response"], add_special_tokens=False)["input_ids"] for s in samples]
    prompt_ids, prompt_mask = _pad(prompts, left=True)
    response_ids, response_mask = _pad(responses, left=False)
    batch = TensorDict({"prompts": prompt_ids, "responses": response_ids,
                        "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
                        "attention_mask": torch.cat([prompt_mask, response_mask], dim=1)},
                       batch_size=len(samples))
    columns = {
        "data_source": np.array([s.get("data_source", "geo3k") for s in samples], dtype=object),
        "reward_model": np.array([{"ground_truth": s["ground_truth"]} for s in samples], dtype=object),
        "extra_info": np.array([dict(s.get("extra_info", {}), index=i) for i, s in enumerate(samples)],
                               dtype=object),
    }
    return DataProto(batch=batch, non_tensor_batch=columns)


def reward_loop(config, data: DataProto, guard_s: float | None = None) -> list[dict]:
    """verl's RewardLoopWorker in this process (built on the running loop, as its ray actor is)."""
    async def go():
        worker = RewardLoopWorker(config)
        return await asyncio.wait_for(worker.compute_score_batch(data), guard_s)

    return asyncio.run(go())


def calls(svc) -> dict[str, int]:
    """/v1/score requests each recorded service has had so far."""
    return {name: rec.calls for name, (_, rec) in svc.items()}


def _pad(rows: list[list[int]], *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids, mask = torch.zeros(len(rows), width, dtype=torch.long), torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        span = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, span], mask[i, span] = torch.tensor(r, dtype=torch.long), 1
    return ids, mask
