"""Paired comparison of two modes inside one run: the A B B A order, and statistics of the pairs.

A bench that runs mode A, then mode B, and compares their medians measures whatever else changed
in between (another job on a shared machine, clocks, caches): on a GPU, separate trainer runs of
the same mode differed by 30 %. Here the modes take turns, round by round, every other round
reversed (A B, B A, A B, ...), so a drift that is linear in time falls on both modes equally
over two rounds, and each round gives one pair measured under the same conditions. The effect
reported is the per-pair difference (its median, spread and standard error) and the median of
the per-pair ratios: never a ratio of two pooled medians.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def abba(modes: Sequence[T], rounds: int) -> list[tuple[T, ...]]:
    """`rounds` rounds of every mode once, every other round reversed: (A, B), (B, A), (A, B), ..."""
    forward = tuple(modes)
    return [forward if r % 2 == 0 else forward[::-1] for r in range(rounds)]


def schedule(modes: Sequence[T], pairs: int, warmup: int = 0) -> list[T]:
    """The mode of each step: `warmup` steps taking turns (left out of the statistics), then A B B A ..."""
    warm = [modes[i % len(modes)] for i in range(warmup)]
    return warm + [m for round_ in abba(modes, pairs) for m in round_]


def _median_ci(values: Sequence[float], level: float) -> tuple[float, float]:
    ordered, n = sorted(values), len(values)
    # The largest k with P(Binomial(n, 1/2) < k) <= (1 - level) / 2: then [x_(k), x_(n+1-k)]
    # (1-based) holds the median with probability >= level.
    k, below = 0, 0.0
    while True:
        below += math.comb(n, k) / 2**n
        if below > (1 - level) / 2:
            break
        k += 1
    if k == 0:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


@dataclass(frozen=True)
class Paired:
    """Measurements of a base mode and another one, `base[i]` and `other[i]` from the same round."""

    base: tuple[float, ...]
    other: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.base) != len(self.other) or not self.base:
            raise ValueError(f"paired needs as many base as other values, at least one "
                             f"(got {len(self.base)} and {len(self.other)})")

    @property
    def n(self) -> int:
        return len(self.base)

    @property
    def diffs(self) -> list[float]:
        return [o - b for b, o in zip(self.base, self.other, strict=True)]

    @property
    def ratios(self) -> list[float]:
        return [o / b if b else math.nan for b, o in zip(self.base, self.other, strict=True)]

    @property
    def ratio(self) -> float:
        """Median of the per-pair ratios other / base."""
        return statistics.median(self.ratios)

    @property
    def ratio_iqr(self) -> tuple[float, float]:
        return _quartiles(self.ratios)

    def ratio_ci(self, level: float = 0.95) -> tuple[float, float]:
        """A distribution-free confidence interval of the median ratio (order statistics of the
        pairs' ratios, from the binomial); the whole range when there are too few pairs."""
        return _median_ci(self.ratios, level)

    @property
    def diff(self) -> float:
        """Median of the per-pair differences other - base."""
        return statistics.median(self.diffs)

    @property
    def diff_iqr(self) -> tuple[float, float]:
        return _quartiles(self.diffs)

    @property
    def diff_mean_se(self) -> tuple[float, float]:
        """Mean of the differences and its standard error (nan with a single pair)."""
        d = self.diffs
        se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else math.nan
        return statistics.fmean(d), se

    def describe(self, unit: str = "ms", digits: int = 1) -> str:
        """One line: the pairs' difference with its spread, and the ratio from the pairs."""
        (q1, q3), (mean, se), (c1, c3) = self.diff_iqr, self.diff_mean_se, self.ratio_ci()
        f = f"+.{digits}f"
        return (f"paired difference median {self.diff:{f}} {unit} (IQR {q1:{f}} .. {q3:{f}}; "
                f"mean {mean:{f}} ± {se:.{digits}f} SE), ratio from the pairs {self.ratio:.3f} "
                f"(95 % CI {c1:.3f} .. {c3:.3f}), n={self.n} pairs")


def paired(base: Sequence[float], other: Sequence[float]) -> Paired:
    return Paired(tuple(base), tuple(other))


def pair_rounds(modes: Sequence[str], rounds: Sequence[dict[str, float]]) -> Paired:
    """Paired from rounds that each measured both modes: [{mode: value}, ...] -> base = modes[0]."""
    base, other = modes
    return paired([r[base] for r in rounds], [r[other] for r in rounds])


def rounds_of(steps: Sequence[tuple[str, T]], modes: Sequence[str], warmup: int = 0) -> list[dict[str, T]]:
    """Steps run in `schedule` order, [(mode, measurement)], as rounds {mode: measurement}.

    The warm-up steps are dropped; an unfinished last round is dropped too, so that every round
    holds each mode exactly once (anything else means the steps did not follow the schedule).
    """
    kept = list(steps[warmup:])
    size = len(modes)
    rounds = []
    for start in range(0, len(kept) - size + 1, size):
        chunk = kept[start:start + size]
        if sorted(m for m, _ in chunk) != sorted(modes):
            raise ValueError(f"steps {warmup + start}..{warmup + start + size - 1} ran "
                             f"{[m for m, _ in chunk]}, not each of {list(modes)} once")
        rounds.append(dict(chunk))
    return rounds
