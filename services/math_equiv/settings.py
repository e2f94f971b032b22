"""Settings of the math_equiv service: the per-item time limit and the worker pool (MATH_EQUIV_)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


def cpu_count() -> int:
    # The affinity mask, not os.cpu_count(): a container pinned to 2 cores of a 64-core host
    # must not start 64 workers.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class MathEquivSettings(ServiceSettings):
    """Limits, auth and logging shared by every service, plus the math worker pool.

    Parameters that control the workers:
        time_limit_s (float, default 5.0): hard limit per item, from the moment a worker receives
            it. An item over it is `null` with status `timeout`; its worker is killed (SIGKILL) and
            replaced. So is an item still running when its request's `deadline_ms` passes.
        workers (int, default: the CPUs this process may run on): worker processes, each scoring
            one item at a time. More than the CPUs only adds contention.
        start_method ("forkserver" | "spawn", default "forkserver"): how workers start.
            forkserver imports math-verify once in a server process and forks ready workers from
            it, so replacing a killed worker takes milliseconds; spawn starts a fresh interpreter
            (about a second each) and is the portable choice.
        worker_startup_timeout_s (float, default 60): longest wait for a new worker to import
            math-verify and answer; a worker slower than that is discarded and retried later.
        worker_memory_mb (int | None, default 2048): address-space cap of each worker, so that
            an answer such as 10^{10^{10}} fails fast with MemoryError (status `error`) instead of
            swapping the host. None disables the cap.
        max_answer_chars (int, default 2000): a longer final answer is wrong (0.0, reason
            `answer_too_long`) without being parsed: a final answer is short, and a long one
            would otherwise run into the time limit and come back `null`, which a policy could
            learn to prefer to a plain 0.
    """

    model_config = SettingsConfigDict(env_prefix="MATH_EQUIV_", extra="ignore")

    time_limit_s: float = Field(default=5.0, gt=0, le=600, description="Hard limit per item.")
    workers: int = Field(default_factory=cpu_count, ge=1, le=256, description="Worker processes.")
    start_method: Literal["forkserver", "spawn"] = Field(
        default="forkserver", description="multiprocessing start method of the workers."
    )
    worker_startup_timeout_s: float = Field(
        default=60.0, gt=0, description="Longest wait for a new worker to become ready."
    )
    worker_memory_mb: int | None = Field(
        default=2048, ge=256, description="Address-space cap per worker (MiB); unset disables it."
    )
    max_answer_chars: int = Field(
        default=2000, ge=1, description="Longer final answers score 0.0 without being parsed."
    )
