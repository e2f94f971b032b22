"""OUTPUT/report.md of the CPU demo: what each reward did between the first and the last steps."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from trainer.plots import read_reward_series

# Rewards are averaged over this many logged steps at each end, so one lucky batch is not news.
EDGE_STEPS = 5
# A change below this (absolute, on the reward's own scale) is reported as no change.
MIN_CHANGE = 0.02


@dataclass(frozen=True)
class RewardTrend:
    name: str
    first: float | None
    last: float | None
    steps: int
    varied_steps: int  # steps where the completions of a group did not all score the same

    @property
    def change(self) -> float | None:
        return None if self.first is None or self.last is None else self.last - self.first

    @property
    def verdict(self) -> str:
        if self.change is None:
            return "no scores"
        if self.change > MIN_CHANGE:
            return "improved"
        if self.change < -MIN_CHANGE:
            return "got worse"
        return "no change"


def reward_trends(metrics_jsonl: Path) -> list[RewardTrend]:
    """First-vs-last means per reward (and `total`, TRL's weighted sum), from metrics.jsonl."""
    trends = []
    for name, stats in read_reward_series(metrics_jsonl).items():
        values = [v for _, v in stats.get("mean", [])]
        k = min(EDGE_STEPS, max(1, len(values) // 2))
        first = statistics.fmean(values[:k]) if values else None
        last = statistics.fmean(values[-k:]) if values else None
        varied = sum(1 for _, std in stats.get("std", []) if std > 0)
        trends.append(RewardTrend(name, first, last, len(values), varied))
    return sorted(trends, key=lambda t: (t.name == "total", t.name))


def write_report(
    path: Path,
    *,
    trends: list[RewardTrend],
    services: dict[str, str],
    skipped: dict[str, str],
    facts: dict[str, str],
) -> Path:
    """A short Markdown report that says plainly what moved and what did not."""
    lines = ["# rewardstack CPU demo", ""]
    lines += [f"- **{k}**: {v}" for k, v in facts.items()]
    lines += ["", "## Reward services", ""]
    lines += [f"- {name}: {url}" for name, url in services.items()]
    lines += [f"- {name}: not run ({why})" for name, why in skipped.items()]
    lines += ["", f"## Rewards, mean of the first vs the last {EDGE_STEPS} logged steps", "",
              "| reward | first | last | change | verdict |", "|---|---:|---:|---:|---|"]
    for t in trends:
        change = _f(t.change, signed=True)
        lines.append(f"| {t.name} | {_f(t.first)} | {_f(t.last)} | {change} | {t.verdict} |")
    lines += ["", "## In plain words", "", *_plain(trends), "",
              "Files: `metrics.jsonl` (every logged step), `rewards.png` (curves per reward), "
              "`adapter/` (LoRA adapter + processor + resolved recipe).", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _plain(trends: list[RewardTrend]) -> list[str]:
    per_reward = [t for t in trends if t.name != "total"]
    improved = [t for t in per_reward if t.verdict == "improved"]
    flat = [t for t in per_reward if t.verdict in ("no change", "no scores")]
    worse = [t for t in per_reward if t.verdict == "got worse"]
    out = []
    if improved:
        moves = "; ".join(f"{t.name} {_f(t.first)} → {_f(t.last)}" for t in improved)
        out.append(f"- Improved: {moves}.")
    else:
        out.append(f"- No reward improved by more than {MIN_CHANGE} in this run.")
    silent = [t for t in flat if t.varied_steps == 0]
    if silent:
        out.append("- Did not move, and never could in this run: " + ", ".join(t.name for t in silent)
                   + ". Every completion of every group scored the same, so GRPO had nothing to compare. "
                   "A random model does not write the asked-for tags by chance; these rewards need "
                   "a model that already follows the format (or a longer run from a pretrained one).")
    varied = [t for t in flat if t.varied_steps > 0]
    if varied:
        out.append("- Did not move although the scores varied within groups: "
                   + ", ".join(f"{t.name} ({t.varied_steps} of {t.steps} steps varied)" for t in varied)
                   + ". The signal was there but too weak or noisy for this many steps.")
    if worse:
        out.append("- Got worse: " + "; ".join(f"{t.name} {_f(t.first)} → {_f(t.last)}" for t in worse)
                   + ". GRPO maximises the weighted sum, so one reward can fall while another rises.")
    out.append("- This run shows the machinery working end to end (model, rewards over HTTP, GRPO "
               "updates, outputs); it is not a trained model.")
    return out


def _f(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"
