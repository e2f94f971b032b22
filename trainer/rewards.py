"""Reward functions over HTTP: each recipe `rewards:` entry becomes an `async def` TRL can run.

TRL 1.16 detects coroutine functions, awaits them together with `asyncio.gather` on an event
loop of its own (a daemon thread started by GRPOTrainer), turns `None` into NaN, and logs each
under its `__name__` as `rewards/<name>/mean`. An httpx client belongs to the loop it was first
used on, so each reward keeps one RewardClient per event loop, created inside the coroutine.

Failure policy, per entry: a call that gets no answer (service down, deadline passed) makes all
its items `None`, logs a warning, and logs `rewards/<name>/failed` (the share of that step's
calls that failed). With `on_error: abort` the first failure stops training; with `skip`, more
than `max_failed_fraction × window` failures among the last `window` calls do. Stopping goes
through `RewardGuardCallback`: the trainer logs, saves a checkpoint and leaves its loop, then
`RewardSet.raise_if_aborted()` raises `RewardAbort` naming the reward and its URL. A request the
service refuses (422 bad params, 401 bad token) can never succeed and aborts whatever the policy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pydantic import ValidationError
from transformers import TrainerCallback

from proto.client import RewardClient, RewardRequestError, RewardServiceError
from trainer.recipe import RewardEntry
from trainer.reward_items import build_items

log = logging.getLogger(__name__)


# What a failed call raises: no answer in time, a refusal, or an answer that breaks the contract.
_CALL_FAILURES = (RewardServiceError, RewardRequestError, ValidationError, httpx.HTTPError)


class RewardAbort(RuntimeError):
    """Training stopped because a reward service failed past its recipe's policy."""

    def __init__(self, name: str, url: str, reason: str):
        super().__init__(f"reward {name!r} at {url}: {reason}")
        self.reward, self.url, self.reason = name, url, reason


class RewardEndpoint:
    """One recipe entry at run time: its clients (one per event loop) and its failure record."""

    def __init__(self, entry: RewardEntry):
        self.entry = entry
        self.name = entry.name
        self.url = ", ".join(entry.endpoints)
        self.token = _token(entry)
        self._clients: dict[asyncio.AbstractEventLoop, RewardClient] = {}
        self.recent: deque[bool] = deque(maxlen=entry.window)  # True = that call failed
        self.calls = self.failed_calls = 0
        self.latency_ms: deque[float] = deque(maxlen=50)
        self.last_error: str | None = None
        self.abort: RewardAbort | None = None

    def client(self) -> RewardClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            urls = self.entry.endpoints
            client = RewardClient(urls[0] if len(urls) == 1 else urls,
                                  deadline_s=self.entry.timeout_s, token=self.token)
            self._clients[loop] = client
        return client

    def record(self, error: Exception | None, elapsed_ms: float) -> None:
        self.calls += 1
        self.recent.append(error is not None)
        if error is None:
            self.latency_ms.append(elapsed_ms)
            return
        self.failed_calls += 1
        self.last_error = str(error)
        failed = sum(self.recent)
        if isinstance(error, RewardRequestError):
            reason = f"the service refused the request: {error}"
        elif self.entry.on_error == "abort":
            reason = f"failed with on_error=abort: {error}"
        elif failed > self.entry.max_failed_fraction * self.entry.window:
            reason = (f"{failed} of the last {len(self.recent)} calls failed, over max_failed_fraction="
                      f"{self.entry.max_failed_fraction} of window={self.entry.window}; last error: {error}")
        else:
            log.warning("reward %r at %s failed (%d of the last %d calls; items scored null): %s",
                        self.name, self.url, failed, len(self.recent), error)
            return
        if self.abort is None:
            log.error("reward %r at %s: %s", self.name, self.url, reason)
            self.abort = RewardAbort(self.name, self.url, reason)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    def loops(self) -> list[asyncio.AbstractEventLoop]:
        return list(self._clients)


def make_reward_function(endpoint: RewardEndpoint) -> Callable[..., Any]:
    """An `async def` named after the entry, returning one reward (or None) per completion."""
    entry = endpoint.entry

    async def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any):
        log_metric = columns.pop("log_metric", None)
        log_extra = columns.pop("log_extra", None)
        items, images = build_items(prompts, completions, columns,
                                    reference=entry.reference, send_images=entry.send_images)
        if log_extra is not None:  # the live panel shows each completion beside its reference
            log_extra(f"reference/{entry.name}", [item.reference for item in items])
        started = time.perf_counter()
        error: Exception | None = None
        rewards: list[float | None] = [None] * len(items)
        try:
            response = await endpoint.client().score(items, images=images, params=entry.params)
            rewards = list(response.rewards)
        except _CALL_FAILURES as exc:
            error = exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        endpoint.record(error, elapsed_ms)
        if log_metric is not None:
            log_metric(f"rewards/{entry.name}/failed", float(error is not None))
            if error is None:
                log_metric(f"rewards/{entry.name}/latency_ms", elapsed_ms)
        return rewards

    reward.__name__ = reward.__qualname__ = entry.name
    return reward


class RewardSet:
    """All rewards of a recipe: TRL's reward functions and weights, the guard, and cleanup."""

    def __init__(self, entries: Sequence[RewardEntry]):
        self.endpoints = [RewardEndpoint(e) for e in entries]
        self.functions = [make_reward_function(ep) for ep in self.endpoints]
        self.weights = [e.weight for e in entries]

    def callback(self) -> RewardGuardCallback:
        return RewardGuardCallback(self)

    def first_abort(self) -> RewardAbort | None:
        return next((ep.abort for ep in self.endpoints if ep.abort is not None), None)

    def raise_if_aborted(self) -> None:
        abort = self.first_abort()
        if abort is not None:
            raise abort

    async def preflight(self) -> None:
        """Reach every service once before a model is loaded: a wrong URL fails in seconds.

        In-process endpoints are left to `start_on`: starting one here would load its weights
        twice (its lifespan ends with this loop).
        """
        for ep in self.endpoints:
            if all(u.startswith("inproc://") for u in ep.entry.endpoints):
                continue
            try:
                info = await ep.client().info()
            except (RewardServiceError, RewardRequestError) as exc:
                raise RewardAbort(ep.name, ep.url, f"not reachable before training: {exc}") from exc
            finally:
                await ep.aclose()
            log.info("reward %r -> %s %s at %s", ep.name, info.name, info.version, ep.url)

    def start_on(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Open each client on the loop that will run the rewards (TRL's), one after the other.

        Step 1 then carries no connection set-up or /v1/info round trip, and in-process apps
        start their lifespans one at a time rather than racing each other under TRL's gather.
        """
        if loop is None:
            return

        async def _open(ep: RewardEndpoint) -> None:
            await ep.client().info()

        for ep in self.endpoints:
            try:
                asyncio.run_coroutine_threadsafe(_open(ep), loop).result(timeout=ep.entry.timeout_s + 5)
            except (RewardServiceError, RewardRequestError) as exc:
                raise RewardAbort(ep.name, ep.url, f"not reachable before training: {exc}") from exc

    def close(self) -> None:
        """Close every client on the loop it belongs to (TRL's loop thread, or a finished one)."""
        for ep in self.endpoints:
            for loop in ep.loops():
                if loop.is_closed():
                    continue
                if loop.is_running():
                    asyncio.run_coroutine_threadsafe(ep.aclose(), loop).result(timeout=30)
                else:
                    loop.run_until_complete(ep.aclose())


class RewardGuardCallback(TrainerCallback):
    """After each optimizer step: if a reward crossed its policy, log, checkpoint and stop."""

    def __init__(self, rewards: RewardSet):
        self.rewards = rewards

    def on_step_end(self, args, state, control, **kwargs):
        if _any_process(self.rewards.first_abort() is not None):
            control.should_log = True
            control.should_save = True
            control.should_training_stop = True
        return control


def _any_process(flag: bool) -> bool:
    # Every rank must stop together, or the others wait forever in the next collective.
    from accelerate import PartialState

    if PartialState().num_processes == 1:
        return flag
    from accelerate.utils import gather_object

    return any(gather_object([flag]))


def _token(entry: RewardEntry) -> str | None:
    if entry.token_env is None:
        return None
    token = os.environ.get(entry.token_env)
    if not token:
        raise ValueError(f"reward {entry.name!r}: token_env {entry.token_env} is not set in the environment")
    return token
