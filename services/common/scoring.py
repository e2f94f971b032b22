"""What a scorer is: the plain types a scorer.py returns and raises, free of any web framework."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
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


@dataclass
class Batch:
    """What a scorer receives for one request, after the framework validated it."""

    items: Sequence[ScoreItem]
    images: dict[str, ImageData]
    params: Any  # an instance of the scorer's params_model


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
    """Apply `fn` per item so that one item's bug costs that item alone, never the batch."""
    out: list[Scored] = []
    for item in items:
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
        got = await run(Batch([items[i] for i in keep], batch.images, batch.params))
        if len(got) != len(keep):
            raise RuntimeError(f"the scorer returned {len(got)} results for {len(keep)} items")
        for i, result in zip(keep, got, strict=True):
            out[i] = result
    return out
