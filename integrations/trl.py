"""Reward services as TRL reward functions: `remote_rewards(entries) -> (reward_funcs, reward_weights)`.

    from trl import GRPOConfig, GRPOTrainer
    from integrations.trl import remote_rewards

    funcs, weights = remote_rewards([
        {"name": "format", "url": "http://localhost:8100", "params": {"mode": "think_answer"}},
        {"name": "answer", "url": "http://localhost:8102", "weight": 2.0},
    ])
    trainer = GRPOTrainer(model=..., reward_funcs=funcs, args=GRPOConfig(reward_weights=weights, ...),
                          train_dataset=...)

Each entry becomes an `async def` named after it (TRL runs coroutine functions together on its own
event loop and logs `rewards/<name>/mean`), which sends the whole batch in one request per
service, each distinct `image`/`images` once (its file's own bytes, or a path under the entry's
`image_root` when the service shares that folder), and returns one float or None per completion
(TRL turns None into NaN and leaves it out of the group's baseline).

A call that gets no answer returns None for its items and logs `rewards/<name>/failed`; with
`on_error: abort` it raises `RewardCallError` instead, and a request the service refuses (bad
params, bad token) raises whatever the policy, since it can never succeed. rewardstack's own
trainer passes `on_call` to apply its checkpoint-then-stop policy instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from pydantic import ValidationError

from integrations.trl_items import build_items
from proto.client import RewardClient, RewardRequestError, RewardServiceError
from proto.rewards import RewardEntry

log = logging.getLogger(__name__)

# What a failed call raises: no answer in time, a refusal, or an answer that breaks the contract.
CALL_FAILURES = (RewardServiceError, RewardRequestError, ValidationError, httpx.HTTPError)
OnCall = Callable[[Exception | None, float], None]


class RewardCallError(RuntimeError):
    """A reward call failed and the entry's policy says training must not go on without it."""


class RemoteReward:
    """One entry at run time: a RewardClient per event loop (httpx clients belong to their loop)."""

    def __init__(self, entry: RewardEntry | Mapping[str, Any], *, on_call: OnCall | None = None):
        self.entry = entry if isinstance(entry, RewardEntry) else RewardEntry.model_validate(entry)
        self.name = self.entry.name
        self.url = ", ".join(self.entry.endpoints)
        self.entry.token()  # an unset token_env fails here, when the functions are built, not at step 1
        self.on_call = on_call or self._default_policy
        self._clients: dict[asyncio.AbstractEventLoop, RewardClient] = {}

    def client(self) -> RewardClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self.entry.client()
            self._clients[loop] = client
        return client

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                       **columns: Any) -> list[float | None]:
        log_metric = columns.pop("log_metric", None)
        log_extra = columns.pop("log_extra", None)
        items, images = build_items(prompts, completions, columns, reference=self.entry.reference,
                                    send_images=self.entry.send_images, image_root=self.entry.image_root)
        if log_extra is not None:  # TRL's completions table (and the live panel) show the reference
            log_extra(f"reference/{self.name}", [item.reference for item in items])
        started = time.perf_counter()
        error: Exception | None = None
        rewards: list[float | None] = [None] * len(items)
        try:
            response = await self.client().score(items, images=images, params=self.entry.params)
            rewards = list(response.rewards)
        except CALL_FAILURES as exc:
            error = exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        if log_metric is not None:
            log_metric(f"rewards/{self.name}/failed", float(error is not None))
            if error is None:
                log_metric(f"rewards/{self.name}/latency_ms", elapsed_ms)
        self.on_call(error, elapsed_ms)
        return rewards

    def _default_policy(self, error: Exception | None, _elapsed_ms: float) -> None:
        if error is None:
            return
        if isinstance(error, RewardRequestError) or self.entry.on_error == "abort":
            raise RewardCallError(self.entry.failure(error)) from error
        log.warning("%s; its items score None this step", self.entry.failure(error))

    def loops(self) -> list[asyncio.AbstractEventLoop]:
        return list(self._clients)

    async def aclose(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def close(self) -> None:
        """Close every client on the loop it belongs to (TRL's loop thread, or a finished one)."""
        for loop in self.loops():
            if loop.is_closed():
                self._clients.pop(loop, None)
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(timeout=30)
            else:
                loop.run_until_complete(self.aclose())


def reward_function(remote: RemoteReward) -> Callable[..., Any]:
    """`remote` as a plain `async def` named after its entry (TRL does not see a class's async __call__)."""

    async def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any):
        return await remote(prompts, completions, **columns)

    reward.__name__ = reward.__qualname__ = remote.name
    reward.remote = remote  # type: ignore[attr-defined]
    return reward


def remote_rewards(entries: Sequence[RewardEntry | Mapping[str, Any]], *,
                   on_call: Callable[[RemoteReward], OnCall] | None = None,
                   ) -> tuple[list[Callable[..., Any]], list[float]]:
    """TRL reward functions for `entries` (recipe-style dicts or RewardEntry), and their weights.

    `on_call(remote)` may return a per-reward hook `(error or None, elapsed_ms)` that replaces
    the default policy (warn and score None; raise on a refusal or with `on_error: abort`).
    """
    remotes = [RemoteReward(e) for e in entries]
    names = [r.name for r in remotes]
    if len(set(names)) != len(names):
        raise ValueError(f"reward names must be unique, they name TRL's log columns: {names}")
    if on_call is not None:
        for r in remotes:
            r.on_call = on_call(r)
    return [reward_function(r) for r in remotes], [r.entry.weight for r in remotes]
