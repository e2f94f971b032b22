"""The recipe's rewards in training: TRL reward functions (from `integrations.trl`) plus the failure policy.

The reward functions themselves are the public helper's (`integrations.trl.remote_rewards`), so
rewardstack's trainer and a plain TRL script send exactly the same requests; this module adds
what only a recipe run has: a failure policy with a checkpoint.

Failure policy, per entry: a call that gets no answer makes all its items `None`, logs a warning,
and logs `rewards/<name>/failed`. A service that refuses connections is known to be down within
`unreachable_s` (default 5 s), not at the end of `timeout_s`, and until it answers again each
later call fails at once after one quick probe, so a dead service costs one short wait, not a
deadline per step. With `on_error: abort` the first failure stops training; with `skip`, more
than `max_failed_fraction × window` failures among the last `window` calls do. Stopping goes
through `RewardGuardCallback`: the trainer logs, saves a checkpoint and leaves its loop, then
`RewardSet.raise_if_aborted()` raises `RewardAbort` naming the reward, its URL, and how to resume.
A request the service refuses (422 bad params, 401 bad token) can never succeed and aborts
whatever the policy.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from transformers import TrainerCallback

from integrations.trl import RemoteReward, reward_function
from proto.client import RewardRequestError, RewardServiceError
from proto.rewards import RewardEntry, failure_cause
from trainer.feedback.timing import RewardPhaseTimer

log = logging.getLogger(__name__)

RESUME_HINT = ("a checkpoint was saved; once the service answers again, resume with "
               "`rewardstack train RECIPE --set resume=auto`")


class RewardAbort(RuntimeError):
    """Training stopped because a reward service failed past its recipe's policy."""

    def __init__(self, name: str, url: str, reason: str, *, resume: str | None = RESUME_HINT):
        super().__init__(f"reward {name!r} at {url}: {reason}" + (f"\n{resume}" if resume else ""))
        self.reward, self.url, self.reason = name, url, reason
        self.resumable = resume is not None  # False before training: nothing was saved

    def resume_command(self, recipe: str, overrides: Sequence[str] = ()) -> str:
        """The exact command that continues this run from its last checkpoint."""
        kept = [o for o in overrides if not o.startswith("resume=")]
        sets = "".join(f" --set {o}" for o in [*kept, "resume=auto"])
        return f"rewardstack train {recipe}{sets}"


class RewardEndpoint:
    """One recipe entry at run time: the helper's RemoteReward and this run's failure record."""

    def __init__(self, entry: RewardEntry):
        self.entry = entry
        self.name = entry.name
        self.remote = RemoteReward(entry, on_call=self.record)
        self.url = self.remote.url
        self.recent: deque[bool] = deque(maxlen=entry.window)  # True = that call failed
        self.calls = self.failed_calls = 0
        self.latency_ms: deque[float] = deque(maxlen=50)
        self.last_error: str | None = None
        self.abort: RewardAbort | None = None

    def client(self):
        return self.remote.client()

    def record(self, error: Exception | None, elapsed_ms: float) -> None:
        self.calls += 1
        self.recent.append(error is not None)
        if error is None:
            self.latency_ms.append(elapsed_ms)
            return
        self.failed_calls += 1
        self.last_error = cause = failure_cause(error)  # the abort names the reward and URL once
        failed = sum(self.recent)
        if isinstance(error, RewardRequestError):
            reason = cause
        elif self.entry.on_error == "abort":
            reason = f"failed with on_error=abort: {cause}"
        elif failed > self.entry.max_failed_fraction * self.entry.window:
            reason = (f"{failed} of the last {len(self.recent)} calls failed, over max_failed_fraction="
                      f"{self.entry.max_failed_fraction} of window={self.entry.window}; last error: {cause}")
        else:
            log.warning("reward %r at %s failed (%d of the last %d calls; items scored null): %s",
                        self.name, self.url, failed, len(self.recent), cause)
            return
        if self.abort is None:
            log.error("reward %r at %s: %s", self.name, self.url, reason)
            self.abort = RewardAbort(self.name, self.url, reason)

    async def aclose(self) -> None:
        await self.remote.aclose()

    def loops(self) -> list[asyncio.AbstractEventLoop]:
        return self.remote.loops()


def make_reward_function(endpoint: RewardEndpoint) -> Callable[..., Any]:
    """An `async def` named after the entry, returning one reward (or None) per completion."""
    return reward_function(endpoint.remote)


class RewardSet:
    """All rewards of a recipe: TRL's reward functions and weights, the guard, and cleanup.

    The functions are timed together: `timer` measures each step's reward phase and logs it
    as `timing/rewards_ms`.
    """

    def __init__(self, entries: Sequence[RewardEntry]):
        self.endpoints = [RewardEndpoint(e) for e in entries]
        self.timer = RewardPhaseTimer()
        self.functions = self.timer.wrap([make_reward_function(ep) for ep in self.endpoints])
        self.weights = [e.weight for e in entries]

    def callback(self) -> RewardGuardCallback:
        return RewardGuardCallback(self)

    def first_abort(self) -> RewardAbort | None:
        return next((ep.abort for ep in self.endpoints if ep.abort is not None), None)

    def raise_if_aborted(self) -> None:
        abort = self.first_abort()
        if abort is not None:
            raise abort

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
                raise RewardAbort(ep.name, ep.url, f"not reachable before training: {failure_cause(exc)}",
                                  resume=None) from exc

    def close(self) -> None:
        """Close every client on the loop it belongs to (TRL's loop thread, or a finished one)."""
        for ep in self.endpoints:
            ep.remote.close()


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
