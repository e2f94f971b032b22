"""What a scorer is: the plain types a scorer.py returns and raises, free of any web framework."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
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
