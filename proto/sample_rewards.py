"""SampleRewards: one sample's rewards, for trainers that ask once per sample and cannot take null.

verl's reward loop asks for one sample at a time, from many coroutines in each of several worker
processes. Each reward's calls go through a Coalescer, so the samples one process has in flight at
once share one request per service. With `gateway`, every process sends its samples to one
rewardstack gateway, which coalesces the samples of all processes into one request per service.
The answer has the same keys every time (trainers stack them into columns): `score`, the weighted
sum with a reward that could not be scored counted as `fallback`; one key per reward, its value or
`fallback`; and `unscored`, 1.0 when some reward fell back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from proto.client import RewardServiceError
from proto.coalesce import Coalescer, shared
from proto.models import ImageData, ScoreItem
from proto.rewards import RewardEntry, unique_names

log = logging.getLogger(__name__)
# No answer in time, or one that breaks the contract: the sample gets the fallback. A refusal
# (RewardRequestError: bad params, bad token) is raised, since it would fail every sample.
UNAVAILABLE = (RewardServiceError, ValidationError, httpx.HTTPError)


class SampleRewardsConfig(BaseModel):
    """Which rewards score a sample: entries, each service called from this process, or a gateway."""

    model_config = ConfigDict(extra="forbid")

    rewards: list[RewardEntry] | None = Field(default=None, description="A recipe's entries.")
    gateway: str | list[str] | None = Field(
        default=None, description="A rewardstack gateway (or its replicas): its rewards, combined there.")
    token_env: str | None = Field(default=None, description="Bearer token variable for the gateway.")
    timeout_s: float = Field(default=60.0, gt=0, description="The gateway's deadline for one call.")
    unreachable_s: float = Field(default=5.0, gt=0, description="The gateway refusing this long is down.")
    fallback: float = Field(default=0.0, allow_inf_nan=False)
    routes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Group (verl: data_source) -> its rewards; '*': the others; default: all rewards.")
    coalesce_ms: float = Field(default=5.0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> SampleRewardsConfig:
        if (self.rewards is None) == (self.gateway is None):
            raise ValueError("give exactly one of 'rewards' (entries) or 'gateway' (URL)")
        if self.routes and self.rewards is None:
            raise ValueError("routes need 'rewards'; the gateway always combines all of its rewards")
        if self.rewards is not None:
            names = {e.name for e in unique_names(self.rewards)}
            unknown = sorted({n for chosen in self.routes.values() for n in chosen} - names)
            if unknown:
                raise ValueError(f"routes name rewards that are not configured: {unknown}")
        return self

    def entries(self) -> list[RewardEntry]:
        if self.rewards is not None:
            return self.rewards
        one = isinstance(self.gateway, str)
        return [RewardEntry(name="gateway", url=self.gateway if one else None,
                            urls=None if one else self.gateway, timeout_s=self.timeout_s,
                            unreachable_s=self.unreachable_s, token_env=self.token_env)]


class SampleRewards:
    """One config on one event loop: a coalescer per reward, or one for the gateway."""

    def __init__(self, config: SampleRewardsConfig):
        self.config = config
        self.entries = config.entries()
        self.coalescers = {e.name: Coalescer(e.client(), e.params, window_s=config.coalesce_ms / 1000)
                           for e in self.entries}
        self.weights = {e.name: e.weight for e in self.entries}

    async def start(self) -> None:
        if self.config.gateway is not None:  # the rewards and their weights are the gateway's
            info = await self.coalescers["gateway"].client.info()
            self.weights = {r["name"]: float(r.get("weight", 1.0)) for r in info.config.get("rewards", [])}

    async def score(self, item: ScoreItem, images: Mapping[str, ImageData],
                    group: str | None = None) -> dict[str, float]:
        """`{score, <reward>..., unscored}` for one item; never None, whatever failed."""
        rewards: dict[str, float | None] = dict.fromkeys(self.weights)
        if self.config.gateway is not None:
            _, parts = await self._one(self.entries[0], item, images)
            rewards.update({n: parts.get(n) for n in rewards})
            return fallback_answer(rewards, self.weights, self.config.fallback)
        routes = self.config.routes
        chosen = routes.get(group or "", routes.get("*", list(self.weights)))
        asked = [e for e in self.entries if e.name in chosen]
        answers = await asyncio.gather(*(self._one(e, item, images) for e in asked))
        rewards.update({e.name: r for e, (r, _) in zip(asked, answers, strict=True)})
        return fallback_answer(rewards, self.weights, self.config.fallback, counted=chosen)

    async def _one(self, entry: RewardEntry, item: ScoreItem,
                   images: Mapping[str, ImageData]) -> tuple[float | None, dict[str, float]]:
        try:
            rewards, details = await self.coalescers[entry.name].score([item], images)
        except UNAVAILABLE as exc:
            if entry.on_error == "abort":
                raise
            log.warning("reward %r unavailable; the sample gets the fallback: %s", entry.name, exc)
            return None, {}
        return rewards[0], details[0].parts


def fallback_answer(rewards: Mapping[str, float | None], weights: Mapping[str, float], fallback: float,
                    counted: Sequence[str] | None = None) -> dict[str, float]:
    """`{score, <reward>..., unscored}`: the weighted sum of the `counted` rewards (default all),
    each missing one counted as `fallback`; `unscored` 1.0 when one of them is missing."""
    counted = list(rewards) if counted is None else counted
    values = {n: float(fallback if r is None else r) for n, r in rewards.items()}
    out = {"score": float(sum(weights[n] * values[n] for n in counted)), **values}
    out["unscored"] = float(any(rewards[n] is None for n in counted))
    return out


async def sample_rewards(config: Mapping[str, Any]) -> SampleRewards:
    """The SampleRewards for `config` (plain values) on the running loop, built once per loop and
    config, so that concurrent samples share its clients and coalescers."""
    key = "sample_rewards:" + json.dumps(config, sort_keys=True, default=str)
    return await shared(key, lambda: _build(config))


async def _build(config: Mapping[str, Any]) -> SampleRewards:
    rewards = SampleRewards(SampleRewardsConfig.model_validate(config))
    await rewards.start()
    return rewards
