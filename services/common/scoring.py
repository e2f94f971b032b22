"""What a scorer is: the plain types a scorer.py returns and raises, free of any web framework."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from proto.models import ImageData, ItemStatus, ScoreItem

log = logging.getLogger(__name__)

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Scored:
    """One item's outcome. `reward` is None exactly when the item could not be scored."""

    reward: float | None
    status: ItemStatus = ItemStatus.ok
    reason: str | None = None
    parts: dict[str, float] = field(default_factory=dict)

    @classmethod
    def ok(cls, reward: float, reason: str | None = None, **parts: float) -> Scored:
        return cls(float(reward), ItemStatus.ok, reason, dict(parts))

    @classmethod
    def unscorable(cls, reason: str, **parts: float) -> Scored:
        return cls(None, ItemStatus.unscorable, reason, dict(parts))

    @classmethod
    def error(cls, reason: str, **parts: float) -> Scored:
        return cls(None, ItemStatus.error, reason, dict(parts))

    @classmethod
    def timeout(cls, reason: str = "timeout", **parts: float) -> Scored:
        return cls(None, ItemStatus.timeout, reason, dict(parts))


class ParamsError(ValueError):
    """Request parameters a scorer cannot honour (an unsupported regex, say): a 422 for the caller."""


class UpstreamError(RuntimeError):
    """A dependency of the scorer failed for the whole request (the judge's API, say): a 502."""


class NotReadyError(RuntimeError):
    """The scorer cannot serve yet, or no longer can (weights not loaded, credentials refused): a 503."""


# -- the request's deadline ------------------------------------------------------------------------

DEADLINE_REASON = "deadline: not scored before the request's deadline_ms passed"
# How long past the deadline the framework lets a scorer run before answering without it.
DEADLINE_GRACE_S = 0.05

# The deadline of the request being scored, for checkpoints in shared helpers (score_each, image
# decoding) that scorers call without passing it along; threads started by the framework copy it.
_deadline: ContextVar[float | None] = ContextVar("rewardstack_deadline", default=None)


@dataclass
class Batch:
    """What a scorer receives for one request, after the framework validated it.

    `deadline` is the `time.monotonic()` instant at which the request's `deadline_ms` passes
    (None: no deadline). A coroutine scorer awaits its items with `gather_until(deadline, ...)`;
    `score_each` and the image decoder stop on their own once it passes.
    """

    items: Sequence[ScoreItem]
    images: dict[str, ImageData]
    params: Any  # an instance of the scorer's params_model
    deadline: float | None = None


@runtime_checkable
class Scorer(Protocol):
    """A reward as a service sees it.

    `score` may be a plain function (the framework runs it in a worker thread, off the event loop)
    or a coroutine function (awaited directly; for scorers that wait on processes or the network).
    A coroutine scorer runs on the event loop, so it must hand its own CPU work (reading the
    completions, parsing replies) to a thread: /healthz answers only while the loop is free.
    Items whose completion is over the service's `max_completion_chars` never reach `score`.
    It returns one `Scored` per item, in order. It raises `ParamsError`, `UpstreamError` or
    `NotReadyError` only for failures of the whole request; a bad item becomes a `Scored` with
    reward None, never an exception.
    """

    name: str
    version: str
    score_range: tuple[float, float]
    params_model: type[BaseModel]

    def load(self) -> None:
        """Load weights and warm up; called once, in a thread, before /readyz turns ready."""

    def close(self) -> None:
        """Release processes, sockets and devices; called once at shutdown."""

    def config(self) -> dict[str, Any]:
        """Facts that decide the scores (model, corpus hash, thresholds), shown in /v1/info."""

    def score(self, batch: Batch) -> list[Scored]: ...


def score_each(
    items: Iterable[ScoreItem], fn: Callable[[ScoreItem], Scored]
) -> list[Scored]:
    """Apply `fn` per item so that one item's bug costs that item alone, never the batch.

    Once the request's deadline has passed the remaining items are timeouts, unscored: a thread
    running a scorer stops between items instead of finishing work nobody waits for.
    """
    out: list[Scored] = []
    for item in items:
        if deadline_passed():
            out.append(Scored.timeout(DEADLINE_REASON))
            continue
        try:
            out.append(fn(item))
        except Exception as exc:
            log.exception("item failed to score")
            out.append(Scored.error(f"internal error: {type(exc).__name__}"))
    return out


COMPLETION_TOO_LONG = "completion_too_long"


async def score_capped(
    batch: Batch, max_chars: int, setting: str,
    run: Callable[[Batch], Awaitable[list[Scored]]],
) -> list[Scored]:
    """`run(batch)` on the items whose completion has at most `max_chars` characters.

    Longer ones never reach the scorer: each is unscorable (null) with reason
    `completion_too_long`, in its place. A collapsing policy's 64 KB floods then cost a length
    check, whatever the scorer does per character. `setting` names the variable that raises it.
    """
    items = batch.items
    keep = [i for i, item in enumerate(items) if len(item.completion) <= max_chars]
    if len(keep) == len(items):
        return await run(batch)
    out = [
        Scored.unscorable(
            f"{COMPLETION_TOO_LONG}: {len(item.completion)} characters, over {setting}={max_chars}"
        )
        for item in items
    ]
    if keep:
        got = await run(Batch([items[i] for i in keep], batch.images, batch.params, batch.deadline))
        if len(got) != len(keep):
            raise RuntimeError(f"the scorer returned {len(got)} results for {len(keep)} items")
        for i, result in zip(keep, got, strict=True):
            out[i] = result
    return out


class DeadlinePassed(Exception):
    """The request's deadline passed: a shared helper stops the scorer's work for the request."""


def deadline_passed() -> bool:
    """Whether the request being scored in this context is past its deadline."""
    at = _deadline.get()
    return at is not None and time.monotonic() >= at


def check_deadline() -> None:
    """Raise DeadlinePassed when the request being scored is past its deadline (else nothing)."""
    if deadline_passed():
        raise DeadlinePassed(DEADLINE_REASON)


@contextmanager
def deadline_scope(at: float | None) -> Iterator[None]:
    """Make `at` the deadline that `check_deadline` and `score_each` see in this context."""
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


async def gather_until(
    deadline: float | None, aws: Iterable[Awaitable[Scored]], *, return_exceptions: bool = False
) -> list:
    """Await each item's coroutine until `deadline`; those not finished then are cancelled and
    come back as timeouts, in their places. Otherwise like `asyncio.gather`, except that an
    exception is raised only once every item is done or cut off (the first in item order), or
    returned in its place with `return_exceptions`.

    A coroutine that needs no waiting (a precomputed result, a cache hit) still finishes when the
    deadline has already passed.
    """
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        done, pending = await asyncio.wait(tasks, timeout=timeout)
    finally:
        for task in tasks:
            task.cancel()  # no-op on finished ones; cancels the rest, also if this call is cancelled
    if pending:
        await asyncio.sleep(0)  # one turn of the loop: the cancelled items run their cleanup
    out: list = []
    for task in tasks:
        if task not in done:
            out.append(Scored.timeout(DEADLINE_REASON))
        elif task.cancelled():  # by someone else: shutting down, say
            out.append(Scored.error("cancelled: the item's work was stopped before it finished"))
        elif (exc := task.exception()) is not None:
            out.append(exc)
        else:
            out.append(task.result())
    if not return_exceptions:
        for got in out:
            if isinstance(got, BaseException):
                raise got
    return out


async def score_until(
    deadline: float | None, n: int, run: Callable[[], Awaitable[list[Scored]]]
) -> list[Scored]:
    """`run()` for a request of `n` items that must be answered by `deadline`.

    A scorer that honours the deadline returns its finished items and timeouts by then. One that
    does not (a thread busy in one item, say) is left behind `DEADLINE_GRACE_S` after it, and every
    item is a timeout: the answer never waits for it. A request whose deadline passed before it
    got a scoring slot is answered at once, unscored.
    """
    if deadline is None:
        return await run()
    if time.monotonic() >= deadline:
        return [Scored.timeout(f"{DEADLINE_REASON} (it passed while the request was queued)")] * n
    timer = asyncio.timeout(deadline - time.monotonic() + DEADLINE_GRACE_S)
    try:
        with deadline_scope(deadline):
            async with timer:
                return await run()
    except DeadlinePassed:
        pass
    except TimeoutError:
        if not timer.expired():
            raise
    return [Scored.timeout(DEADLINE_REASON)] * n
