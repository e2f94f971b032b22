"""OUTPUT/report.md of the CPU demo: the rewards during training, and base vs trained on held-out rows.

A reward is called "improved" only when the mean of its last k logged steps beats the mean of
its first k by more than `NOISE_SE` standard errors of that difference (the step means' own
spread gives the error), so one lucky batch, or per-step noise, is not reported as learning.
The held-out comparison says how many distinct strings the policy wrote and calls the policy
"collapsed" when it wrote one string for every prompt, whatever the rewards say.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trainer.feedback.plots import read_reward_series, step_share_title

# Steps averaged at each end of the run (fewer when the run is shorter than 2k steps).
EDGE_STEPS = 10
# A change counts when it exceeds this many standard errors of the difference of the two means.
NOISE_SE = 2.0


@dataclass(frozen=True)
class RewardTrend:
    name: str
    first: float | None
    last: float | None
    steps: int
    varied_steps: int  # steps where the completions of a group did not all score the same
    stderr: float | None = None  # standard error of last - first
    k: int = EDGE_STEPS

    @property
    def change(self) -> float | None:
        return None if self.first is None or self.last is None else self.last - self.first

    @property
    def threshold(self) -> float | None:
        return None if self.stderr is None else NOISE_SE * self.stderr

    @property
    def verdict(self) -> str:
        if self.change is None:
            return "no scores"
        if self.threshold is None:
            return "too few steps to tell"
        if self.change > self.threshold:
            return "improved"
        if self.change < -self.threshold:
            return "got worse"
        return "no change beyond noise"


def trend(name: str, values: Sequence[float], varied: int = 0, k: int = EDGE_STEPS) -> RewardTrend:
    """First-k vs last-k means of one series, with the standard error of their difference."""
    if not values:
        return RewardTrend(name, None, None, 0, varied, None, 0)
    k = min(k, len(values) // 2) or 1
    head, tail = values[:k], values[-k:]
    stderr = None
    if k >= 2:
        stderr = math.sqrt(statistics.variance(head) / k + statistics.variance(tail) / k)
    return RewardTrend(name, statistics.fmean(head), statistics.fmean(tail), len(values), varied,
                       stderr, k)


def reward_trends(metrics_jsonl: Path, k: int = EDGE_STEPS) -> list[RewardTrend]:
    """A trend per reward (and `total`, TRL's weighted sum), from metrics.jsonl."""
    trends = []
    for name, stats in read_reward_series(metrics_jsonl).items():
        values = [v for _, v in stats.get("mean", [])]
        varied = sum(1 for _, std in stats.get("std", []) if std > 0)
        trends.append(trend(name, values, varied, k))
    return sorted(trends, key=lambda t: (t.name == "total", t.name))


@dataclass
class EvalSide:
    """One model's greedy completions on the held-out prompts, and each reward's scores."""

    completions: list[str]
    rewards: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def distinct(self) -> int:
        return len({c.strip() for c in self.completions})

    @property
    def distinct_ratio(self) -> float:
        return self.distinct / len(self.completions) if self.completions else 0.0

    @property
    def collapsed(self) -> bool:
        """One string for every prompt: the policy stopped reading its input."""
        return len(self.completions) > 1 and self.distinct == 1

    def mean(self, name: str) -> float | None:
        scored = [v for v in self.rewards.get(name, []) if v is not None]
        return statistics.fmean(scored) if scored else None


@dataclass
class EvalComparison:
    questions: list[str]
    references: list[str]
    base: EvalSide
    trained: EvalSide


def write_report(
    path: Path,
    *,
    trends: list[RewardTrend],
    services: dict[str, str],
    skipped: dict[str, str],
    facts: dict[str, str],
    comparison: EvalComparison | None = None,
    timing: Sequence[tuple[float, float, float]] = (),
) -> Path:
    """A short Markdown report that says plainly what moved, what did not, and what the policy writes."""
    k = max((t.k for t in trends), default=EDGE_STEPS)
    lines = ["# rewardstack CPU demo", ""]
    lines += [f"- **{key}**: {value}" for key, value in facts.items()]
    lines += ["", "## Reward services", ""]
    lines += [f"- {name}: {url}" for name, url in services.items()]
    lines += [f"- {name}: not run ({why})" for name, why in skipped.items()]
    lines += ["", f"## Rewards during training, mean of the first vs the last {k} logged steps", "",
              f"A change counts when it is larger than {NOISE_SE:g} standard errors of the "
              "difference (the noise column), computed from the spread of the step means.", "",
              "| reward | first | last | change | noise (±) | verdict |",
              "|---|---:|---:|---:|---:|---|"]
    for t in trends:
        lines.append(f"| {t.name} | {_f(t.first)} | {_f(t.last)} | {_f(t.change, signed=True)} | "
                     f"{_f(t.threshold)} | {t.verdict} |")
    if timing:
        lines += ["", "## Where the step time goes", "", _timing_words(timing)]
    if comparison is not None:
        lines += ["", *_comparison(comparison)]
    lines += ["", "## In plain words", "", *_plain(trends, comparison), "",
              "Files: `metrics.jsonl` (every logged step), `rewards.png` (training curves), "
              "`adapter/` (LoRA adapter + processor + resolved recipe).", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _timing_words(timing: Sequence[tuple[float, float, float]]) -> str:
    """From [(step, reward phase ms, step ms)]: do the rewards hold the step, or the rest?"""
    share = statistics.median(100 * r / t for _, r, t in timing)
    verdict = ("the rewards hold the step: faster or more reward services shorten every step"
               if share >= 50 else "the step waits on generation and the policy update, not on the rewards")
    title = step_share_title(timing)
    return f"{title[0].upper()}{title[1:]}: {verdict}."


def _comparison(c: EvalComparison) -> list[str]:
    names = list(c.trained.rewards)
    out = [f"## Held-out prompts: base vs trained ({len(c.questions)} prompts, greedy decoding)", "",
           "| | " + " | ".join(f"mean {n}" for n in names) + " | distinct outputs |",
           "|---|" + "---:|" * (len(names) + 1)]
    for label, side in (("base", c.base), ("trained", c.trained)):
        verdict = " (collapsed: one string for every prompt)" if side.collapsed else ""
        out.append(f"| {label} | " + " | ".join(_f(side.mean(n)) for n in names)
                   + f" | {side.distinct}/{len(side.completions)} = {side.distinct_ratio:.2f}"
                   f"{verdict} |")
    out += ["", "| question | reference | base | trained |", "|---|---|---|---|"]
    for q, ref, before, after in zip(c.questions, c.references, c.base.completions,
                                     c.trained.completions, strict=True):
        out.append(f"| {_cell(q)} | {_cell(ref)} | `{_cell(before)}` | `{_cell(after)}` |")
    return out


def _plain(trends: list[RewardTrend], comparison: EvalComparison | None) -> list[str]:
    per_reward = [t for t in trends if t.name != "total"]
    improved = [t for t in per_reward if t.verdict == "improved"]
    worse = [t for t in per_reward if t.verdict == "got worse"]
    flat = [t for t in per_reward if t not in improved and t not in worse]
    out = []
    if improved:
        out.append("- Improved beyond the noise: " + "; ".join(
            f"{t.name} {_f(t.first)} → {_f(t.last)} (±{_f(t.threshold)})" for t in improved) + ".")
    else:
        out.append("- No reward improved beyond the noise in this run.")
    silent = [t for t in flat if t.varied_steps == 0]
    if silent:
        out.append("- Never varied within a group, so GRPO had nothing to compare: "
                   + ", ".join(t.name for t in silent) + ".")
    varied = [t for t in flat if t.varied_steps > 0]
    if varied:
        out.append("- Varied within groups but did not move beyond the noise: "
                   + ", ".join(f"{t.name} ({t.varied_steps} of {t.steps} steps varied)" for t in varied)
                   + ".")
    if worse:
        out.append("- Got worse: " + "; ".join(f"{t.name} {_f(t.first)} → {_f(t.last)}" for t in worse)
                   + ". GRPO maximises the weighted sum, so one reward can fall while another rises.")
    if comparison is not None:
        out.append(_eval_words(comparison.trained))
    return out


def _eval_words(trained: EvalSide) -> str:
    if trained.collapsed:
        return (f"- **Collapsed**: the trained policy writes `{_cell(trained.completions[0])}` for "
                "every held-out prompt. Whatever the rewards say, it does not answer the questions.")
    return (f"- The trained policy wrote {trained.distinct} distinct strings for "
            f"{len(trained.completions)} held-out prompts (ratio {trained.distinct_ratio:.2f}); "
            "the table above shows them beside the base model's.")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ⏎ ").replace("`", "'")[:120]


def _f(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"
