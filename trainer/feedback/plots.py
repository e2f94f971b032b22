"""PNG plots of a run: one figure of training curves from metrics.jsonl, reward histograms from eval."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, safe in containers and worker threads

import matplotlib.pyplot as plt  # after use("Agg"): the backend must be chosen first

from trainer.feedback.timing import METRIC as REWARD_PHASE

_REWARD_KEY = re.compile(r"^rewards/(?P<name>[^/]+)/(?P<stat>mean|std)$")


def read_reward_series(
    metrics_jsonl: str | Path,
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """{reward name: {"mean": [(step, value)], "std": [...]}}; null or NaN values are left out.

    The total `reward` (TRL's weighted sum) is returned under the name "total".
    """
    series: dict[str, dict[str, list[tuple[float, float]]]] = {}
    with open(metrics_jsonl, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            step = record.get("step")
            if step is None:
                continue
            for key, value in record.items():
                match = _REWARD_KEY.match(key)
                name, stat = (match["name"], match["stat"]) if match else (None, None)
                if key in ("reward", "reward_std"):
                    name, stat = "total", "mean" if key == "reward" else "std"
                if name is None or not isinstance(value, int | float) or not math.isfinite(value):
                    continue
                series.setdefault(name, {"mean": [], "std": []})[stat].append((step, value))
    return {name: s for name, s in series.items() if s["mean"]}


# What TRL logs besides the rewards, in the order the figure shows them: (key, title, y label).
TRAINING_PANELS = (
    ("loss", "loss", "GRPO loss"),
    ("kl", "KL to the reference", "KL (nats per token)"),
    ("completions/mean_length", "completion length", "tokens (mean of the step)"),
    ("entropy", "policy entropy", "nats per token"),
)
SMOOTH_STEPS = 5
_GRID_COLS = 3
_SPAN = 6  # grid units per row: divisible by 1, 2 and 3, so a short last row is widened, not holed
BAND_LABEL = "±1 std across the step's completions"


def read_series(metrics_jsonl: str | Path, key: str) -> list[tuple[float, float]]:
    """[(step, value)] of one logged key; null, NaN and non-numbers are left out."""
    points = []
    with open(metrics_jsonl, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line) if line.strip() else {}
            value, step = record.get(key), record.get("step")
            if step is not None and isinstance(value, int | float) and math.isfinite(value):
                points.append((step, value))
    return points


def read_step_timing(metrics_jsonl: str | Path) -> list[tuple[float, float, float]]:
    """[(step, reward phase ms, step ms)] for each step that logged both `timing/rewards_ms` and
    TRL's `step_time` (seconds)."""
    rewards = dict(read_series(metrics_jsonl, REWARD_PHASE))
    return [(step, rewards[step], seconds * 1000)
            for step, seconds in read_series(metrics_jsonl, "step_time") if step in rewards and seconds > 0]


def step_share_title(timing: Sequence[tuple[float, float, float]]) -> str:
    """`reward phase: 2.6 % of the step (34 ms of 1.3 s, medians)`: the figure's and the report's words."""
    share = statistics.median(100 * r / t for _, r, t in timing)
    rewards, step = statistics.median(r for _, r, _ in timing), statistics.median(t for *_, t in timing)
    return f"reward phase: {share:.3g} % of the step ({rewards:.3g} ms of {step / 1000:.3g} s, medians)"


def smooth(values: Sequence[float], window: int = SMOOTH_STEPS) -> list[float]:
    """Centred moving mean over `window` steps (fewer at the ends), so trends read through noise."""
    half = window // 2
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - half):i + half + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def _place_axes(fig: plt.Figure, count: int) -> list[plt.Axes]:
    """`count` panels, three a row; a shorter last row is widened so no cell stays empty."""
    rows = math.ceil(count / _GRID_COLS)
    grid = fig.add_gridspec(rows, _SPAN)
    axes = []
    for row in range(rows):
        in_row = min(_GRID_COLS, count - row * _GRID_COLS)
        width = _SPAN // in_row
        axes += [fig.add_subplot(grid[row, i * width:(i + 1) * width]) for i in range(in_row)]
    return axes


def _draw(ax: plt.Axes, points, *, title: str, ylabel: str, std=None, bounded=False) -> None:
    steps, values = zip(*points, strict=True)
    ax.plot(steps, values, marker="o", markersize=2, linewidth=0.6, alpha=0.45, label="per step")
    ax.plot(steps, smooth(values), linewidth=2.0, label=f"{SMOOTH_STEPS}-step moving mean")
    spread = dict(std or [])
    if spread and all(s in spread for s in steps):
        ax.fill_between(steps, [v - spread[s] for s, v in zip(steps, values, strict=True)],
                        [v + spread[s] for s, v in zip(steps, values, strict=True)],
                        alpha=0.15, label=BAND_LABEL)
    if bounded and all(0.0 <= v <= 1.0 for v in values):
        ax.set_ylim(-0.03, 1.03)  # a [0, 1] reward on its own scale: a flat line reads as flat
    if max(values) == min(values):
        ax.text(0.5, 0.5, f"{values[0]:.3g} at every step", transform=ax.transAxes,
                ha="center", va="center", fontsize=9, color="gray")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def reward_figure(metrics_jsonl: str | Path, title: str | None = None) -> plt.Figure:
    """One figure: a panel per reward, the weighted total, then loss, KL, length, entropy, and the
    reward phase's share of each step.

    Only what was logged gets a panel (TRL logs `kl` only when beta > 0). Raises ValueError when
    the file holds no reward metric, so an empty plot is never mistaken for a flat curve.
    """
    series = read_reward_series(metrics_jsonl)
    if not series:
        raise ValueError(f"{metrics_jsonl} has no 'rewards/<name>/mean' or 'reward' values to plot")
    panels = [(series[n]["mean"], f"reward: {n}", "reward (mean of the step)", series[n]["std"])
              for n in sorted(n for n in series if n != "total")]
    if "total" in series:
        panels.append((series["total"]["mean"], "total reward (weighted sum)", "reward",
                       series["total"]["std"]))
    for key, title_, ylabel in TRAINING_PANELS:
        if points := read_series(metrics_jsonl, key):
            panels.append((points, title_, ylabel, None))
    if timing := read_step_timing(metrics_jsonl):  # do the rewards hold the step, or the rest?
        panels.append(([(s, 100 * r / t) for s, r, t in timing], step_share_title(timing),
                       "% of the step spent on rewards", None))
    rows = math.ceil(len(panels) / _GRID_COLS)
    fig = plt.figure(figsize=(4.6 * _GRID_COLS, 3.3 * rows + 0.9))
    for ax, (points, panel_title, ylabel, std) in zip(_place_axes(fig, len(panels)), panels,
                                                      strict=True):
        _draw(ax, points, title=panel_title, ylabel=ylabel, std=std, bounded=std is not None)
    fig.suptitle(title or f"GRPO training curves ({Path(metrics_jsonl).parent.name or 'run'})")
    fig.text(0.5, 0.005, f"Thin line: each logged step. Thick line: moving mean of {SMOOTH_STEPS} "
             f"steps. Band (rewards): {BAND_LABEL}.", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    return fig


def plot_reward_curves(metrics_jsonl: str | Path, out_png: str | Path) -> Path:
    """`reward_figure` of `metrics_jsonl`, saved as a PNG."""
    return _save(reward_figure(metrics_jsonl), out_png)


def plot_histograms(
    rewards: Mapping[str, Sequence[float | None]], out_dir: str | Path, bins: int = 20
) -> dict[str, Path]:
    """`reward_hist_<name>.png` per reward; nulls are counted in the title, not plotted."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, values in rewards.items():
        scored = [v for v in values if v is not None and math.isfinite(v)]
        fig, ax = plt.subplots(figsize=(5, 3.2))
        if scored:
            ax.hist(scored, bins=bins)
        else:
            ax.text(0.5, 0.5, "no scored item", ha="center", va="center", transform=ax.transAxes)
        nulls = len(values) - len(scored)
        ax.set_title(f"{name}: n={len(scored)}, null={nulls}", fontsize=10)
        ax.set_xlabel("reward")
        ax.set_ylabel("items")
        fig.tight_layout()
        written[name] = _save(fig, out_dir / f"reward_hist_{_safe(name)}.png")
    return written


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _save(fig: plt.Figure, out_png: str | Path) -> Path:
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=100)
    finally:
        plt.close(fig)
    return out
