"""math_equiv: 1.0 when the completion's final answer is mathematically the reference, else 0.0.

The final answer is the last `<answer>…</answer>` (the tag is a param), else the last
`\\boxed{…}`; no answer is a wrong answer (0.0, reason `no_answer`), and so is an answer longer
than the `max_answer_chars` setting (0.0, `answer_too_long`). Equivalence is math-verify's
`verify(gold, prediction)`, run in killable worker processes under a hard time limit
(services.math_equiv.pool). MathVista items are scored as MathVista does: multiple choice by
the option's letter or text, integer and float answers numerically at the item's precision.
A reference that cannot be read is `null` (unscorable), never 0.0 or 1.0; so is a reference made
of words (`Paris`, `forty two`): words are not math (services.math_equiv.words), and an answer
made of words is not equal to a mathematical reference (0.0, `not_equivalent`). A decimal comma
reads as math-verify's default reads it (`1,22` is 1.22), and a currency sign may follow a number.

References: math-verify, https://github.com/huggingface/Math-Verify ; MathVista,
https://github.com/lupantech/MathVista (evaluation/calculate_score.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from proto.models import ScoreItem
from services.common.scoring import (
    DEADLINE_REASON,
    Batch,
    NotReadyError,
    Scored,
    gather_until,
    score_each,
)
from services.math_equiv.extract import (
    choice_indices,
    chosen_index,
    extract_answer,
    is_delimited,
    is_plain_number,
)
from services.math_equiv.numeric import numeric_rule
from services.math_equiv.pool import WorkerPool
from services.math_equiv.settings import MathEquivSettings
from services.math_equiv.words import first_word
from services.math_equiv.worker import Reply, Task

log = logging.getLogger(__name__)


class MathEquivParams(BaseModel):
    """Per-request options of math_equiv."""

    model_config = ConfigDict(extra="forbid")

    answer_tag: str = Field(
        default="answer",
        pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$",
        description="Name of the tag holding the final answer (`SOLUTION` for <SOLUTION>…</SOLUTION>); "
        "matched case-insensitively. Without one, the last \\boxed{…} is the answer.",
    )


@dataclass(frozen=True)
class _Job:
    """An item that needs a worker: the task to send, and how to read the reply."""

    task: Task
    finish: Callable[[Reply], Scored]


class MathEquivScorer:
    """The math_equiv reward. `score` is a coroutine: it waits on worker processes, off the loop.

    Example:
        >>> scorer = MathEquivScorer(MathEquivSettings(workers=1))
        >>> scorer.load()  # starts the workers
        >>> item = ScoreItem(completion="<answer>\\dfrac{1}{2}</answer>", reference="0.5")
        >>> asyncio.run(scorer.score(Batch([item], {}, MathEquivParams())))[0].reward
        1.0
        >>> scorer.close()
    """

    name = "math_equiv"
    version = "1.1.0"
    score_range = (0.0, 1.0)
    params_model = MathEquivParams

    def __init__(self, settings: MathEquivSettings):
        self.settings = settings
        self._pool: WorkerPool | None = None
        self._threads: ThreadPoolExecutor | None = None

    def load(self) -> None:
        s = self.settings
        pool = WorkerPool(
            s.workers, s.time_limit_s, start_method=s.start_method,
            startup_timeout_s=s.worker_startup_timeout_s, memory_mb=s.worker_memory_mb,
        )
        pool.start()
        # One waiting thread per worker: each blocks on its worker's pipe, never on the loop.
        self._threads = ThreadPoolExecutor(max_workers=s.workers, thread_name_prefix="math-equiv")
        self._pool = pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)

    @property
    def pool(self) -> WorkerPool | None:
        return self._pool

    def config(self) -> dict[str, Any]:
        return {
            "math_verify_version": version("math-verify"),
            "time_limit_s": self.settings.time_limit_s,
            "workers": self.settings.workers,
            "start_method": self.settings.start_method,
            "worker_memory_mb": self.settings.worker_memory_mb,
            "max_answer_chars": self.settings.max_answer_chars,
        }

    def not_ready_reason(self) -> str | None:
        if self._pool is None:
            return "math workers are not started yet"
        if self._pool.alive == 0:
            return "no math worker is alive; replacements are starting"
        return None

    def register_metrics(self, registry) -> None:
        from services.math_equiv.metrics import PoolCollector

        registry.register(PoolCollector(lambda: self._pool))

    async def score(self, batch: Batch) -> list[Scored]:
        if self._pool is None or self._threads is None:
            raise NotReadyError("math workers are not started yet; wait for /readyz")
        # Answer extraction reads whole completions: a worker thread, never the event loop.
        tag = batch.params.answer_tag
        plans = await asyncio.to_thread(score_each, batch.items, lambda it: self._plan(it, tag))
        # At the deadline the items still out are timeouts; their workers are killed (pool.run).
        return await gather_until(batch.deadline, (self._score_one(p, batch.deadline) for p in plans))

    async def _score_one(self, plan: Scored | _Job, deadline: float | None) -> Scored:
        if isinstance(plan, Scored):
            return plan
        try:
            loop = asyncio.get_running_loop()
            reply = await loop.run_in_executor(self._threads, self._pool.run, plan.task, deadline)
            return self._read(reply, plan.finish)
        except Exception as exc:
            log.exception("math_equiv item failed to score")
            return Scored.error(f"internal error: {type(exc).__name__}")

    def _plan(self, item: ScoreItem, tag: str) -> Scored | _Job:
        refs = _references(item.reference)
        if not refs:
            return Scored.unscorable("no reference to compare against")
        answer = extract_answer(item.completion, tag)
        if item.meta.get("question_type") == "multi_choice":
            return _multi_choice(refs, item.choices, answer)
        too_long = answer is not None and len(answer) > self.settings.max_answer_chars
        rule = numeric_rule(refs[0], item.meta)  # MathVista items carry one reference
        if isinstance(rule, Scored):
            return rule
        if rule is not None:
            if answer is None or too_long:
                return Scored.ok(0.0, "answer_too_long" if too_long else "no_answer")
            return _Job(("number", answer), rule.judge)
        refs, words = _mathematical(refs)
        if not refs:
            return Scored.unscorable(
                f"the reference is words, not math ({words!r}); math_equiv compares mathematical answers"
            )
        if too_long:
            return _Job(("equiv", tuple(refs), None), _too_long)
        if answer is not None and _word_of(answer) is not None:
            # Words never equal a mathematical reference; the worker still reads the reference,
            # so that an unreadable one stays null.
            return _Job(("equiv", tuple(refs), None), _not_equivalent)
        return _Job(("equiv", tuple(refs), answer), _equivalence)

    def _read(self, reply: Reply, finish: Callable[[Reply], Scored]) -> Scored:
        status = reply[0]
        if status == "ok":
            return finish(reply)
        if status == "unscorable":
            return Scored.unscorable(reply[1])
        if status == "timeout":
            return Scored.timeout(f"over the {self.settings.time_limit_s:g}s time limit")
        if status == "deadline":
            return Scored.timeout(DEADLINE_REASON)
        return Scored.error(str(reply[1]))


def _references(reference: str | list[str] | None) -> list[str]:
    refs = [reference] if isinstance(reference, str) else list(reference or [])
    return [r.strip() for r in refs if r and r.strip()]


def _word_of(text: str) -> str | None:
    """The word that makes `text` prose rather than math; None for math and plain numbers."""
    return None if is_plain_number(text) else first_word(text, is_delimited(text))


def _mathematical(refs: list[str]) -> tuple[list[str], str | None]:
    """The references that are math, and the first word found in those that are not."""
    words = [_word_of(r) for r in refs]
    return [r for r, w in zip(refs, words, strict=True) if w is None], next(filter(None, words), None)


def _not_equivalent(reply: Reply) -> Scored:
    return Scored.ok(0.0, "not_equivalent")


def _equivalence(reply: Reply) -> Scored:
    _, reward, reason = reply
    return Scored.ok(reward, reason)


def _too_long(reply: Reply) -> Scored:
    # The worker has still read the reference: an unreadable one stays null, never 0.0.
    return Scored.ok(0.0, "answer_too_long")


def _multi_choice(refs: list[str], choices: list[str] | None, answer: str | None) -> Scored:
    if not choices:
        return Scored.unscorable("meta.question_type is multi_choice but the item has no choices")
    correct = choice_indices(refs, choices)
    if not correct:
        return Scored.unscorable("the reference is not the text of any of the item's choices")
    if answer is None:
        return Scored.ok(0.0, "no_answer")
    picked = chosen_index(answer, choices)
    if picked is None:
        return Scored.ok(0.0, "no_choice_picked")
    return Scored.ok(1.0) if picked in correct else Scored.ok(0.0, "wrong_choice")

