"""What the reward-function tests share: completions, an entry for a service, a TRL-shaped call."""

from __future__ import annotations

import asyncio

from trainer.recipe import RewardEntry

GOOD = "<think>two circles</think><answer>2</answer>"
HALF = "<answer>2</answer> trailing"


def _entry(url: str, **kw) -> RewardEntry:
    return RewardEntry(name=kw.pop("name", "format"), url=url, **kw)


def _call(func, completions, **columns):
    metrics: list[tuple[str, float]] = []
    prompts = [[{"role": "user", "content": [{"type": "text", "text": "How many?"}]}]] * len(completions)
    out = asyncio.run(func(prompts=prompts, completions=completions,
                           log_metric=lambda k, v: metrics.append((k, v)), **columns))
    return out, dict(metrics)
