"""verl custom reward function over the reward services: `compute_score`, configured by `reward_kwargs`.

    reward:                               # verl's config (see docs/integrations.md)
      custom_reward_function:
        path: <site-packages>/integrations/verl.py
        name: compute_score               # compute_score_batch for the legacy `batch` manager
        reward_kwargs:
          rewards:                        # a recipe's entries; or `gateway: http://gateway:8000`
            - {name: format, url: http://regex-format:8000, weight: 0.5}
            - {name: answer, url: http://vqa-accuracy:8000, params: {mode: vqa}}
          routes: {geo3k: [format, answer], ocr: [answer]}   # data_source -> rewards (default: all)
          fallback: 0.0

verl's reward loop awaits `compute_score(data_source=, solution_str=, ground_truth=, extra_info=)`
once per sample, batch × n at once on one event loop; the calls are gathered (`coalesce_ms`) into
one /v1/score request per service. Every answer has the same keys: `score`, one per reward, and
`unscored` (1.0 when some reward fell back to `fallback`); never None. `ground_truth` is a
reference, a list of answers or a label object `{reference, image, choices, meta}`; the image may
also come from `extra_info[image_key]` (a path under the services' image root, or base64).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from proto.client import RewardServiceError
from proto.coalesce import Coalescer
from proto.labels import item_from
from proto.rewards import RewardEntry, unique_names

log = logging.getLogger(__name__)
_VERL_EXTRAS = {"reward_router_address", "reward_model_tokenizer"}  # verl's own; unused here


class VerlRewardConfig(BaseModel):
    """`reward_kwargs`: rewards (entries) or gateway (URL, with its /v1/info naming the rewards)."""

    model_config = ConfigDict(extra="forbid")

    rewards: list[RewardEntry] | None = None
    gateway: str | list[str] | None = None
    token_env: str | None = Field(default=None, description="Bearer token variable for the gateway.")
    timeout_s: float = Field(default=60.0, gt=0)
    fallback: float = Field(default=0.0, allow_inf_nan=False)
    routes: dict[str, list[str]] = Field(default_factory=dict)
    coalesce_ms: float = Field(default=5.0, ge=0)
    image_key: str = "image"


class _Scorer:
    """One config on one event loop: a coalescer per reward (or one for the gateway)."""

    def __init__(self, config: VerlRewardConfig):
        self.config = config
        if config.gateway is not None:
            one = isinstance(config.gateway, str)
            entry = RewardEntry(name="gateway", url=config.gateway if one else None,
                                urls=None if one else config.gateway,
                                timeout_s=config.timeout_s, token_env=config.token_env)
            self.entries = [entry]
        else:
            self.entries = unique_names(list(config.rewards or []))
        self.coalescers = {e.name: Coalescer(e.client(), e.params, window_s=config.coalesce_ms / 1000)
                           for e in self.entries}
        self.names: list[str] = [e.name for e in self.entries]
        unknown = sorted({n for names in config.routes.values() for n in names} - set(self.names))
        if config.routes and (config.gateway is not None or unknown):
            raise ValueError(f"routes name rewards that are not configured: {unknown}" if unknown
                             else "routes need 'rewards'; the gateway always combines all of its rewards")

    async def start(self) -> None:
        if self.config.gateway is not None:  # the reward names come from the gateway itself
            info = await self.coalescers["gateway"].client.info()
            self.names = [r["name"] for r in info.config.get("rewards", [])]

    async def one(self, data_source: Any, solution: str, ground_truth: Any, extra_info: Any) -> dict:
        extra = dict(extra_info or {})
        item, images = item_from(solution, extra.get("question"), _plain(ground_truth),
                                 image=extra.get(self.config.image_key))
        chosen = self._routed(str(data_source))
        answers = await asyncio.gather(*(self._reward(n, item, images) for n in chosen))
        scores = dict(zip(chosen, answers, strict=True))
        return self._keys(scores, chosen)

    def _routed(self, data_source: str) -> list[str]:
        if self.config.gateway is not None:
            return ["gateway"]
        return self.config.routes.get(data_source, self.config.routes.get("*", self.names))

    async def _reward(self, name: str, item, images) -> tuple[float | None, dict[str, float]]:
        try:
            rewards, details = await self.coalescers[name].score([item], images)
        except (RewardServiceError, ValidationError, httpx.HTTPError) as exc:
            log.warning("reward %r unavailable; the item gets the fallback: %s", name, exc)
            return None, {}
        return rewards[0], details[0].parts

    def _keys(self, scores: dict[str, tuple[float | None, dict]], chosen: list[str]) -> dict[str, float]:
        fb = self.config.fallback
        if self.config.gateway is not None:
            total, parts = scores["gateway"]
            per = {n: parts.get(n) for n in self.names}
        else:
            per = {n: scores[n][0] if n in scores else None for n in self.names}
            weights = {e.name: e.weight for e in self.entries}
            total = sum(weights[n] * (fb if per[n] is None else per[n]) for n in chosen)
        unscored = any(per[n] is None for n in chosen) if self.config.gateway is None else total is None
        out = {"score": fb if total is None else float(total)}
        out.update({n: fb if v is None else float(v) for n, v in per.items()})
        out["unscored"] = float(unscored)
        return out


_SCORERS: dict[tuple[int, str], asyncio.Task] = {}


async def compute_score(data_source: Any = None, solution_str: str | None = None,
                        ground_truth: Any = None, extra_info: Any = None, *,
                        data_sources: Sequence[Any] | None = None, solution_strs: Sequence[str] | None = None,
                        ground_truths: Sequence[Any] | None = None, extra_infos: Sequence[Any] | None = None,
                        **reward_kwargs: Any):
    """One sample -> `{score, <reward>..., unscored}`; the batch keywords -> a list of those."""
    scorer = await _scorer(reward_kwargs)
    if solution_strs is not None:
        n = len(solution_strs)
        return list(await asyncio.gather(*(
            scorer.one(_at(data_sources, i), solution_strs[i], _at(ground_truths, i), _at(extra_infos, i))
            for i in range(n))))
    if solution_str is None:
        raise TypeError("compute_score needs solution_str (one sample) or solution_strs (a batch)")
    return await scorer.one(data_source, solution_str, ground_truth, extra_info)


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[str],
                        ground_truths: Sequence[Any], extra_infos: Sequence[Any] | None = None,
                        **reward_kwargs: Any) -> list[dict]:
    """The batch form for verl's legacy `batch` reward manager, which calls it synchronously.

    It runs on one event loop kept in a daemon thread, so the clients (and their connections)
    live across calls instead of being rebuilt, and leaked, on a new loop each step.
    """
    coro = compute_score(data_sources=data_sources, solution_strs=solution_strs,
                         ground_truths=ground_truths, extra_infos=extra_infos, **reward_kwargs)
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()


async def _scorer(reward_kwargs: dict[str, Any]) -> _Scorer:
    raw = {k: _plain(v) for k, v in reward_kwargs.items() if k not in _VERL_EXTRAS}
    key = (id(asyncio.get_running_loop()), json.dumps(raw, sort_keys=True, default=str))
    task = _SCORERS.get(key)
    if task is None:
        # The first of many concurrent calls builds the scorer; the others wait for the same one.
        task = _SCORERS[key] = asyncio.get_running_loop().create_task(_build(raw))
    try:
        return await asyncio.shield(task)
    except Exception:
        _SCORERS.pop(key, None)  # a bad config or an unreachable gateway is retried on the next call
        raise


async def _build(raw: dict[str, Any]) -> _Scorer:
    config = VerlRewardConfig.model_validate(raw)
    if (config.rewards is None) == (config.gateway is None):
        raise ValueError("reward_kwargs need exactly one of 'rewards' (entries) or 'gateway' (URL)")
    scorer = _Scorer(config)
    await scorer.start()
    return scorer


_LOOP: list[asyncio.AbstractEventLoop] = []
_LOOP_LOCK = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    with _LOOP_LOCK:
        if not _LOOP:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rewardstack-verl", daemon=True).start()
            _LOOP.append(loop)
        return _LOOP[0]


def _at(values: Sequence[Any] | None, i: int) -> Any:
    return values[i] if values is not None else None


def _plain(value: Any) -> Any:
    """OmegaConf containers and numpy arrays (verl's non-tensor batch) as plain Python values."""
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value
